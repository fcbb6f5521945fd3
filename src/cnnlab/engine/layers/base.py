"""The layer lifecycle and the layer registry (the one list of layers).

The lifecycle follows Keras: ``__init__`` checks the arguments, ``build(input_shape)``
creates the weights and checks that the layer fits its input, ``forward(x, training)``
computes the output and keeps what backward needs, ``backward(dy)`` stores the weight
gradients in ``grads`` and returns the gradient of the input. Shapes exclude the batch
axis in ``build`` and include it (N, ...) in ``forward``/``backward``.

Each layer keeps ``params`` (trainable) and ``grads`` as dicts with the same keys (Keras
names: ``kernel``, ``bias``), and ``state`` for non-trainable weights that training updates
without gradients (BatchNormalization's ``moving_mean``, ``moving_variance``).

Ownership, the one rule (tests/test_model.py checks it for every registered layer):
- ``forward(x)`` never writes into ``x``;
- ``forward`` and ``backward`` may return views into the layer's scratch memory
  (``workspace``), valid until this layer's next ``forward``/``backward``: a caller that keeps
  one longer copies it (``Model.predict`` and ``feature_maps`` do). The same holds for the
  arrays ``backward`` puts in ``grads``: valid until the next ``backward``;
- ``backward(dy)`` owns ``dy``: it may overwrite it (a ReLU applies its mask in place), so a
  caller that needs ``dy`` afterwards passes a copy. Each gradient array goes to one layer
  (the functional graph sums a fork's gradients into a new array; Add hands out copies).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

import numpy as np

from .. import functional
from ..config import floatx
from ..errors import UnsupportedKerasFeature

Shape = tuple[int, ...]

_name_counts: Counter[str] = Counter()


def unique_name(prefix: str) -> str:
    """Keras-style automatic names: conv2d, conv2d_1, conv2d_2, ..."""
    count = _name_counts[prefix]
    _name_counts[prefix] += 1
    return prefix if count == 0 else f"{prefix}_{count}"


def clear_session() -> None:
    """Restart the automatic layer names (Keras: keras.backend.clear_session)."""
    _name_counts.clear()


def snake_case(class_name: str) -> str:
    """Keras's naming rule: Conv2D -> conv2d, MaxPooling2D -> max_pooling2d, ReLU -> re_lu."""
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", class_name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def as_pair(value: int | tuple[int, int] | list[int], argument: str, layer: str) -> tuple[int, int]:
    """An int or a pair of positive ints, as Keras accepts for kernel_size, strides, pool_size."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
        raise ValueError(
            f"{layer}: {argument} must be a positive int or a pair of them, received {value!r}"
        )
    return (int(pair[0]), int(pair[1]))


def check_padding(padding: str, layer: str) -> str:
    """ "valid" or "same", case-insensitive."""
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"{layer}: padding must be 'valid' or 'same', received {padding!r}")
    return padding.lower()


# Keras arguments that cnnlab accepts only at their default value (refused otherwise, with
# the name of the argument): a program that spells out a default still runs.
KERAS_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "data_format": (None, "channels_last"),
    "dilation_rate": (1, (1, 1), [1, 1]),
    "groups": (1,),
    "kernel_regularizer": (None,),
    "bias_regularizer": (None,),
    "activity_regularizer": (None,),
    "kernel_constraint": (None,),
    "bias_constraint": (None,),
    "beta_regularizer": (None,),
    "gamma_regularizer": (None,),
    "beta_constraint": (None,),
    "gamma_constraint": (None,),
    "noise_shape": (None,),
    "lora_rank": (None,),
    "autocast": (True,),
    "synchronized": (False,),
    "renorm": (False,),
    "fused": (None, True, False),
    "batch_size": (None,),
    "sparse": (None, False),
    "ragged": (None, False),
}


def check_keras_defaults(class_name: str, kwargs: dict[str, Any]) -> None:
    """Refuse, naming it, any argument cnnlab does not implement (unless at Keras's default)."""
    for key, value in kwargs.items():
        if key not in KERAS_DEFAULTS:
            raise UnsupportedKerasFeature(
                f"{class_name}: argument {key!r} is not supported by cnnlab"
            )
        if not any(value == default for default in KERAS_DEFAULTS[key]):
            if key == "data_format" and value == "channels_first":
                raise UnsupportedKerasFeature(
                    f"{class_name}: data_format='channels_first' is not supported; cnnlab "
                    "computes channels_last "
                    "(N, H, W, C): move the channel axis with np.moveaxis(x, 1, -1)"
                )
            raise UnsupportedKerasFeature(
                f"{class_name}: {key}={value!r} is not supported by cnnlab (only the default, "
                f"{KERAS_DEFAULTS[key][0]!r})"
            )


def check_layer_name(class_name: str, name: Any) -> str:
    """A layer name becomes part of the paths inside saved files and of one-line messages: at most
    255 printable characters (no NUL, no newline), no '/' or '\\' (Keras refuses '/' too)."""
    if (
        not isinstance(name, str)
        or len(name) > 255
        or not name.isprintable()
        or any(c in name for c in "/\\")
    ):
        raise ValueError(
            f"{class_name}: layer name {name!r:.80} is not allowed; a name is a string of at most "
            "255 "
            "printable characters without '/' or '\\' (it becomes a path inside saved files)"
        )
    return name


LAYER_CLASSES: dict[str, type[Layer]] = {}


MODEL_CLASSES: dict[
    str, type[Layer]
] = {}  # Sequential, Functional: models that configs nest like layers


def register(cls: type[Layer]) -> type[Layer]:
    """Add a layer class to the registry under its class name (the name configs use)."""
    LAYER_CLASSES[cls.__name__] = cls
    return cls


def register_model(cls: type[Layer]) -> type[Layer]:
    """Let configs hold a model of this class where a layer may stand (a nested model)."""
    MODEL_CLASSES[cls.__name__] = cls
    return cls


class Layer:
    """Base class of all layers. Subclasses override the methods below."""

    multi_input = False  # True for layers that take a list of tensors (Add, Concatenate)

    def __init__(
        self,
        name: str | None = None,
        input_shape: Shape | None = None,
        trainable: bool = True,
        dtype: Any = None,
        input_dim: int | None = None,
        **kwargs: Any,
    ) -> None:
        check_keras_defaults(type(self).__name__, kwargs)
        if dtype not in (None, "float32", "float64") and getattr(dtype, "name", None) != "float32":
            raise UnsupportedKerasFeature(
                f"{type(self).__name__}: dtype={dtype!r} is not supported; cnnlab computes in "
                "float32 (or float64)"
            )
        self.name = (
            check_layer_name(type(self).__name__, name)
            if name
            else unique_name(snake_case(type(self).__name__))
        )
        self.params: dict[str, np.ndarray] = {}  # trainable weights, updated by the optimizer
        self.grads: dict[str, np.ndarray] = {}  # d(loss)/d(param), same keys as params
        self.state: dict[str, np.ndarray] = {}  # non-trainable weights (moving statistics)
        self.trainable = bool(trainable)
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.built = False
        self.needs_input_grad = True
        self.workspace = functional.Workspace()  # scratch arrays reused from batch to batch
        if input_dim is not None:  # Keras 2's Dense(units, input_dim=784)
            input_shape = (input_dim,)
        self.declared_input_shape = None if input_shape is None else tuple(input_shape)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} '{self.name}'>"

    def describe(self) -> str:
        """How errors name this layer: Conv2D 'conv2d_1'."""
        return f"{type(self).__name__} '{self.name}'"

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        """Check the input shape, create the weights, record the output shape."""
        self.input_shape = tuple(input_shape)
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return input_shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        raise NotImplementedError

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        raise NotImplementedError

    def __call__(self, inputs: Any, training: bool = False) -> Any:
        """On a symbolic tensor (from ``Input``): a node of a functional model. On arrays: the
        output computed now, as Keras's eager call (an array that also answers ``.numpy()``)."""
        from ..graph import call_layer  # the functional API builds on layers, not the reverse

        return call_layer(self, inputs, training)

    def weights_dict(self) -> dict[str, np.ndarray]:
        """Every weight under its Keras name, in Keras's order: trainable, then non-trainable."""
        return {**self.params, **self.state}

    def get_weights(self) -> list[np.ndarray]:
        """Copies of this layer's weights in Keras's order (keras.layers.Layer.get_weights):
        ``kernel, bias = model.layers[0].get_weights()``."""
        return [value.copy() for value in self.weights_dict().values()]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        """Load arrays in get_weights() order; shapes must match."""
        targets = self.weights_dict()
        if len(weights) != len(targets):
            raise ValueError(
                f"{self.describe()}: expected {len(targets)} weight arrays, received {len(weights)}"
            )
        for (key, target), value in zip(targets.items(), weights):
            value = np.asarray(value)
            if value.shape != target.shape:
                raise ValueError(
                    f"{self.describe()}: weight {key!r} has shape {target.shape}, received "
                    f"{value.shape}"
                )
            target[...] = value

    def count_params(self) -> int:
        """All weights, trainable or not, as Keras's summary counts them."""
        return int(sum(p.size for p in self.weights_dict().values()))

    def count_trainable_params(self) -> int:
        return int(sum(p.size for p in self.params.values())) if self.trainable else 0

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    def require_rank(self, input_shape: Shape, rank: int, what: str) -> None:
        if len(input_shape) != rank:
            raise ValueError(
                f"{self.describe()}: expected {what} input of rank {rank} (without the batch "
                "axis), "
                f"received shape {tuple(input_shape)}"
            )


@register
class InputLayer(Layer):
    """The model's input, as made by ``Input(shape=...)``; it computes nothing."""

    def __init__(
        self,
        shape: Shape | None = None,
        batch_shape: Shape | None = None,
        name: str | None = None,
        dtype: str | None = None,
    ) -> None:
        super().__init__(name=name or unique_name("input_layer"))
        if shape is None and batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        if shape is None or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
            raise ValueError(f"Input: shape must be a tuple of positive ints, received {shape!r}")
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype or floatx()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "batch_shape": [None, *self.shape], "dtype": self.dtype}


def Input(shape: Shape | None = None, **kwargs: Any) -> Any:
    """The input of a model, without the batch axis: ``Input(shape=(28, 28, 1))`` (keras.Input).

    A symbolic tensor: the first element of a Sequential, or the start of a functional model."""
    from ..graph import Input as symbolic_input  # the functional API builds on layers

    return symbolic_input(shape, **kwargs)


def deserialize(spec: dict[str, Any]) -> Layer:
    """A layer from ``{"class_name": ..., "config": {...}}``, as ``get_config`` writes it."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(
            f"a layer must be {{'class_name': ..., 'config': {{...}}}}, received {spec!r}"
        )
    name = spec["class_name"]
    classes = {**LAYER_CLASSES, **MODEL_CLASSES}
    if name not in classes:
        raise ValueError(f"unknown layer class {name!r}; known: {', '.join(sorted(classes))}")
    config = dict(spec.get("config", {}))
    if name == "InputLayer":
        return InputLayer(
            shape=config.get("shape"),
            batch_shape=config.get("batch_shape"),
            name=config.get("name"),
            dtype=config.get("dtype"),
        )
    try:
        return classes[name].from_config(config)
    except TypeError as err:
        raise ValueError(f"layer {name} {config.get('name', '')!r}: {err}") from None
