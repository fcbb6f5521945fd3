"""Keras -> cnnlab: a Keras 3 (or legacy Keras 2) serialized model as cnnlab's config, and the
model built from it. Initializers and dtype policies become names; Keras-only arguments at their
defaults are dropped and any other value is refused (``UnsupportedKerasFeature``)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.engine.layers import LAYER_CLASSES

from .common import KERAS_ONLY_DEFAULTS, MODEL_CLASSES, keras_snake_case, node_offset


def build_model(path: Path, serialized: dict[str, Any]) -> Any:
    """The cnnlab model a Keras serialized model describes (weights not yet loaded)."""
    from cnnlab.engine.model import model_from_config

    class_name, config = model_config_from_keras(path, serialized)
    try:
        return model_from_config(config, class_name)
    except UnsupportedKerasFeature as err:
        raise UnsupportedKerasFeature(f"{path}: {err}") from None
    except (KeyError, TypeError, IndexError) as err:
        raise ValueError(f"{path}: the model config is incomplete or damaged ({err!r})") from None


def model_config_from_keras(path: Path, serialized: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """("Sequential" | "Functional", cnnlab's config) from Keras's serialized model
    (3 or legacy 2)."""
    class_name, config = serialized.get("class_name"), serialized.get("config")
    if (
        class_name not in MODEL_CLASSES
        or not isinstance(config, dict)
        or not isinstance(config.get("layers"), list)
    ):
        raise UnsupportedKerasFeature(
            f"{path}: model class {class_name!r} is not supported; cnnlab reads "
            "Sequential and functional models (subclassed models have no config)"
        )
    name = config.get("name")
    if class_name == "Sequential":
        layers = [layer_spec_from_keras(path, spec) for spec in config["layers"]]
        return "Sequential", {"name": name, "layers": sequential_input(path, layers, config)}
    layers = [
        {
            **layer_spec_from_keras(path, spec),
            "name": spec["name"],
            "inbound_nodes": inbound_refs(path, spec, config["layers"]),
        }
        for spec in config["layers"]
    ]
    outputs = config["output_layers"]
    return "Functional", {
        "name": name,
        "layers": layers,
        "input_layers": tensor_refs(config["input_layers"], config["layers"]),
        "output_layers": tensor_refs(outputs, config["layers"]),
        "single_output": is_ref(outputs),
    }


def sequential_input(
    path: Path, layers: list[dict[str, Any]], config: dict[str, Any]
) -> list[dict[str, Any]]:
    """A Sequential's layers with an InputLayer first
    (Keras 2 kept the shape on the first layer)."""
    if layers and layers[0]["class_name"] == "InputLayer":
        return layers
    shape = config.get("build_input_shape") or (
        layers[0]["config"].pop("batch_input_shape", None) if layers else None
    )
    if shape is None:
        return layers
    return [{"class_name": "InputLayer", "config": {"batch_shape": list(shape)}}, *layers]


def layer_spec_from_keras(path: Path, spec: dict[str, Any]) -> dict[str, Any]:
    """{"class_name", "config"} in cnnlab's form; a nested model recursively."""
    class_name = spec.get("class_name")
    if class_name in MODEL_CLASSES:
        kind, config = model_config_from_keras(path, spec)
        return {"class_name": kind, "config": config}
    if class_name not in LAYER_CLASSES:
        layer = (spec.get("config") or {}).get("name", "?")
        raise UnsupportedKerasFeature(
            f"{path}: layer class {class_name} (layer {layer!r}) is not supported by cnnlab; "
            f"supported: {', '.join(sorted(LAYER_CLASSES))}"
        )
    config = dict(spec.get("config") or {})
    if class_name == "InputLayer":
        return {"class_name": "InputLayer", "config": input_layer_config(path, config)}
    return {"class_name": class_name, "config": layer_config_from_keras(path, class_name, config)}


def input_layer_config(path: Path, config: dict[str, Any]) -> dict[str, Any]:
    shape = config.get("batch_shape") or config.get("batch_input_shape")
    for key, default in KERAS_ONLY_DEFAULTS.items():
        if config.get(key, default) != default:
            raise UnsupportedKerasFeature(
                f"{path}: Input {config.get('name')!r}: {key}={config[key]!r} is not supported"
            )
    return {
        "name": config.get("name"),
        "batch_shape": shape,
        "dtype": dtype_name(config.get("dtype")),
    }


def layer_config_from_keras(path: Path, class_name: str, config: dict[str, Any]) -> dict[str, Any]:
    """Keras's layer config as cnnlab's constructor takes it: initializers and dtype policies as
    names, Keras-only arguments at their defaults dropped (any other value refused)."""
    converted = {}
    for key, value in config.items():
        if key in KERAS_ONLY_DEFAULTS:
            if value != KERAS_ONLY_DEFAULTS[key]:
                raise UnsupportedKerasFeature(
                    f"{path}: {class_name} {config.get('name')!r}: {key}={value!r} is not "
                    "supported by cnnlab"
                )
            continue
        if key == "dtype":
            value = dtype_name(value)
        elif isinstance(value, dict) and "class_name" in value:
            value = object_name(path, class_name, key, value)
        converted[key] = value
    return converted


def dtype_name(dtype: Any) -> str | None:
    """ "float32" from a dtype string or a serialized DTypePolicy."""
    if isinstance(dtype, dict):
        return (dtype.get("config") or {}).get("name")
    return dtype


def object_name(path: Path, class_name: str, key: str, value: dict[str, Any]) -> str:
    """A serialized Keras object (an initializer, an activation) as its snake-case name, when it
    carries no arguments cnnlab would have to honour."""
    arguments = {
        k: v for k, v in (value.get("config") or {}).items() if v is not None and k != "name"
    }
    if arguments:
        raise UnsupportedKerasFeature(
            f"{path}: {class_name}: {key}={value['class_name']}({arguments}) is not "
            "supported by cnnlab (only its arguments' defaults)"
        )
    return keras_snake_case(value["class_name"])


def keras_tensors(value: Any) -> Iterator[dict[str, Any]]:
    """Every ``__keras_tensor__`` in a node's args, depth first, in order."""
    if isinstance(value, dict) and value.get("class_name") == "__keras_tensor__":
        yield value
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from keras_tensors(item)


def inbound_refs(path: Path, spec: dict[str, Any], layers: list[dict[str, Any]]) -> list[list[Any]]:
    """A functional layer's input tensors as cnnlab's [[layer, node, tensor], ...] (one call)."""
    nodes = spec.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise UnsupportedKerasFeature(
            f"{path}: layer {spec['name']!r} is called {len(nodes)} times; "
            "cnnlab supports each layer called once (no shared layers)"
        )
    if not nodes:
        return []
    node = nodes[0]
    if isinstance(node, list):  # Keras 2: [[name, node, tensor, kwargs], ...]
        return tensor_refs([entry[:3] for entry in node], layers)
    extra = {k: v for k, v in (node.get("kwargs") or {}).items() if v is not None}
    if extra:
        raise UnsupportedKerasFeature(
            f"{path}: layer {spec['name']!r} is called with {sorted(extra)}; not supported"
        )
    return tensor_refs(
        [t["config"]["keras_history"] for t in keras_tensors(node.get("args"))], layers
    )


def is_ref(value: Any) -> bool:
    """True for one [layer, node, tensor] (Keras writes a single input or output so)."""
    return isinstance(value, list) and len(value) == 3 and isinstance(value[0], str)


def tensor_refs(refs: Any, layers: list[dict[str, Any]]) -> list[list[Any]]:
    """Keras's [name, node, tensor] (flat for one, nested for several) as a list of cnnlab refs,
    node indices of nested functional models counted from their first call."""
    if is_ref(refs):
        refs = [refs]
    kinds = {spec.get("name"): spec for spec in layers}
    return [
        [name, int(node) - node_offset(kinds.get(name, {"class_name": ""})), int(tensor)]
        for name, node, tensor in refs
    ]
