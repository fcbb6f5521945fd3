"""What the framework twins (``reference.torch``, ``reference.keras``) share: which layer
classes they support, and the built engine model a config describes. Imports no framework.

The engine's layer registry (``cnnlab.engine.layers.LAYER_CLASSES``) is the one list of layers:
every registered class is supported by both references (the torch twin in
``reference.torch.TORCH_LAYERS``, the Keras twin the keras.layers class of the same name), and
tests/test_layers_keras_extra.py fails for a registered layer without both twins."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

import numpy as np

from ..engine import Sequential
from ..engine.layers import LAYER_CLASSES
from ..engine.model import check_batch_size, split_validation

Config = dict[str, Any] | list[dict[str, Any]]


def supported_layers(twins: Collection[str] | None = None) -> tuple[str, ...]:
    """The registered layer classes, InputLayer first; with ``twins``, only those among them."""
    names = [
        name for name in LAYER_CLASSES if name != "InputLayer" and (twins is None or name in twins)
    ]
    return ("InputLayer", *names)


def check_supported(config: Config, framework: str, twins: Collection[str] | None = None) -> None:
    """ValueError for a malformed config or a layer class without a twin in the framework."""
    specs = (
        config
        if isinstance(config, list)
        else config.get("layers")
        if isinstance(config, dict)
        else None
    )
    if not isinstance(specs, list):
        raise ValueError(
            "a model config needs a list of layers: {'layers': [{'class_name': ..., 'config': "
            "...}]}"
        )
    supported = supported_layers(twins)
    for spec in specs:
        class_name = spec.get("class_name") if isinstance(spec, dict) else spec
        if class_name not in supported:
            raise ValueError(
                f"the {framework} reference does not support layer class {class_name!r}; "
                f"supported: {', '.join(supported)}"
            )


def engine_model_from_config(config: Config, framework: str, seed: int | None = None) -> Sequential:
    """The built cnnlab model of a config: its layers know their input and output shapes."""
    check_supported(config, framework)
    model = Sequential.from_config(config, seed=seed)
    if not model.built or not model.layers:
        raise ValueError(
            f"the {framework} reference needs a config with an input shape and at least one layer"
        )
    return model


def fit_inputs(
    engine_model: Sequential,
    x: np.ndarray,
    y: np.ndarray,
    batch_size: int,
    validation_split: float,
    validation_data: tuple[np.ndarray, np.ndarray] | None,
    rng: np.random.Generator | None,
):
    """What ``Sequential.fit`` does before its first batch, for a framework twin's trainer:
    checked arrays, the last floor-complement fraction as validation (before any shuffling),
    the batch size. Returns (x, y, validation_data or None, batch_size, rng)."""
    x, y = engine_model.standardize(x, y, "fit")
    batch_size = check_batch_size(batch_size)
    if validation_data is None and validation_split:
        x, y, validation_data = split_validation(x, y, validation_split)
    elif validation_data is not None:
        validation_data = engine_model.standardize(*validation_data, "fit validation_data")
    return x, y, validation_data, batch_size, rng
