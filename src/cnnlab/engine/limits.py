"""Bounds on what cnnlab reads or builds from a file, checked from declared sizes before allocating.

A hostile or damaged file can declare sizes that would exhaust the machine (a zip member that
inflates to gigabytes, an IDX header announcing billions of images, a layer with 10**9
filters). Every reader checks the size a file declares against these limits first, and says
which limit was hit and how to raise it. Each limit is read from the environment at the
moment of the check, so a user who means it can raise it for one command::

    CNNLAB_MAX_FILE_BYTES   bytes of one array read from a file (default 1 GiB)
    CNNLAB_MAX_IMAGE_PIXELS pixels (H x W) of one image (default 16,777,216: 4096 x 4096)
    CNNLAB_MAX_CLASSES      classes of a dataset (default 1,000)
    CNNLAB_MAX_PARAMS       weights of one model, counted from its config (default 100,000,000)
    CNNLAB_MAX_TRIALS       trials of one study, in any mode (default 100,000)

Fixed bounds, no legitimate file comes near them: ``MAX_NESTING`` (the depth of JSON and TOML
documents), ``MAX_METADATA_BYTES`` (a JSON, TOML, CSV or text file read whole) and
``MAX_FIGURE_BYTES`` (a PNG inlined into a report). ``read_file`` reads only regular files.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from typing import Any

DEFAULTS = {
    "CNNLAB_MAX_FILE_BYTES": 1 << 30,
    "CNNLAB_MAX_IMAGE_PIXELS": 4096 * 4096,
    # the metrics hold a K x K confusion matrix, the figures a row per class
    "CNNLAB_MAX_CLASSES": 1_000,
    "CNNLAB_MAX_PARAMS": 100_000_000,
    "CNNLAB_MAX_TRIALS": 100_000,
}
MAX_NESTING = 64
MAX_METADATA_BYTES = (
    32 << 20
)  # a JSON, TOML or CSV file read whole: KBs, a 1,000-class metrics.json 9 MB
MAX_FIGURE_BYTES = 64 << 20  # one PNG inlined into a report


class LimitExceeded(ValueError):
    """A declared size over one of cnnlab's limits; the message names the limit."""


def limit(variable: str) -> int:
    """The current value of one limit: the environment variable when set, else the default."""
    text = os.environ.get(variable, "").replace("_", "").strip()
    if not text:
        return DEFAULTS[variable]
    if not text.isdigit() or int(text) < 1:
        raise LimitExceeded(
            f"{variable} must be a positive integer, received {os.environ[variable]!r}"
        )
    return int(text)


def check(variable: str, amount: int, what: str, unit: str) -> None:
    """Refuse ``amount`` (e.g. the bytes an array needs) when it is over the limit ``variable``."""
    allowed = limit(variable)
    if amount > allowed:
        raise LimitExceeded(
            f"{what} needs {amount:,} {unit}, over the limit of {allowed:,} "
            f"(set {variable} to raise it)"
        )


def check_bytes(amount: int, what: str) -> None:
    check("CNNLAB_MAX_FILE_BYTES", amount, what, "bytes")


def check_pixels(height: int, width: int, what: str) -> None:
    check(
        "CNNLAB_MAX_IMAGE_PIXELS",
        int(height) * int(width),
        f"{what} ({height} x {width} pixels)",
        "pixels",
    )


def read_file(path: str | os.PathLike[str], max_bytes: int = MAX_METADATA_BYTES) -> bytes:
    """A regular file's bytes, at most ``max_bytes``: a device, a FIFO (or a link to one) is
    refused, and the size is checked before reading and the read capped
    (a file may grow meanwhile)."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise LimitExceeded(f"{path}: not a regular file")
    size = os.path.getsize(path)
    with open(path, "rb") as file:
        data = file.read(max_bytes + 1) if size <= max_bytes else b""
    if size > max_bytes or len(data) > max_bytes:
        raise LimitExceeded(
            f"{path}: {max(size, len(data)):,} bytes, over the limit of {max_bytes:,} for this file"
        )
    return data


def nesting_depth(value: Any) -> int:
    """How deeply lists and dicts nest in a parsed document (iterative: no recursion)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, depth)
            stack.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
    return deepest


def check_nesting(value: Any, source: str) -> Any:
    """The value itself, when it nests no deeper than MAX_NESTING."""
    if nesting_depth(value) > MAX_NESTING:
        raise LimitExceeded(f"{source}: nested more than {MAX_NESTING} levels deep")
    return value


def loads_json(text: str | bytes, source: str) -> Any:
    """json.loads with bounded nesting: a document nested 100,000 deep is one clear error."""
    if len(text) > MAX_METADATA_BYTES:
        raise LimitExceeded(
            f"{source}: {len(text):,} bytes of JSON, over the limit of {MAX_METADATA_BYTES:,}"
        )
    try:
        return check_nesting(json.loads(text), source)
    except RecursionError:
        raise LimitExceeded(f"{source}: nested more than {MAX_NESTING} levels deep") from None


def loads_toml(text: str, source: str) -> dict[str, Any]:
    """tomllib.loads with bounded nesting (tomllib recurses once per level)."""
    import tomllib

    try:
        return check_nesting(tomllib.loads(text), source)
    except RecursionError:
        raise LimitExceeded(f"{source}: nested more than {MAX_NESTING} levels deep") from None


def check_model_params(build: Callable[[], Any], what: str) -> None:
    """Build the model with ``initializers.shapes_only()`` (no weight is allocated), count its
    parameters and refuse more than CNNLAB_MAX_PARAMS, naming the largest layer."""
    from . import initializers
    from .layers import base

    names = base._name_counts.copy()  # the real build that follows gets the same automatic names
    try:
        with initializers.shapes_only():
            model = build()
    finally:
        base._name_counts.clear()
        base._name_counts.update(names)
    counts = [(layer.describe(), layer.count_params()) for layer in model.layers]
    total, allowed = sum(count for _, count in counts), limit("CNNLAB_MAX_PARAMS")
    if total > allowed:
        layer, largest = max(counts, key=lambda item: item[1])
        raise LimitExceeded(
            f"{what} has {total:,} parameters, over the limit of {allowed:,} ({layer} alone has "
            f"{largest:,}); set CNNLAB_MAX_PARAMS to raise it"
        )
