"""cnnlab -> Keras: a model's ``config.json`` as Keras 3's ``serialize_keras_object`` writes it
(Sequential and functional models, nested ones, the compile settings)."""

from __future__ import annotations

from typing import Any

from .common import FLOAT32_POLICY, MODEL_CLASSES, camel_case, model_class_name, node_offset


def to_keras_config(model: Any) -> dict[str, Any]:
    """The model's ``config.json``: ``serialize_keras_object(model)`` as Keras 3 writes it."""
    serialized = keras_model_object(model)
    compile_config = keras_compile_config(model)
    if compile_config:
        serialized["compile_config"] = compile_config
    return serialized


def keras_model_object(model: Any) -> dict[str, Any]:
    """A Sequential or functional model (top level or nested) in Keras's serialized form."""
    config = model.get_config()
    if model_class_name(model) == "Sequential":
        inner = keras_sequential_config(model, config)
        head = {"module": "keras", "class_name": "Sequential", "registered_name": None}
    else:
        inner = keras_functional_config(model, config)
        head = {
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "registered_name": "Functional",
        }
    input_shape = getattr(model, "input_shape", None)
    build = (
        {"input_shape": batch_shape(input_shape)}
        if input_shape is not None
        else {"input_shape": None}
    )
    return {**head, "config": inner, "build_config": build}


def keras_sequential_config(model: Any, config: dict[str, Any]) -> dict[str, Any]:
    layers = {layer.name: layer for layer in model.layers}
    specs = [
        keras_layer_object(spec, layers.get(spec["config"].get("name")))
        for spec in config["layers"]
    ]
    inner = {"name": config["name"], "trainable": True, "dtype": FLOAT32_POLICY, "layers": specs}
    if specs and specs[0]["class_name"] == "InputLayer":
        inner["build_input_shape"] = specs[0]["config"]["batch_shape"]
    return inner


def keras_functional_config(model: Any, config: dict[str, Any]) -> dict[str, Any]:
    """Layers in Keras's order (see ``keras_layer_order``), tensors as ``__keras_tensor__``."""
    by_name = {spec["name"]: spec for spec in config["layers"]}
    layers = {layer.name: layer for layer in model.layers}
    shapes = output_shapes(config, layers)
    specs = []
    for name in keras_layer_order(config):
        spec = by_name[name]
        serialized = keras_layer_object(spec, layers.get(name))
        serialized["name"] = name
        serialized["inbound_nodes"] = keras_inbound_nodes(spec["inbound_nodes"], by_name, shapes)
        specs.append(serialized)
    return {
        "name": config["name"],
        "trainable": True,
        "layers": specs,
        "input_layers": keras_tensor_refs(config["input_layers"], by_name),
        "output_layers": keras_tensor_refs(
            config["output_layers"], by_name, config.get("single_output", True)
        ),
    }


def keras_layer_object(spec: dict[str, Any], layer: Any) -> dict[str, Any]:
    """One layer, ``{"module": "keras.layers", "class_name", "config", "build_config"}``."""
    if spec["class_name"] in MODEL_CLASSES:
        if layer is None:
            raise ValueError(
                f"nested model {spec['config'].get('name')!r} has no layer object to save"
            )
        return keras_model_object(layer)
    config = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in spec["config"].items()
    }
    serialized = {
        "module": "keras.layers",
        "class_name": spec["class_name"],
        "config": config,
        "registered_name": None,
    }
    input_shape = getattr(layer, "input_shape", None)
    if spec["class_name"] != "InputLayer" and input_shape is not None:
        serialized["build_config"] = {"input_shape": batch_shape(input_shape)}
    return serialized


def batch_shape(shape: Any) -> list[Any]:
    """(28, 28, 1) -> [None, 28, 28, 1]; a list of shapes (a multi-input layer) -> a list of
    them."""
    if shape and isinstance(shape[0], (tuple, list)):
        return [batch_shape(s) for s in shape]
    return [None, *(int(d) for d in shape)]


def output_shapes(config: dict[str, Any], layers: dict[str, Any]) -> dict[str, Any]:
    """Each functional layer's output shape without the batch axis (None where unknown)."""
    shapes = {}
    for spec in config["layers"]:
        if spec["class_name"] == "InputLayer":
            shapes[spec["name"]] = spec["config"]["batch_shape"][1:]
        else:
            shapes[spec["name"]] = getattr(layers.get(spec["name"]), "output_shape", None)
    return shapes


def keras_inbound_nodes(
    refs: list[list[Any]], by_name: dict[str, Any], shapes: dict[str, Any]
) -> list[dict[str, Any]]:
    """cnnlab's [[layer, node, tensor], ...] of the layer's one call -> Keras's node list."""
    if not refs:
        return []
    tensors = []
    for name, node, tensor in refs:
        shape = shapes.get(name)
        tensors.append(
            {
                "class_name": "__keras_tensor__",
                "config": {
                    "shape": None if shape is None else [None, *shape],
                    "dtype": "float32",
                    "keras_history": [name, node + node_offset(by_name[name]), tensor],
                },
            }
        )
    return [{"args": [tensors[0] if len(tensors) == 1 else tensors], "kwargs": {}}]


def keras_tensor_refs(
    refs: list[list[Any]], by_name: dict[str, Any], single: bool = True
) -> list[Any]:
    """input_layers/output_layers: one [name, node, tensor] flat, several (or a list of one
    output) as a list, as Keras writes ``Model(x, y)`` and ``Model([x1, x2], [y])``."""
    converted = [[name, node + node_offset(by_name[name]), tensor] for name, node, tensor in refs]
    return converted[0] if len(converted) == 1 and single else converted


def keras_layer_order(config: dict[str, Any]) -> list[str]:
    """Keras's order of a functional model's layers (``map_graph`` in keras/src/ops/function.py):
    deepest first (depth = longest path to an output), ties in the order that a depth-first walk
    from the outputs first meets them. Keras numbers the weight groups in this order."""
    parents = {spec["name"]: [ref[0] for ref in spec["inbound_nodes"]] for spec in config["layers"]}
    first_seen: dict[str, int] = {}
    post_order: list[str] = []

    def visit(name: str) -> None:
        if name in post_order:
            return
        first_seen.setdefault(name, len(first_seen))
        for parent in parents[name]:
            visit(parent)
        post_order.append(name)

    for name, _, _ in config["output_layers"]:
        visit(name)
    depth: dict[str, int] = {}
    for name in reversed(post_order):
        here = depth.setdefault(name, 0)
        for parent in parents[name]:
            depth[parent] = max(depth.get(parent, 0), here + 1)
    unused_inputs = [ref[0] for ref in config["input_layers"] if ref[0] not in depth]
    return sorted(post_order, key=lambda n: (-depth[n], first_seen[n])) + unused_inputs


def keras_compile_config(model: Any) -> dict[str, Any] | None:
    """Optimizer, loss and metrics as Keras's ``get_compile_config`` writes them; None if not
    compiled."""
    optimizer, loss = getattr(model, "optimizer", None), getattr(model, "loss", None)
    if optimizer is None or loss is None:
        return None
    settings = optimizer.get_config()
    optimizer_object = {
        "module": "keras.optimizers",
        "class_name": keras_optimizer_class(settings["name"]),
        "config": {k: v for k, v in settings.items() if k != "name" or v},
        "registered_name": None,
    }
    return {
        "optimizer": optimizer_object,
        "loss": keras_loss(loss),
        "loss_weights": None,
        "metrics": keras_metrics(getattr(model, "metrics", None)),
        "weighted_metrics": None,
        "run_eagerly": False,
        "steps_per_execution": 1,
        "jit_compile": False,
    }


def keras_optimizer_class(name: str) -> str:
    """ "adam" -> "Adam", "rmsprop" -> "RMSprop", "sgd" -> "SGD" (Keras's class names)."""
    known = {
        "sgd": "SGD",
        "rmsprop": "RMSprop",
        "adamw": "AdamW",
        "adam": "Adam",
        "nadam": "Nadam",
        "adagrad": "Adagrad",
        "adadelta": "Adadelta",
        "adamax": "Adamax",
    }
    return known.get(name.lower(), camel_case(name))


def keras_loss(loss: Any) -> Any:
    """A loss by Keras name, or as a serialized Keras loss object when it has arguments
    (from_logits)."""
    config = (
        loss.get_config()
        if hasattr(loss, "get_config")
        else {"name": getattr(loss, "name", str(loss))}
    )
    name = config.get("name")
    arguments = {k: v for k, v in config.items() if k != "name"}
    if not arguments:
        return name
    return {
        "module": "keras.losses",
        "class_name": camel_case(name),
        "config": {"name": name, **arguments},
        "registered_name": None,
    }


def keras_metrics(metrics: Any) -> list[str] | None:
    names = [m if isinstance(m, str) else getattr(m, "name", str(m)) for m in metrics or []]
    return names or None
