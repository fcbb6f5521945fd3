"""Dense, Flatten, Dropout and Activation (keras.layers core layers)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import activations, functional, initializers
from ..config import floatx
from .base import Layer, Shape, register


@register
class Dense(Layer):
    """y = activation(x @ kernel + bias); kernel (in, units), bias (units,) (keras.layers.Dense).

    As in Keras, an input of any rank is transformed along its last axis: (N, ..., in) ->
    (N, ..., units).
    """

    def __init__(
        self,
        units: int,
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(units, (int, np.integer)) or units <= 0:
            raise ValueError(f"{self.describe()}: units must be a positive int, received {units!r}")
        self.units, self.use_bias = int(units), bool(use_bias)
        self.activation = activations.get(activation)
        self.kernel_initializer, self.bias_initializer = kernel_initializer, bias_initializer
        initializers.get(kernel_initializer), initializers.get(bias_initializer)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        if len(input_shape) < 1:
            raise ValueError(
                f"{self.describe()}: expects an input with a feature axis, received "
                f"{tuple(input_shape)}"
            )
        return (*input_shape[:-1], self.units)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape)
        rng = rng or np.random.default_rng()
        self.params["kernel"] = initializers.get(self.kernel_initializer)(
            (input_shape[-1], self.units), rng, floatx()
        )
        if self.use_bias:
            self.params["bias"] = initializers.get(self.bias_initializer)(
                (self.units,), rng, floatx()
            )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, ..., in) -> z: (N, ..., units) -> a: (N, ..., units)
        self.x = x
        kernel = self.params["kernel"]  # z into the workspace: no fresh pages every batch
        shape, dtype = (*x.shape[:-1], kernel.shape[1]), np.result_type(x, kernel)
        z = self.workspace.empty("z", shape, dtype)
        np.matmul(x, kernel, out=z)
        if self.use_bias:
            z += self.params["bias"]
        self.a = self.activation.forward(z)
        return self.a

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        return self.backward_linear(self.activation.backward(dy, self.a))

    def backward_linear(self, dz: np.ndarray) -> np.ndarray | None:
        """dz: (N, ..., units), the gradient before the activation -> dx: (N, ..., in)."""
        x_rows, dz_rows = (
            self.x.reshape(-1, self.x.shape[-1]),
            dz.reshape(-1, dz.shape[-1]),
        )  # (M, in), (M, units)
        kernel = self.params["kernel"]  # its gradient into the workspace: no fresh pages
        dkernel = self.workspace.empty("dkernel", kernel.shape, np.result_type(x_rows, dz_rows))
        self.grads["kernel"] = np.matmul(x_rows.T, dz_rows, out=dkernel)  # (in, units)
        if self.use_bias:
            self.grads["bias"] = functional.column_sums(dz_rows)
        if not self.needs_input_grad:
            return None
        dx = self.workspace.empty("dx", self.x.shape, np.result_type(dz, kernel))
        return np.matmul(dz, kernel.T, out=dx)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "units": self.units,
            "activation": self.activation.name,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        }


@register
class Flatten(Layer):
    """(N, H, W, C) -> (N, H*W*C), in C order as Keras (keras.layers.Flatten)."""

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        return (math.prod(input_shape),)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(self.x_shape)


@register
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
            self.rng = np.random.default_rng(
                rng.integers(2**63)
            )  # the model's seed decides the masks

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, ...) -> (N, ...), mask: (N, ...) of 0 and 1 / (1 - rate)
        if not training or self.rate == 0:
            self.mask = None
            return x
        # (the mask and the output into the workspace: no fresh pages every batch)
        uniform = self.workspace.empty("uniform", x.shape, np.dtype(np.float32))
        keep = self.workspace.empty("keep", x.shape, np.dtype(bool))
        np.greater_equal(self.rng.random(out=uniform, dtype=np.float32), self.rate, out=keep)
        self.mask = self.workspace.empty("mask", x.shape, x.dtype)
        np.multiply(keep, x.dtype.type(1 / (1 - self.rate)), out=self.mask)
        return np.multiply(x, self.mask, out=self.workspace.empty("out", x.shape, x.dtype))

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy if self.mask is None else np.multiply(dy, self.mask, out=dy)  # dy is ours

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "rate": self.rate, "seed": self.seed}


@register
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

    def forward_linear(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x  # before the activation there is nothing: the input itself (not to be overwritten)

    def backward_linear(self, dz: np.ndarray) -> np.ndarray:
        return dz

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "activation": self.activation.name}
