"""Keras 3's model file (``.keras``) for cnnlab models, both ways; legacy Keras 2 ``.h5`` files
read.

A ``.keras`` file is a zip archive of three members (keras/src/saving/saving_lib.py):

- ``metadata.json``: ``{"keras_version": ..., "date_saved": ...}``;
- ``config.json``: the model as ``serialize_keras_object`` writes it, ``{"module", "class_name",
  "config", "registered_name", "build_config", "compile_config"}``, each layer in the same form;
  a functional model's layers add ``"name"`` and ``"inbound_nodes"``, one ``{"args", "kwargs"}``
  per call whose tensors are ``{"class_name": "__keras_tensor__", "config": {"keras_history":
  [layer, node, tensor], ...}}``;
- ``model.weights.h5``: one group per layer, named by its *class* in snake case and numbered in
  the model's layer order (``layers/conv2d/vars/0`` the kernel, ``.../1`` the bias,
  ``layers/conv2d_1/...``), nested models inside (``layers/sequential/layers/dense/vars/0``), the
  optimizer's variables in ``optimizer/vars/0..`` (iterations, learning rate, then its slots).

cnnlab's configs already use Keras's argument names, so the translation is mostly wrapping and
unwrapping; the engine validates what it receives and refuses (``UnsupportedKerasFeature``) any
argument it does not implement. A layer's weights are its ``weights_dict()`` in Keras's order.

A legacy ``.h5`` file (Keras 2, or Keras 3's ``model.save("m.h5")``) holds the config as the
attribute ``model_config``, the weights under ``model_weights/<layer>/`` in the order of each
group's ``weight_names`` attribute, and the compile settings in ``training_config``.

Files are read with bounded sizes (the JSON members are size-checked, every weight's stored
shape is compared with the shape the config implies before it is read) and without following
links inside the HDF5 file; they are written atomically (a temporary file, then a rename).
"""

from __future__ import annotations

import contextlib
import datetime
import io
import json
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

if TYPE_CHECKING:
    import h5py

from cnnlab import __version__
from cnnlab.engine import limits, saving
from cnnlab.engine import losses as engine_losses
from cnnlab.engine import optimizers as engine_optimizers
from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.engine.layers import LAYER_CLASSES

__all__ = ["KERAS_FORMAT_VERSION", "load_keras", "register", "save_keras", "to_keras_config"]

KERAS_FORMAT_VERSION = (
    "3.15.1"  # the Keras release whose file layout this writes (and is tested against)
)
MAX_JSON_BYTES = 64 * 2**20  # config.json / metadata.json larger than this are refused unread
MODEL_CLASSES = ("Sequential", "Functional", "Model")
FLOAT32_POLICY = {
    "module": "keras",
    "class_name": "DTypePolicy",
    "config": {"name": "float32"},
    "registered_name": None,
}

# Keras-only arguments cnnlab has no counterpart for; dropped when at these values (else refused).
KERAS_ONLY_DEFAULTS: dict[str, Any] = {
    "quantization_config": None,
    "optional": False,
    "sparse": False,
    "ragged": False,
    "activity_regularizer": None,
}

# The order of an optimizer's slot variables in Keras (after iterations and learning rate): one
# ``add_optimizer_variables`` call per group, each interleaving its slots weight by weight.
# Names are cnnlab's slot names; Keras calls SGD's "velocity" "momentum".
KERAS_SLOT_GROUPS: dict[str, list[tuple[str, ...]]] = {
    "sgd": [("velocity",)],
    "adam": [("momentum", "velocity"), ("velocity_hat",)],
    "adamw": [("momentum", "velocity"), ("velocity_hat",)],
    "rmsprop": [("velocity",)],
    "adagrad": [("accumulator",)],
    "adadelta": [("accumulated_grad", "accumulated_delta_var")],
}


def h5py_module():  # noqa: ANN201 - imported on first use: 60 ms that most commands never need
    import h5py

    return h5py


def register() -> None:
    """Make ``model.save("m.keras")`` and ``load_model("m.keras" | "m.h5")`` use this module."""
    saving.register_format(".keras", save_keras, load_keras)
    saving.register_format(".h5", save_keras, load_keras)


# ============================================================================ names
def keras_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: Conv2D -> conv2d, ReLU -> re_lu (h5 group names)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def camel_case(name: str) -> str:
    """glorot_uniform -> GlorotUniform, categorical_crossentropy -> CategoricalCrossentropy."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def is_model(obj: Any) -> bool:
    """True for a cnnlab model (Sequential or functional), also when used as a layer."""
    return hasattr(obj, "layers") and hasattr(obj, "get_config") and hasattr(obj, "get_weights")


def model_class_name(model: Any) -> str:
    """ "Sequential" or "Functional", as Keras names the class of the model."""
    from cnnlab.engine.sequential import Sequential

    return "Sequential" if isinstance(model, Sequential) else "Functional"


# =================================================================== cnnlab -> Keras
def save_keras(model: Any, path: str | Path) -> None:
    """Write ``model`` as a Keras 3 ``.keras`` file that ``keras.models.load_model`` reads."""
    path = Path(path)
    if path.suffix.lower() != ".keras":
        raise UnsupportedKerasFeature(
            f"{path}: cnnlab writes Keras's .keras format, not legacy {path.suffix}; "
            "save as .keras (or .cnnlab)"
        )
    config = to_keras_config(model)
    metadata = {
        "keras_version": KERAS_FORMAT_VERSION,
        "saved_by": f"cnnlab {__version__}",
        "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S"),
    }
    weights = weights_h5_bytes(model, bool(config.get("compile_config")))

    def write(file: BinaryIO) -> None:
        with zipfile.ZipFile(file, "w") as archive:
            archive.writestr("metadata.json", json.dumps(metadata))
            archive.writestr("config.json", json.dumps(config))
            archive.writestr("model.weights.h5", weights)

    saving.atomic_write(path, write)


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


def node_offset(spec: dict[str, Any]) -> int:
    """Keras counts a nested functional model's own graph as its node 0; its calls start at 1."""
    return 1 if spec["class_name"] in ("Functional", "Model") else 0


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


# ------------------------------------------------------------------------ weights
def keras_ordered_layers(model: Any) -> list[Any]:
    """A model's layers in the order Keras keeps them (Sequential: as added; functional: see
    ``keras_layer_order``)."""
    if model_class_name(model) == "Sequential":
        return list(model.layers)
    by_name = {layer.name: layer for layer in model.layers}
    return [by_name[name] for name in keras_layer_order(model.get_config()) if name in by_name]


def weight_groups(model: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(h5 group path, layer or model) in Keras's order; models before their own layers."""
    used: dict[str, int] = {}
    for layer in keras_ordered_layers(model):
        kind = keras_snake_case(
            model_class_name(layer) if is_model(layer) else type(layer).__name__
        )
        name = kind if kind not in used else f"{kind}_{used[kind] + 1}"
        used[kind] = used.get(kind, -1) + 1
        path = f"{prefix}layers/{name}"
        yield path, layer
        if is_model(layer):
            yield from weight_groups(layer, f"{path}/")


def layer_weights(layer: Any) -> list[np.ndarray]:
    """A layer's own weights in Keras's order (none for a model: its layers hold them)."""
    return [] if is_model(layer) else list(layer.weights_dict().values())


def weights_h5_bytes(model: Any, with_optimizer: bool) -> bytes:
    """``model.weights.h5``: every layer's weights, and the optimizer's variables if compiled."""
    buffer = io.BytesIO()
    with h5py_module().File(buffer, "w") as h5:
        for path, layer in weight_groups(model):
            group = h5.create_group(f"{path}/vars")
            group.attrs["name"] = layer.name
            for index, value in enumerate(layer_weights(layer)):
                group[str(index)] = np.asarray(value, dtype=np.float32)
        if with_optimizer and (variables := optimizer_variables(model)) is not None:
            group = h5.create_group("optimizer/vars")
            group.attrs["name"] = model.optimizer.get_config()["name"]
            for index, value in enumerate(variables):
                group[str(index)] = value
        h5.create_group("vars").attrs["name"] = model.name
    return buffer.getvalue()


def trainable_weights(model: Any, prefix: str = "") -> list[tuple[str, np.ndarray]]:
    """(optimizer key "layer/param", nested "model/layer/param"; array) of every trainable weight,
    in Keras's ``trainable_variables`` order."""
    found = []
    for layer in keras_ordered_layers(model):
        if not layer.trainable:
            continue
        if is_model(layer):
            found += trainable_weights(layer, f"{prefix}{layer.name}/")
        else:
            found += [(f"{prefix}{layer.name}/{key}", value) for key, value in layer.params.items()]
    return found


def slot_order(optimizer: Any) -> list[tuple[str, ...]] | None:
    """The optimizer's slot groups in Keras's order, or None where cnnlab does not know it."""
    groups = KERAS_SLOT_GROUPS.get(optimizer.get_config()["name"].lower())
    if groups is None:
        return None
    groups = [tuple(s for s in group if s in optimizer.slot_names) for group in groups]
    return [group for group in groups if group]


def optimizer_variables(model: Any) -> list[np.ndarray] | None:
    """Keras's optimizer variables: iterations, learning rate, then the slots (fresh ones where
    the optimizer has not stepped yet)."""
    optimizer, groups = model.optimizer, slot_order(model.optimizer)
    if groups is None:
        return None
    values = [
        np.array(optimizer.iterations, dtype=np.int64),
        np.array(optimizer.learning_rate, dtype=np.float32),
    ]
    for group in groups:
        for key, param in trainable_weights(model):
            slots = optimizer.slots.get(key, {})
            values += [
                np.asarray(
                    slots.get(name, np.full_like(param, optimizer.slot_initial_value)),
                    dtype=np.float32,
                )
                for name in group
            ]
    return values


# =================================================================== Keras -> cnnlab
def load_keras(path: str | Path, compile: bool = True) -> Any:
    """A cnnlab model from a Keras 3 ``.keras`` file or a legacy ``.h5`` full-model file."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if path.suffix.lower() == ".h5":
        return load_legacy_h5(path, compile)
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a Keras .keras file (not a zip archive; damaged or truncated?)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            config = read_json_member(path, archive, "config.json")
            model = build_model(path, config)
            if "model.weights.h5" not in archive.namelist():
                raise ValueError(f"{path}: no model.weights.h5 inside (the weights are missing)")
            with archive.open("model.weights.h5") as member, open_h5(path, member) as h5:
                read_weights(path, h5, model)
                if compile:
                    compile_from_keras(
                        path, model, config.get("compile_config"), h5.get("optimizer/vars")
                    )
    except (zipfile.BadZipFile, EOFError) as err:
        raise ValueError(f"{path}: damaged file ({err})") from None
    return model


def read_json_member(path: Path, archive: zipfile.ZipFile, member: str) -> dict[str, Any]:
    try:
        info = archive.getinfo(member)
    except KeyError:
        raise ValueError(f"{path}: not a Keras .keras file (no {member} inside)") from None
    if info.file_size > MAX_JSON_BYTES:
        raise ValueError(
            f"{path}: {member} declares {info.file_size:,} bytes (more than {MAX_JSON_BYTES:,}); "
            "refused"
        )
    try:
        config = limits.loads_json(archive.read(member), f"{path}: {member}")  # nesting bounded too
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: damaged {member} ({err})") from None
    if not isinstance(config, dict):
        raise ValueError(f"{path}: {member} is not a JSON object")
    return config


@contextlib.contextmanager
def open_h5(path: Path, source: Any) -> Iterator[h5py.File]:
    """``h5py.File`` on a path or file object; a damaged file becomes a ValueError naming
    ``path``."""
    try:
        h5 = h5py_module().File(source, "r")
    except (OSError, ValueError) as err:
        raise ValueError(f"{path}: damaged HDF5 weights ({err})") from None
    with h5:
        yield h5


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


# ------------------------------------------------------------------------ weights in
def read_weights(path: Path, h5: h5py.File, model: Any) -> None:
    """Fill every layer's weights from ``layers/<group>/vars/<i>``, shapes checked before
    reading."""
    for group_path, layer in weight_groups(model):
        targets = layer_weights(layer)
        stored = safe_group(path, h5, f"{group_path}/vars", required=bool(targets))
        count = 0 if stored is None else len(stored)
        if count != len(targets):
            raise ValueError(
                f"{path}: layer {layer.name!r} ({group_path}) holds {count} weights in the file, "
                f"its config needs {len(targets)}"
            )
        for index, target in enumerate(targets):
            target[...] = read_dataset(
                path, stored, str(index), target.shape, f"{layer.name!r} weight {index}"
            )


def safe_group(path: Path, h5: Any, name: str, required: bool = True) -> h5py.Group | None:
    """The group at ``name``, refusing soft and external links; None if absent and not required."""
    current = h5
    for part in name.split("/"):
        if part not in current:
            if required:
                raise ValueError(f"{path}: the weights file has no group {name!r}")
            return None
        if current.get(part, getclass=True, getlink=True) is not h5py_module().HardLink:
            raise ValueError(
                f"{path}: link {name!r} in the weights file is refused (links are not followed)"
            )
        current = current[part]
        if not isinstance(current, h5py_module().Group):
            raise ValueError(f"{path}: {name!r} in the weights file is not a group")
    return current


def read_dataset(
    path: Path, group: h5py.Group, key: str, shape: tuple[int, ...], what: str
) -> np.ndarray:
    """One stored array, after checking that it is a plain dataset of the expected shape."""
    if (
        key not in group
        or group.get(key, getclass=True, getlink=True) is not h5py_module().HardLink
    ):
        raise ValueError(f"{path}: {what} is missing from the weights file (or is a link)")
    dataset = group[key]
    if not isinstance(dataset, h5py_module().Dataset) or dataset.external or dataset.is_virtual:
        raise ValueError(f"{path}: {what} is not a plain dataset in the weights file")
    if tuple(dataset.shape) != tuple(shape):
        raise ValueError(
            f"{path}: {what} has shape {tuple(dataset.shape)} in the file, "
            f"the config needs {tuple(shape)}"
        )
    if dataset.dtype.kind not in "fiu":
        raise ValueError(f"{path}: {what} has dtype {dataset.dtype}, expected numbers")
    try:
        return dataset[()]
    except OSError as err:
        raise ValueError(f"{path}: {what} cannot be read ({err})") from None


# -------------------------------------------------------------------------- compile
def compile_from_keras(path: Path, model: Any, settings: Any, optimizer_vars: Any = None) -> None:
    """model.compile with Keras's compile_config (optimizer, loss, metrics); its saved variables
    (step count, learning rate, slots) restored when they match the model."""
    if not settings:
        return
    try:
        optimizer = engine_optimizers.get(settings["optimizer"])
        optimizer.learning_rate = float32_value(optimizer.learning_rate)
        loss = engine_losses.get(settings.get("loss"))  # a name or Keras's serialized loss object
        model.compile(optimizer=optimizer, loss=loss, metrics=settings.get("metrics"))
    except UnsupportedKerasFeature as err:
        raise UnsupportedKerasFeature(f"{path}: {err}") from None
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: the compile config is incomplete or damaged ({err!r})") from None
    if optimizer_vars is not None and not isinstance(optimizer_vars, h5py_module().Group):
        raise ValueError(f"{path}: optimizer/vars in the weights file is not a group")
    if optimizer_vars is not None:
        restore_optimizer(path, model, optimizer_vars)


def float32_value(value: Any) -> float:
    """The shortest float that is the same float32
    (Keras keeps rates in float32: 0.001, not 0.0010000000474974513)."""
    return float(str(np.float32(value)))


def restore_optimizer(path: Path, model: Any, stored: h5py.Group) -> None:
    """Set the optimizer's step count, learning rate and slots from Keras's variables; left as
    freshly compiled where their number does not match (a model saved before training)."""
    optimizer, groups = model.optimizer, slot_order(model.optimizer)
    weights = trainable_weights(model)
    if groups is None or len(stored) != 2 + sum(len(group) for group in groups) * len(weights):
        return
    optimizer.iterations = int(read_dataset(path, stored, "0", (), "optimizer iterations"))
    optimizer.learning_rate = float32_value(
        read_dataset(path, stored, "1", (), "optimizer learning rate")
    )
    index = 2
    for group in groups:
        for key, param in weights:
            for name in group:
                value = read_dataset(
                    path, stored, str(index), param.shape, f"optimizer slot {key}/{name}"
                )
                optimizer.slots.setdefault(key, {})[name] = value.astype(param.dtype)
                index += 1


# ---------------------------------------------------------------------- legacy .h5
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
