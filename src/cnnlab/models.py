"""Built-in model configs (the seed programs' networks) and model files in the same format.

A model is described by ``Sequential.get_config()``: ``{"name": ..., "layers": [{"class_name":
..., "config": {...}}, ...]}``. The built-ins are written out with explicit layer names, so
they are the same in every process (studies address layers by these names).
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

from .engine import Sequential, limits
from .errors import CnnlabError

Config = dict[str, Any]


def conv(name: str, filters: int, padding: str = "valid") -> dict:
    return {
        "class_name": "Conv2D",
        "config": {
            "name": name,
            "filters": filters,
            "kernel_size": [3, 3],
            "strides": [1, 1],
            "padding": padding,
            "activation": "relu",
        },
    }


def pool(name: str) -> dict:
    return {"class_name": "MaxPooling2D", "config": {"name": name, "pool_size": [2, 2]}}


def dense(name: str, units: int, activation: str) -> dict:
    return {
        "class_name": "Dense",
        "config": {"name": name, "units": units, "activation": activation},
    }


def layer(class_name: str, name: str, **config: Any) -> dict:
    return {"class_name": class_name, "config": {"name": name, **config}}


def seed_cnn(num_classes: int = 10, padding: str = "valid") -> list[dict]:
    """Conv32-Pool-Conv64-Pool-Flatten-Dropout(0.5)-Dense: the classic Keras MNIST CNN
    (seed 003)."""
    return [
        conv("conv2d", 32, padding),
        pool("max_pooling2d"),
        conv("conv2d_1", 64, padding),
        pool("max_pooling2d_1"),
        layer("Flatten", "flatten"),
        layer("Dropout", "dropout", rate=0.5),
        dense("dense", num_classes, "softmax"),
    ]


def seed_dense(num_classes: int = 2) -> list[dict]:
    """Dense64-Dense64-Flatten-Dropout(0.5)-Dense: seed 000's function approximator."""
    return [
        dense("dense", 64, "relu"),
        dense("dense_1", 64, "relu"),
        layer("Flatten", "flatten"),
        layer("Dropout", "dropout", rate=0.5),
        dense("dense_2", num_classes, "softmax"),
    ]


BUILTIN_MODELS = {
    "seed-cnn": ("the classic MNIST CNN (34,826 parameters on MNIST)", lambda k: seed_cnn(k)),
    "seed-cnn-same": (
        "the seed CNN with padding='same', for small images such as digits",
        lambda k: seed_cnn(k, "same"),
    ),
    "seed-dense": ("seed 000's dense network (4,482 parameters on 2 inputs)", seed_dense),
}


def model_config(spec: str, input_shape: tuple[int, ...], num_classes: int) -> Config:
    """The config of a built-in name or a JSON/TOML model file, with its Input set to
    input_shape."""
    if spec in BUILTIN_MODELS:
        layers = BUILTIN_MODELS[spec][1](num_classes)
        if spec == "seed-dense" and len(input_shape) > 1:
            layers = [layer("Flatten", "flatten_input"), *layers]
        name = spec
    else:
        loaded = read_model_file(Path(spec))
        layers = [s for s in loaded["layers"] if s.get("class_name") != "InputLayer"]
        name = loaded.get("name") or Path(spec).stem
    input_layer = {
        "class_name": "InputLayer",
        "config": {"name": "input_layer", "batch_shape": [None, *input_shape]},
    }
    return {"name": name, "layers": [input_layer, *layers]}


def read_model_file(path: Path) -> Config:
    """A model config from a .json or .toml file (``{"layers": [...]}`` or a bare JSON list)."""
    if not path.is_file():
        names = ", ".join(BUILTIN_MODELS)
        raise CnnlabError(
            f"unknown model {str(path)!r}: use a built-in name ({names}) or a .json/.toml model "
            "file"
        )
    try:
        text = limits.read_file(path).decode()
        config = (
            limits.loads_toml(text, str(path))
            if path.suffix == ".toml"
            else limits.loads_json(text, str(path))
        )
    except limits.LimitExceeded as err:
        raise CnnlabError(str(err)) from None
    except (UnicodeDecodeError, json.JSONDecodeError, tomllib.TOMLDecodeError) as err:
        raise CnnlabError(f"{path}: not a model file: {err}") from None
    if isinstance(config, list):
        config = {"layers": config}
    layers = config.get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list) or not all(isinstance(spec, dict) for spec in layers):
        raise CnnlabError(
            f"{path}: not a model file: expected a 'layers' list of {{class_name, config}} tables"
        )
    if not any(spec.get("class_name") != "InputLayer" for spec in layers):
        raise CnnlabError(f"{path}: the model has no layers")
    return config


def build_model(config: Config, num_classes: int, seed: int | None) -> Sequential:
    """The Sequential a config describes; its output must have one unit per class."""
    try:
        limits.check_model_params(
            lambda: Sequential.from_config(config, seed=seed), f"model {config.get('name', '')!r}"
        )
        model = Sequential.from_config(config, seed=seed)
    except limits.LimitExceeded as err:
        raise CnnlabError(str(err)) from None
    except (ValueError, TypeError) as err:
        first = config["layers"][0] if config.get("layers") else {}
        shape = (
            tuple(first.get("config", {}).get("batch_shape", [None])[1:])
            if first.get("class_name") == "InputLayer"
            else None
        )
        raise CnnlabError(
            f"model {config.get('name', '')!r} cannot be built for inputs of shape {shape}: {err}"
        ) from None
    units = model.output_shape[-1] if model.output_shape else None
    if units != num_classes:
        raise CnnlabError(
            f"model {config.get('name', '')!r} has {units} outputs but the dataset has "
            f"{num_classes} classes"
        )
    return model


def default_model(input_shape: tuple[int, ...]) -> str:
    """seed-cnn where it fits (28x28 and larger), seed-cnn-same for smaller images."""
    if len(input_shape) != 3:
        return "seed-dense"
    return "seed-cnn" if min(input_shape[:2]) >= 10 else "seed-cnn-same"
