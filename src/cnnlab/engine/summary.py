"""``model.summary()``: Keras 3's box-drawn table of layers, output shapes and parameter counts.

A model whose layers form a line (every Sequential, and a functional model without branches)
gets three columns; a functional model with branches gets Keras's fourth, "Connected to".
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .config import floatx

HEADER = ("Layer (type)", "Output Shape", "Param #")
CONNECTED_HEADER = (*HEADER, "Connected to")


def print_summary(model: Any, print_fn: Callable[[str], Any] = print) -> None:
    """Print the model's name, its table, and the total, trainable and non-trainable counts."""
    rows = summary_rows(model)
    connected = any(len(row) == 4 for row in rows)
    header = CONNECTED_HEADER if connected else HEADER
    rows = [row if connected else row[:3] for row in rows]
    widths = [max([len(h)] + [len(r[i]) for r in rows]) + 2 for i, h in enumerate(header)]
    print_fn(f'Model: "{model.name}"')
    for line in summary_table(header, rows, widths):
        print_fn(line)
    total, trainable = model.count_params(), model.count_trainable_params()
    itemsize = np.dtype(floatx()).itemsize
    print_fn(f" Total params: {total:,} ({format_bytes(total * itemsize)})")
    print_fn(f" Trainable params: {trainable:,} ({format_bytes(trainable * itemsize)})")
    print_fn(
        f" Non-trainable params: {total - trainable:,} "
        f"({format_bytes((total - trainable) * itemsize)})"
    )


def summary_rows(model: Any) -> list[tuple[str, ...]]:
    """("name (Class)", output shape, count[, connected to]) per row of the table."""
    if hasattr(model, "summary_rows_connected"):
        return model.summary_rows_connected()
    return [
        (f"{name} ({kind})", shape, f"{count:,}")
        for name, kind, shape, count in model.summary_rows()
    ]


def summary_table(
    header: tuple[str, ...], rows: list[tuple[str, ...]], widths: list[int]
) -> list[str]:
    """Keras 3's box-drawn table, the parameter count right-aligned."""

    def row(cells: tuple[str, ...], bar: str) -> str:
        texts = [
            f" {c:>{w - 2}} " if i == 2 else f" {c:<{w - 2}} "
            for i, (c, w) in enumerate(zip(cells, widths))
        ]
        return bar + bar.join(texts) + bar

    def rule(left: str, mid: str, right: str, fill: str) -> str:
        return left + mid.join(fill * w for w in widths) + right

    lines = [rule("┏", "┳", "┓", "━"), row(header, "┃"), rule("┡", "╇", "┩", "━")]
    for i, cells in enumerate(rows):
        lines.append(row(cells, "│"))
        lines.append(rule("├", "┼", "┤", "─") if i < len(rows) - 1 else rule("└", "┴", "┘", "─"))
    if not rows:
        lines.append(rule("└", "┴", "┘", "─"))
    return lines


def format_bytes(size: float) -> str:
    """136.04 KB, as Keras's summary prints sizes."""
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} GB"
