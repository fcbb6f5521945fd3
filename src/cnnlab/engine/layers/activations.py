"""Softmax, ReLU and LeakyReLU (keras.layers activation layers)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np

from .. import activations
from .base import Layer, Shape, register


@register
class Softmax(Layer):
    """a = e^x / sum(e^x) along ``axis`` (an int or a tuple of ints; keras.layers.Softmax).

    Along the last axis it offers ``activation`` ("softmax") and ``backward_linear``, as the
    Activation layer does, so that a model can fuse it with a cross-entropy loss.
    """

    def __init__(self, axis: int | tuple[int, ...] | list[int] = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        axes = list(axis) if isinstance(axis, (tuple, list)) else [axis]
        if not axes or not all(isinstance(a, (int, np.integer)) for a in axes):
            raise ValueError(
                f"{self.describe()}: axis must be an int or a tuple of ints, received {axis!r}"
            )
        self.axis = [int(a) for a in axes] if isinstance(axis, (tuple, list)) else int(axis)
        self.activation = activations.get(None)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rank = len(input_shape) + 1
        axes = self.axis if isinstance(self.axis, list) else [self.axis]
        if not all(-rank < a < rank and a % rank for a in axes):
            raise ValueError(
                f"{self.describe()}: axis {self.axis} is out of bounds for an input of shape "
                f"(None, {', '.join(map(str, input_shape))}) (the batch axis 0 cannot be one)"
            )
        return tuple(input_shape)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape)
        rank = len(input_shape) + 1
        self.axes = tuple(
            sorted({a % rank for a in (self.axis if isinstance(self.axis, list) else [self.axis])})
        )
        if self.axes == (rank - 1,):
            self.activation = activations.get("softmax")

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, ...) -> a: same shape, each slice along the axes sums to 1
        z = x - x.max(axis=self.axes, keepdims=True)  # shifted for stability; softmax is unchanged
        np.exp(z, out=z)
        z /= z.sum(axis=self.axes, keepdims=True)
        self.a = z
        return z

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dx = a * (dy - sum(dy * a)) along the axes
        return self.a * (dy - (dy * self.a).sum(axis=self.axes, keepdims=True))

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        """dz, the gradient before the softmax (a fused loss gives it), is the input's gradient."""
        return dz

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "axis": self.axis}


def relu(
    x: np.ndarray, negative_slope: float, max_value: float | None, threshold: float
) -> np.ndarray:
    """Keras's relu: min(x, max_value) where x > threshold, else negative_slope *
    (x - threshold)."""
    above = x if max_value is None else np.minimum(x, max_value)
    return np.where(x > threshold, above, negative_slope * (x - threshold)).astype(
        x.dtype, copy=False
    )


def relu_slope(
    x: np.ndarray, negative_slope: float, max_value: float | None, threshold: float
) -> np.ndarray:
    """d relu / dx: 1 between threshold and max_value, 0 above max_value, negative_slope below
    threshold."""
    inside = x > threshold
    if max_value is not None:
        inside &= x < max_value
    slope = np.where(x > threshold, inside, negative_slope)
    return slope.astype(x.dtype, copy=False)


@register
class ReLU(Layer):
    """Rectified linear unit with Keras's options (keras.layers.ReLU):
    f(x) = min(x, max_value) for x > threshold, negative_slope * (x - threshold) otherwise."""

    def __init__(
        self,
        max_value: float | None = None,
        negative_slope: float = 0.0,
        threshold: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        for argument, value in (
            ("max_value", max_value),
            ("negative_slope", negative_slope),
            ("threshold", threshold),
        ):
            if (value is None and argument != "max_value") or (
                value is not None and not value >= 0
            ):
                raise ValueError(
                    f"{self.describe()}: {argument} cannot be None or negative, received {value!r}"
                )
        self.max_value = None if max_value is None else float(max_value)
        self.negative_slope, self.threshold = float(negative_slope), float(threshold)

    def options(self) -> tuple[float, float | None, float]:
        return self.negative_slope, self.max_value, self.threshold

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, ...) -> (N, ...)
        self.x = x
        if self.options() == (0.0, None, 0.0):
            return np.maximum(x, 0)
        return relu(x, *self.options())

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dx = dy * f'(x)
        if self.options() == (0.0, None, 0.0):
            return dy * (self.x > 0)
        return dy * relu_slope(self.x, *self.options())

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }


@register
class LeakyReLU(ReLU):
    """f(x) = x for x > 0, negative_slope * x otherwise (keras.layers.LeakyReLU; Keras 2 called
    negative_slope ``alpha``, still accepted with Keras's deprecation warning)."""

    def __init__(self, negative_slope: float = 0.3, **kwargs: Any) -> None:
        if "alpha" in kwargs:
            negative_slope = kwargs.pop("alpha")
            warnings.warn(
                "Argument `alpha` is deprecated. Use `negative_slope` instead.", stacklevel=2
            )
        super().__init__(None, negative_slope, 0.0, **kwargs)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "negative_slope": self.negative_slope}
