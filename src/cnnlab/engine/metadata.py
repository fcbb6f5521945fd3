"""Small schemas for the metadata cnnlab reads back: types and ranges, checked before use.

A model's or checkpoint's ``meta.json``, a run's ``config.json`` and a study's rows are JSON
that anyone can edit, and a newer cnnlab may write fields this one does not know. Every field
is checked against its schema before it is used, so an altered file is one ``ValueError`` naming
the file and the field, and an unknown field is reported (a ``NewerFieldWarning``), not
crashed on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any


class NewerFieldWarning(UserWarning):
    """A field this cnnlab does not know, probably written by a newer version; it is ignored."""


NUMBER = "number"  # int or float (NaN included: a diverged loss is a number), not bool
JSON_KINDS = {
    dict: "an object",
    list: "a list",
    str: "a string",
    int: "an integer",
    bool: "true or false",
    NUMBER: "a number",
    type(None): "null",
}


@dataclass(frozen=True)
class Field:
    """What one field may hold: ``kinds`` (types, or NUMBER), whether it must be present, a
    minimum for numbers, and the kind of every item of a list (or every value of an object)."""

    kinds: tuple[Any, ...]
    required: bool = True
    minimum: float | None = None
    items: Any = None


def is_kind(value: Any, kind: Any) -> bool:
    if kind is NUMBER:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)


def check_field(value: Any, field: Field, where: str) -> None:
    """One value against its Field; ValueError naming ``where`` (file and field) otherwise."""
    if not any(is_kind(value, kind) for kind in field.kinds):
        expected = " or ".join(JSON_KINDS.get(kind, str(kind)) for kind in field.kinds)
        raise ValueError(
            f"{where} must be {expected}, received {type(value).__name__} {value!r:.60}"
        )
    if field.minimum is not None and is_kind(value, NUMBER) and value < field.minimum:
        raise ValueError(f"{where} must be at least {field.minimum:g}, received {value!r}")
    if field.items is not None and isinstance(value, (list, dict)):
        for key, item in value.items() if isinstance(value, dict) else enumerate(value):
            check_field(item, field.items, f"{where}[{key!r}]")


def check_fields(
    document: Any, schema: dict[str, Field], source: str, report_unknown: bool = True
) -> dict[str, Any]:
    """The document (a JSON object) when every field fits its schema. Fields missing or of the
    wrong type raise ValueError naming ``source`` and the field; unknown fields are reported
    (unless ``report_unknown`` is False: files that other tools extend)."""
    if not isinstance(document, dict):
        raise ValueError(f"{source}: expected a JSON object, received {type(document).__name__}")
    for key in document:
        if key not in schema and report_unknown:
            warnings.warn(
                f"{source}: unknown field {key!r} ignored (written by a newer cnnlab?)",
                NewerFieldWarning,
                stacklevel=2,
            )
    for key, field in schema.items():
        if key in document:
            check_field(document[key], field, f"{source}: field {key!r}")
        elif field.required:
            raise ValueError(f"{source}: field {key!r} is missing")
    return document


NUMBERS = Field((list,), items=Field((NUMBER,)))
ARCHIVE = {
    "format": Field((str,)),
    "format_version": Field((int,)),
    "arrays": Field((list,), items=Field((str,))),
    "checksum": Field((str,)),
}
MODEL_META = {
    **ARCHIVE,
    "model_class": Field((str,), required=False),
    "model_config": Field((dict, list), required=False),
    "compile_config": Field((dict, type(None)), required=False),
    "weights_only": Field((bool,), required=False),
}
CHECKPOINT_META = {
    **ARCHIVE,
    "model_config": Field((dict,)),
    "compile_config": Field((dict, type(None))),
    "epoch": Field((int,), minimum=0),
    "history": Field((dict,), items=NUMBERS),
    "epoch_seconds": NUMBERS,
    "rng_states": Field((dict,), items=Field((dict,))),
}


def check_checkpoint_meta(meta: Any, source: str) -> dict[str, Any]:
    """A checkpoint's metadata: the schema, and a history of exactly ``epoch`` entries per key."""
    check_fields(meta, CHECKPOINT_META, source)
    epoch = meta["epoch"]
    for key, values in [*meta["history"].items(), ("epoch_seconds", meta["epoch_seconds"])]:
        if len(values) != epoch:
            raise ValueError(
                f"{source}: field {key!r} holds {len(values)} values for {epoch} finished epochs"
            )
    return meta


def check_model_meta(meta: Any, source: str) -> dict[str, Any]:
    """A model file's metadata (model.save or save_weights)."""
    check_fields(meta, MODEL_META, source)
    if not meta.get("weights_only") and "model_config" not in meta:
        raise ValueError(f"{source}: field 'model_config' is missing")
    return meta


CHECKERS = {"cnnlab-model": check_model_meta, "cnnlab-checkpoint": check_checkpoint_meta}


# A run directory's JSON files: the fields cnnlab reads back (approx, compare and the lab add more).
RUN_CONFIG = {
    "kind": Field((str,), required=False),
    "model": Field((dict, list), required=False),
    "training": Field((dict,), required=False),
    "dataset": Field((str,), required=False),
    "engine": Field((str,), required=False),
    "created": Field((str,), required=False),
}
RUN_METRICS = {
    **{
        key: Field((NUMBER, type(None)), required=False)
        for key in (
            "test_loss",
            "test_accuracy",
            "precision_macro",
            "recall_macro",
            "f1_macro",
            "roc_auc_ovr",
        )
    },
    "params": Field((int,), required=False, minimum=0),
    "epoch_seconds": Field((list,), False, items=Field((NUMBER,))),
    "class_names": Field((list,), False, items=Field((str,))),
    "per_class": Field(
        (list,), False, items=Field((dict,), items=Field((str, NUMBER, type(None))))
    ),
    "confusion_matrix": Field((list,), False, items=Field((list,), items=Field((NUMBER,)))),
    "engine": Field((str,), required=False),
    "dataset": Field((str,), required=False),
}
RUN_FILES = {"config.json": RUN_CONFIG, "metrics.json": RUN_METRICS}
