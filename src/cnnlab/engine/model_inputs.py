"""What ``fit``, ``evaluate`` and ``predict`` accept as x and y: NumPy arrays of the model's input
shape (a list of them for several inputs), targets shaped like the output or sparse class
indices, no NaN or infinity. Each function takes the model and the name of the calling method,
which the error messages show (Keras's data adapters refuse the same inputs)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from . import losses as losses_module
from .config import floatx
from .errors import UnsupportedKerasFeature

if TYPE_CHECKING:
    from .model import Model

Data = np.ndarray | list[np.ndarray]  # one array per model input


def standardize_x(model: Model, x: Data, method: str) -> Data:
    """x as an array of floatx (a list of them for several inputs); builds the model
    from x's shape if it has no Input."""
    if x is None or not isinstance(x, (np.ndarray, list, tuple)) and not hasattr(x, "__array__"):
        raise UnsupportedKerasFeature(
            f"{model.name}.{method}: x must be NumPy arrays; {type(x).__name__} (a generator, "
            "tf.data or "
            "PyDataset input) is not supported by cnnlab"
        )
    if model.n_inputs > 1:
        if not isinstance(x, (list, tuple)) or len(x) != model.n_inputs:
            raise ValueError(
                f"{model.name}.{method}: the model has {model.n_inputs} inputs; pass a list of "
                f"{model.n_inputs} arrays"
            )
        return [
            model.check_input(np.asarray(part), shape, method)
            for part, shape in zip(x, model.input_shapes)
        ]
    x = np.asarray(x)
    if not model.built:
        model.build(x.shape[1:])
    return model.check_input(x, model.input_shape, method)


def check_input(model: Model, x: np.ndarray, shape: tuple[int, ...], method: str) -> np.ndarray:
    """One input array of shape (N, *shape) holding numbers, as floatx."""
    if x.ndim < 1 or tuple(x.shape[1:]) != tuple(shape):
        hint = (
            " (add the channel axis: x[..., None])"
            if tuple(x.shape[1:]) + (1,) == tuple(shape)
            else ""
        )
        raise ValueError(
            f"{model.name}.{method}: expected input of shape (N, {', '.join(map(str, shape))}), "
            f"received {x.shape}{hint}"
        )
    if x.dtype.kind not in "fiub":
        raise ValueError(f"{model.name}.{method}: x must hold numbers, received dtype {x.dtype}")
    return x.astype(floatx(), copy=False)


def standardize(model: Model, x: Data, y: np.ndarray, method: str) -> tuple[Data, np.ndarray]:
    """x and y as arrays with matching counts; NaN or infinity refused before training."""
    if y is None:
        raise ValueError(f"{model.name}.{method}: y (the targets) is missing")
    x, y = model.standardize_x(x, method), np.asarray(y)
    if sample_count(x) != len(y):
        raise ValueError(
            f"{model.name}.{method}: x has {sample_count(x)} samples but y has {len(y)}"
        )
    if len(y) == 0:
        raise ValueError(f"{model.name}.{method}: no samples")
    refuse_non_finite(model, x, y, method)
    if not isinstance(model.loss, losses_module.SparseCategoricalCrossentropy):
        y = model.match_output_shape(y.astype(floatx(), copy=False), method)
    elif isinstance(model.output_shape, tuple):
        check_sparse_labels(y, model.output_shape[-1], f"{model.name}.{method}")
    return x, y


def refuse_non_finite(model: Model, x: Data, y: np.ndarray, method: str) -> None:
    """A ValueError naming x or y when a float array holds NaN or infinity."""
    for name, array in [
        *(("x", part) for part in (x if isinstance(x, list) else [x])),
        ("y", y),
    ]:
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            raise ValueError(f"{model.name}.{method}: {name} contains NaN or infinity")


def match_output_shape(model: Model, y: np.ndarray, method: str) -> np.ndarray:
    """Targets shaped like the output; (N,) is accepted for a one-unit output, as Keras does."""
    if tuple(y.shape[1:]) == tuple(model.output_shape):
        return y
    if y.size == len(y) * math.prod(model.output_shape):
        return y.reshape(len(y), *model.output_shape)
    raise ValueError(
        f"{model.name}.{method}: y has shape {y.shape} but the model's output is (N, "
        f"{', '.join(map(str, model.output_shape))}); one-hot encode labels with to_categorical "
        "or use loss='sparse_categorical_crossentropy'"
    )


def check_sparse_labels(y: np.ndarray, classes: int, where: str) -> None:
    """Sparse labels are class indices 0..classes-1: another would index past the output, and a
    negative one would silently train the class counted from the end."""
    if y.dtype.kind not in "iub" and (y.dtype.kind != "f" or (y != np.round(y)).any()):
        raise ValueError(
            f"{where}: sparse labels must be whole class indices, received dtype {y.dtype}"
        )
    bad = (y < 0) | (y >= classes)
    if bad.any():
        raise ValueError(
            f"{where}: label {y[bad].flat[0].item()!r} is not a class index of the model's "
            f"{classes} outputs (expected 0 to {classes - 1})"
        )


def refuse_unsupported(method: str, **arguments: Any) -> None:
    """Keras arguments cnnlab does not implement, refused by name unless left at None."""
    for argument, value in arguments.items():
        if value is not None:
            raise UnsupportedKerasFeature(f"{method}: {argument}= is not supported by cnnlab")


def sample_count(x: Data) -> int:
    return len(x[0]) if isinstance(x, list) else len(x)


def take(x: Data, index: np.ndarray | slice) -> Data:
    """The samples at index of one array, or of each array of a multi-input x."""
    return [part[index] for part in x] if isinstance(x, list) else x[index]
