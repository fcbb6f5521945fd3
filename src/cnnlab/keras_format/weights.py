"""``model.weights.h5`` both ways: the layers in Keras's order and their h5 group names, the
optimizer's variables in Keras's order, and reading HDF5 safely (no links followed, every stored
shape checked before it is read)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .common import KERAS_SLOT_GROUPS, h5py_module, is_model, keras_snake_case, model_class_name
from .config_out import keras_layer_order

if TYPE_CHECKING:
    import h5py


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
