"""Legacy ``.h5`` full-model files (Keras 2, or Keras 3's ``model.save("m.h5")``): the config in
the ``model_config`` attribute, the weights under ``model_weights/<layer>/`` in each group's
``weight_names`` order, the compile settings in ``training_config``. Read only."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .common import MAX_JSON_BYTES, is_model, keras_snake_case
from .compiling import compile_from_keras
from .config_in import build_model
from .weights import open_h5, read_dataset, safe_group

if TYPE_CHECKING:
    import h5py


def load_legacy_h5(path: Path, compile: bool) -> Any:
    """A Keras 2 (or Keras 3 legacy) ``.h5`` full-model file: config and weights."""
    with open_h5(path, path) as h5:
        if "model_config" not in h5.attrs:
            raise ValueError(
                f"{path}: not a Keras full-model .h5 file (no model_config attribute; "
                "a weights-only file cannot be loaded as a model)"
            )
        config = json_attribute(path, h5, "model_config")
        model = build_model(path, config)
        read_legacy_weights(path, safe_group(path, h5, "model_weights"), model)
        if compile and "training_config" in h5.attrs:
            compile_from_keras(
                path, model, legacy_compile_config(json_attribute(path, h5, "training_config"))
            )
    return model


def json_attribute(path: Path, h5: h5py.File, name: str) -> dict[str, Any]:
    raw = h5.attrs[name]
    raw = raw.decode() if isinstance(raw, bytes) else str(raw)
    if len(raw) > MAX_JSON_BYTES:
        raise ValueError(
            f"{path}: attribute {name} is larger than {MAX_JSON_BYTES:,} bytes; refused"
        )
    try:
        return json.loads(raw)
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: damaged {name} ({err})") from None


def legacy_compile_config(training: dict[str, Any]) -> dict[str, Any]:
    """Keras 2's training_config as a Keras 3 compile_config (the optimizer under its own key)."""
    optimizer = dict(training.get("optimizer_config") or {})
    config = {
        k: v
        for k, v in (optimizer.get("config") or {}).items()
        if k not in ("is_legacy_optimizer", "jit_compile") and not (k == "decay" and v == 0)
    }
    return {
        "optimizer": {"class_name": optimizer.get("class_name"), "config": config},
        "loss": training.get("loss"),
        "metrics": flat_metrics(training.get("metrics")),
    }


def flat_metrics(metrics: Any) -> list[str] | None:
    """Keras 2 wrote metrics per output ([["accuracy"]]); cnnlab's models have one output."""
    flat: list[str] = []
    for metric in metrics or []:
        flat += (
            flat_metrics(metric)
            if isinstance(metric, list)
            else [
                metric
                if isinstance(metric, str)
                else keras_snake_case(metric.get("class_name", ""))
            ]
        )
    return flat or None


def read_legacy_weights(path: Path, weights: h5py.Group, model: Any) -> None:
    """Each top-level layer's weights from ``model_weights/<name>``, in ``weight_names`` order
    (a nested model's weights follow its layers' order)."""
    for layer in model.layers:
        targets = flat_weights(layer)
        group = safe_group(path, weights, layer.name, required=bool(targets))
        names = [
            n.decode() if isinstance(n, bytes) else str(n)
            for n in (group.attrs.get("weight_names", []) if group is not None else [])
        ]
        if len(names) != len(targets):
            raise ValueError(
                f"{path}: layer {layer.name!r} holds {len(names)} weights in the file, "
                f"its config needs {len(targets)}"
            )
        for name, target in zip(names, targets):
            parent, _, key = name.rpartition("/")
            stored = safe_group(path, group, parent) if parent else group
            target[...] = read_dataset(
                path, stored, key, target.shape, f"{layer.name!r} weight {name!r}"
            )


def flat_weights(layer: Any) -> list[np.ndarray]:
    """Every weight of a layer, or of a nested model's layers in order."""
    if is_model(layer):
        return [w for inner in layer.layers for w in flat_weights(inner)]
    return list(layer.weights_dict().values())
