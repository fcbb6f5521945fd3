"""Layers with hand-written forward and backward passes (Keras 3 names and arguments).

The lifecycle follows Keras: ``__init__`` checks the arguments, ``build(input_shape)``
creates the weights and checks that the layer fits its input, ``forward(x, training)``
computes the output and keeps what backward needs, ``backward(dy)`` stores the weight
gradients in ``grads`` and returns the gradient of the input. Shapes exclude the batch
axis in ``build`` and include it (N, ...) in ``forward``/``backward``.

Each layer keeps ``params`` and ``grads`` as dicts with the same keys (Keras names:
``kernel``, ``bias``).
"""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any

import numpy as np

from . import activations, functional, initializers
from .config import floatx

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
    """Conv2D -> conv2d, MaxPooling2D -> max_pooling2d (Keras's naming rule)."""
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z][a-z])", "_", class_name).lower()


def as_pair(value: int | tuple[int, int] | list[int], argument: str, layer: str) -> tuple[int, int]:
    """An int or a pair of positive ints, as Keras accepts for kernel_size, strides, pool_size."""
    pair = (value, value) if isinstance(value, (int, np.integer)) else tuple(value)
    if len(pair) != 2 or not all(isinstance(v, (int, np.integer)) and v > 0 for v in pair):
        raise ValueError(f"{layer}: {argument} must be a positive int or a pair of them, received {value!r}")
    return (int(pair[0]), int(pair[1]))


def check_padding(padding: str, layer: str) -> str:
    """"valid" or "same", case-insensitive."""
    if not isinstance(padding, str) or padding.lower() not in ("valid", "same"):
        raise ValueError(f"{layer}: padding must be 'valid' or 'same', received {padding!r}")
    return padding.lower()


class Layer:
    """Base class of all layers. Subclasses override the methods below."""

    def __init__(self, name: str | None = None, input_shape: Shape | None = None, **kwargs: Any) -> None:
        if kwargs:
            raise TypeError(f"{type(self).__name__}: unexpected arguments {sorted(kwargs)}")
        self.name = name or unique_name(snake_case(type(self).__name__))
        self.params: dict[str, np.ndarray] = {}
        self.grads: dict[str, np.ndarray] = {}
        self.input_shape: Shape | None = None
        self.output_shape: Shape | None = None
        self.built = False
        self.needs_input_grad = True
        self.workspace = functional.Workspace()  # scratch arrays reused from batch to batch
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

    def count_params(self) -> int:
        return int(sum(p.size for p in self.params.values()))

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> Layer:
        return cls(**config)

    def require_rank(self, input_shape: Shape, rank: int, what: str) -> None:
        if len(input_shape) != rank:
            raise ValueError(
                f"{self.describe()}: expected {what} input of rank {rank} (without the batch axis), "
                f"received shape {tuple(input_shape)}"
            )


class InputLayer(Layer):
    """The model's input, as made by ``Input(shape=...)``; it computes nothing."""

    def __init__(self, shape: Shape | None = None, batch_shape: Shape | None = None, name: str | None = None, dtype: str | None = None) -> None:
        super().__init__(name=name or unique_name("input_layer"))
        if shape is None and batch_shape is not None:
            shape = tuple(batch_shape)[1:]
        if shape is None or not all(isinstance(d, (int, np.integer)) and d > 0 for d in shape):
            raise ValueError(f"Input: shape must be a tuple of positive ints, received {shape!r}")
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype or floatx()

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "batch_shape": [None, *self.shape], "dtype": self.dtype}


def Input(shape: Shape, name: str | None = None, dtype: str | None = None) -> InputLayer:
    """The input of a model, without the batch axis: ``Input(shape=(28, 28, 1))`` (keras.Input)."""
    return InputLayer(shape=shape, name=name, dtype=dtype)


class Dense(Layer):
    """y = activation(x @ kernel + bias); kernel (in, units), bias (units,) (keras.layers.Dense)."""

    def __init__(self, units: int, activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{self.describe()}: units must be a positive int, received {units!r}")
        self.units, self.use_bias = int(units), bool(use_bias)
        self.activation = activations.get(activation)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        initializers.get(kernel_initializer), initializers.get(bias_initializer)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) != 1:
            raise ValueError(
                f"{self.describe()}: expects a flat input (features,), received {tuple(input_shape)}. "
                "Add a Flatten layer before it."
            )
        return (self.units,)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape)
        rng = rng or np.random.default_rng()
        self.params["kernel"] = initializers.get(self.kernel_initializer)((input_shape[0], self.units), rng, floatx())
        if self.use_bias:
            self.params["bias"] = initializers.get(self.bias_initializer)((self.units,), rng, floatx())

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, in) -> z: (N, units) -> a: (N, units)
        self.x = x
        z = x @ self.params["kernel"]
        if self.use_bias:
            z += self.params["bias"]
        self.a = self.activation.forward(z)
        return self.a

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        return self.backward_linear(self.activation.backward(dy, self.a))

    def backward_linear(self, dz: np.ndarray) -> np.ndarray | None:
        """dz: (N, units), the gradient before the activation -> dx: (N, in)."""
        self.grads["kernel"] = self.x.T @ dz  # (in, units)
        if self.use_bias:
            self.grads["bias"] = functional.column_sums(dz)
        return dz @ self.params["kernel"].T if self.needs_input_grad else None

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "units": self.units, "activation": self.activation.name,
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}


class Conv2D(Layer):
    """2-D convolution over NHWC images; kernel (kh, kw, C_in, filters) (keras.layers.Conv2D)."""

    def __init__(self, filters: int, kernel_size: int | tuple[int, int], strides: int | tuple[int, int] = (1, 1),
                 padding: str = "valid", activation: str | None = None, use_bias: bool = True,
                 kernel_initializer: str = "glorot_uniform", bias_initializer: str = "zeros", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(f"{self.describe()}: filters must be a positive int, received {filters!r}")
        self.filters, self.use_bias = int(filters), bool(use_bias)
        self.kernel_size = as_pair(kernel_size, "kernel_size", self.describe())
        self.strides = as_pair(strides, "strides", self.describe())
        self.padding = check_padding(padding, self.describe())
        self.activation = activations.get(activation)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        initializers.get(kernel_initializer), initializers.get(bias_initializer)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self.require_rank(input_shape, 3, "an image (height, width, channels)")
        ho, wo = functional.output_hw(input_shape[:2], self.kernel_size, self.strides, self.padding)
        if ho <= 0 or wo <= 0:
            raise ValueError(
                f"{self.describe()}: kernel_size {self.kernel_size} is larger than its input "
                f"{tuple(input_shape)} with padding='{self.padding}'. Use padding='same' or a smaller kernel."
            )
        return (ho, wo, self.filters)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape)
        rng = rng or np.random.default_rng()
        shape = (*self.kernel_size, input_shape[2], self.filters)
        self.params["kernel"] = initializers.get(self.kernel_initializer)(shape, rng, floatx())
        if self.use_bias:
            self.params["bias"] = initializers.get(self.bias_initializer)((self.filters,), rng, floatx())

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, H, W, C_in) -> cols: (N*Ho*Wo, kh*kw*C_in) -> a: (N, Ho, Wo, filters)
        self.x_shape = x.shape
        z, self.cols = functional.conv2d_forward(x, self.params["kernel"], self.params.get("bias"), self.strides, self.padding,
                                                 self.workspace)
        self.a = self.activation.forward(z)
        return self.a

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        return self.backward_linear(self.activation.backward(dy, self.a))

    def backward_linear(self, dz: np.ndarray) -> np.ndarray | None:
        """dz: (N, Ho, Wo, filters) -> dx: (N, H, W, C_in); fills grads kernel and bias."""
        dx, dkernel, dbias = functional.conv2d_backward(
            dz, self.cols, self.params["kernel"], self.x_shape, self.strides, self.padding, self.needs_input_grad, self.workspace)
        self.grads["kernel"] = dkernel
        if self.use_bias:
            self.grads["bias"] = dbias
        return dx

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "filters": self.filters, "kernel_size": list(self.kernel_size),
                "strides": list(self.strides), "padding": self.padding, "activation": self.activation.name,
                "use_bias": self.use_bias, "kernel_initializer": self.kernel_initializer,
                "bias_initializer": self.bias_initializer}


class Pooling2D(Layer):
    """Shared arguments and shape rules of MaxPooling2D and AveragePooling2D."""

    def __init__(self, pool_size: int | tuple[int, int] = (2, 2), strides: int | tuple[int, int] | None = None,
                 padding: str = "valid", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.pool_size = as_pair(pool_size, "pool_size", self.describe())
        self.strides = self.pool_size if strides is None else as_pair(strides, "strides", self.describe())
        self.padding = check_padding(padding, self.describe())

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self.require_rank(input_shape, 3, "an image (height, width, channels)")
        ho, wo = functional.output_hw(input_shape[:2], self.pool_size, self.strides, self.padding)
        if ho <= 0 or wo <= 0:
            raise ValueError(
                f"{self.describe()}: pool_size {self.pool_size} is larger than its input "
                f"{tuple(input_shape)} with padding='{self.padding}', which leaves zero pixels. "
                "Use padding='same' or a smaller pool."
            )
        return (ho, wo, input_shape[2])

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "pool_size": list(self.pool_size), "strides": list(self.strides), "padding": self.padding}


class MaxPooling2D(Pooling2D):
    """The largest value of each window (keras.layers.MaxPooling2D)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, H, W, C) -> out: (N, Ho, Wo, C). In training the windows are laid out tap by
        # tap, (kh*kw, N, Ho, Wo, C), and kept: backward finds each window's maximum in them.
        self.x = x
        if training:
            self.windows = functional.window_taps(x, self.pool_size, self.strides, self.padding, self.workspace)
            self.out = self.windows.max(axis=0)
        else:
            self.windows = None
            self.out = functional.max_pool_forward(x, self.pool_size, self.strides, self.padding)
        return self.out

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dy: (N, Ho, Wo, C) -> dx: (N, H, W, C), routed to each window's maximum
        windows = self.windows
        if windows is None:  # after an inference forward (an input gradient): lay them out now
            windows = functional.window_taps(self.x, self.pool_size, self.strides, self.padding, self.workspace)
        return functional.max_pool_backward(dy, windows, self.out, self.x.shape, self.pool_size, self.strides, self.padding,
                                            self.workspace)


class AveragePooling2D(Pooling2D):
    """The mean of each window (keras.layers.AveragePooling2D)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, H, W, C) -> (N, Ho, Wo, C)
        self.x_shape = x.shape
        return functional.avg_pool_forward(x, self.pool_size, self.strides, self.padding)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dy: (N, Ho, Wo, C) -> dx: (N, H, W, C), shared equally over each window
        return functional.avg_pool_backward(dy, self.x_shape, self.pool_size, self.strides, self.padding)


class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), in C order as Keras (keras.layers.Flatten)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self.x_shape)


class Dropout(Layer):
    """Inverted dropout: in training, zero each value with probability rate and scale the
    rest by 1 / (1 - rate); at inference, the identity (keras.layers.Dropout)."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(rate, (int, float)) or not 0 <= rate < 1:
            raise ValueError(f"{self.describe()}: rate must be in [0, 1), received {rate!r}")
        self.rate, self.seed = float(rate), seed
        self.rng = np.random.default_rng(seed)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape)
        if self.seed is None and rng is not None:
            self.rng = np.random.default_rng(rng.integers(2**63))  # the model's seed decides the masks

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, ...) -> (N, ...), mask: (N, ...) of 0 and 1 / (1 - rate)
        if not training or self.rate == 0:
            self.mask = None
            return x
        keep = self.rng.random(x.shape, dtype=np.float32) >= self.rate
        self.mask = keep.astype(x.dtype) * (1 / (1 - self.rate))
        return x * self.mask

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self.mask is None else dy * self.mask

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "rate": self.rate, "seed": self.seed}


class Activation(Layer):
    """An activation on its own (keras.layers.Activation)."""

    def __init__(self, activation: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.activation = activations.get(activation)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.a = self.activation.forward(x.copy())
        return self.a

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return self.activation.backward(dy, self.a)

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        return dz

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "activation": self.activation.name}


LAYER_CLASSES: dict[str, type[Layer]] = {
    cls.__name__: cls
    for cls in (InputLayer, Dense, Conv2D, MaxPooling2D, AveragePooling2D, Flatten, Dropout, Activation)
}


def deserialize(spec: dict[str, Any]) -> Layer:
    """A layer from ``{"class_name": ..., "config": {...}}``, as ``get_config`` writes it."""
    if not isinstance(spec, dict) or "class_name" not in spec:
        raise ValueError(f"a layer must be {{'class_name': ..., 'config': {{...}}}}, received {spec!r}")
    name = spec["class_name"]
    if name not in LAYER_CLASSES:
        raise ValueError(f"unknown layer class {name!r}; known: {', '.join(sorted(LAYER_CLASSES))}")
    config = dict(spec.get("config", {}))
    if name == "InputLayer":
        return InputLayer(shape=config.get("shape"), batch_shape=config.get("batch_shape"), name=config.get("name"), dtype=config.get("dtype"))
    try:
        return LAYER_CLASSES[name].from_config(config)
    except TypeError as err:
        raise ValueError(f"layer {name} {config.get('name', '')!r}: {err}") from None
