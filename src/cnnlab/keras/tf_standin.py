"""What ``import tensorflow as tf`` gives under ``cnnlab run``: ``tf.keras`` and a few NumPy
helpers.

Keras tutorials written for TensorFlow use only ``tf.keras`` and a handful of functions beside it.
The stand-in offers exactly these (the one documented list, :data:`SUPPORTED`), computed with
NumPy; every result is an ``EagerArray``, a NumPy array that also answers ``.numpy()``:

- ``tf.keras``: the Keras of the run (``cnnlab.keras``, or real Keras 3 with ``--engine keras``)
- ``tf.nn.relu``, ``tf.nn.sigmoid``, ``tf.nn.softmax``, ``tf.nn.tanh``: the engine's activations
  (usable as ``activation=tf.nn.relu`` too)
- ``tf.argmax(x, axis=0)``, ``tf.reduce_mean``, ``tf.reduce_sum``, ``tf.reduce_max``
  (``axis=None``, ``keepdims=False``), ``tf.cast(x, dtype)``, ``tf.expand_dims(x, axis)``,
  ``tf.squeeze(x, axis=None)``, ``tf.one_hot(indices, depth)``
- ``tf.convert_to_tensor(value, dtype=None)``, ``tf.constant(value, dtype=None)``
- ``tf.float16``, ``tf.float32``, ``tf.float64``, ``tf.int32``, ``tf.int64``, ``tf.uint8``,
  ``tf.bool``
- ``tf.image.resize(images, size)``: bilinear, TensorFlow 2's half-pixel rule
- ``tf.random.set_seed(seed)``: ``keras.utils.set_random_seed``
- ``tf.config.list_physical_devices(kind)``: no GPU (``[]``); one CPU
- ``tf.executing_eagerly()``: True (what TensorFlow 2 answers; real Keras asks it too)
- ``tf.__version__``

Any other ``tf.X`` fails with one line: ``tf.data is TensorFlow, not Keras; ...``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np

from cnnlab import __version__ as cnnlab_version
from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.engine.graph import eager
from cnnlab.keras.activations import ActivationFunction, to_numpy

TF_VERSION = f"2.16.0+cnnlab.{cnnlab_version}"  # the first TensorFlow whose tf.keras is Keras 3
DTYPES = {
    "float16": np.float16,
    "float32": np.float32,
    "float64": np.float64,
    "int32": np.int32,
    "int64": np.int64,
    "uint8": np.uint8,
    "bool": np.bool_,
}


def argmax(x: Any, axis: int = 0) -> np.ndarray:
    """Index of the largest value along ``axis`` (TensorFlow's default axis is 0), int64."""
    return eager(np.argmax(to_numpy(x), axis=axis).astype(np.int64))


def reduction(numpy_function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """tf.reduce_<op>(x, axis=None, keepdims=False) from the NumPy reduction of the same name."""

    def reduce(
        x: Any, axis: int | Sequence[int] | None = None, keepdims: bool = False
    ) -> np.ndarray:
        axis = tuple(axis) if isinstance(axis, (list, tuple)) else axis
        return eager(numpy_function(to_numpy(x), axis=axis, keepdims=keepdims))

    reduce.__name__ = f"reduce_{numpy_function.__name__.removeprefix('a')}"
    return reduce


def cast(x: Any, dtype: Any) -> np.ndarray:
    """``x`` converted to ``dtype`` (tf.float32, "int32", np.uint8, ...)."""
    return eager(to_numpy(x).astype(dtype))


def convert_to_tensor(value: Any, dtype: Any = None) -> np.ndarray:
    """An array (float lists become float32, as TensorFlow makes them)."""
    array = to_numpy(value)
    if dtype is None and array.dtype == np.float64:
        dtype = np.float32
    return eager(array if dtype is None else array.astype(dtype))


def expand_dims(x: Any, axis: int) -> np.ndarray:
    """A new axis of length 1 at ``axis``."""
    return eager(np.expand_dims(to_numpy(x), axis))


def squeeze(x: Any, axis: int | Sequence[int] | None = None) -> np.ndarray:
    """Axes of length 1 removed (all of them, or those named)."""
    return eager(
        np.squeeze(to_numpy(x), axis=tuple(axis) if isinstance(axis, (list, tuple)) else axis)
    )


def one_hot(indices: Any, depth: int) -> np.ndarray:
    """indices (...) -> (..., depth) float32, zero rows for indices outside [0, depth)."""
    indices = to_numpy(indices).astype(np.int64)
    return eager((indices[..., None] == np.arange(depth)).astype(np.float32))


def resize_weights(size_in: int, size_out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bilinear sampling along one axis with half-pixel centres: lower index, upper index, weight of
    upper."""
    source = (np.arange(size_out) + 0.5) * (size_in / size_out) - 0.5
    lower = np.floor(source)
    weight = (source - lower).astype(np.float32)
    return clip_index(lower, size_in), clip_index(lower + 1, size_in), weight


def clip_index(index: np.ndarray, size: int) -> np.ndarray:
    """Indices outside [0, size) moved to the nearest edge (TensorFlow repeats the edge pixels)."""
    return np.clip(index, 0, size - 1).astype(np.int64)


def resize(images: Any, size: Sequence[int], method: str = "bilinear") -> np.ndarray:
    """tf.image.resize: images (N, H, W, C) or (H, W, C) -> (..., height, width, C) float32,
    bilinear."""
    if method != "bilinear":
        raise UnsupportedKerasFeature(
            f"tf.image.resize(method={method!r}) is not supported by cnnlab; only 'bilinear'"
        )
    x = to_numpy(images).astype(np.float32)
    for axis, size_out in ((-3, int(size[0])), (-2, int(size[1]))):
        lower, upper, weight = resize_weights(x.shape[axis], size_out)
        shape = [1] * x.ndim
        shape[axis] = size_out
        weight = weight.reshape(shape)
        x = np.take(x, lower, axis=axis) * (1 - weight) + np.take(x, upper, axis=axis) * weight
    return eager(x)


def set_seed(seed: int) -> None:
    """tf.random.set_seed: seeds the engine as keras.utils.set_random_seed does."""
    from cnnlab.utils import set_random_seed

    set_random_seed(seed)


class PhysicalDevice(NamedTuple):
    name: str
    device_type: str


def list_physical_devices(device_type: str | None = None) -> list[PhysicalDevice]:
    """No GPU; the CPU the engine runs on."""
    cpu = [PhysicalDevice("/physical_device:CPU:0", "CPU")]
    return cpu if device_type in (None, "CPU") else []


def executing_eagerly() -> bool:
    """True: every call computes at once, as TensorFlow 2's default mode."""
    return True


SUPPORTED: dict[str, dict[str, Any]] = {  # sub-namespace ("" for tf itself) -> names
    "": {
        "executing_eagerly": executing_eagerly,
        "argmax": argmax,
        "reduce_mean": reduction(np.mean),
        "reduce_sum": reduction(np.sum),
        "reduce_max": reduction(np.amax),
        "cast": cast,
        "convert_to_tensor": convert_to_tensor,
        "constant": convert_to_tensor,
        "expand_dims": expand_dims,
        "squeeze": squeeze,
        "one_hot": one_hot,
        **{name: np.dtype(dtype) for name, dtype in DTYPES.items()},
        "__version__": TF_VERSION,
    },
    "nn": {name: ActivationFunction(name) for name in ("relu", "sigmoid", "softmax", "tanh")},
    "image": {"resize": resize},
    "random": {"set_seed": set_seed},
    "config": {"list_physical_devices": list_physical_devices},
}


def supported_names() -> list[str]:
    """Every name of the stand-in, as a program writes it (keras, argmax, nn.softmax, ...)."""
    return [
        "keras",
        *(
            f"{space}.{name}" if space else name
            for space, names in SUPPORTED.items()
            for name in names
            if not name.startswith("__")
        ),
    ]


def not_tensorflow(name: str) -> UnsupportedKerasFeature:
    """The one-line error for a TensorFlow name that is not Keras."""
    return UnsupportedKerasFeature(
        f"{name} is TensorFlow, not Keras; cnnlab runs Keras programs "
        f"(supported tf names: {', '.join(supported_names())})"
    )


def namespace(name: str, members: dict[str, Any]) -> ModuleType:
    """A module holding ``members`` whose other attributes fail with :func:`not_tensorflow`."""
    module = ModuleType(name)
    module.__dict__.update(members)
    module.__path__ = []  # a package, so that `import tensorflow.keras` finds its parent

    def __getattr__(attribute: str) -> Any:
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(f"module {name!r} has no attribute {attribute!r}")
        raise not_tensorflow(f"{name.replace('tensorflow', 'tf', 1)}.{attribute}")

    module.__getattr__ = __getattr__  # type: ignore[method-assign]
    return module


def make_tensorflow(keras: ModuleType) -> ModuleType:
    """A fresh ``tensorflow`` stand-in whose ``keras`` is the given Keras module."""
    spaces = {
        space: namespace(f"tensorflow.{space}", names)
        for space, names in SUPPORTED.items()
        if space
    }
    return namespace("tensorflow", {**SUPPORTED[""], **spaces, "keras": keras})
