"""Conv2D (keras.layers.Conv2D)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import activations, functional, initializers
from ..config import floatx
from .base import Layer, Shape, as_pair, check_padding, register


@register
class Conv2D(Layer):
    """2-D convolution over NHWC images; kernel (kh, kw, C_in, filters) (keras.layers.Conv2D)."""

    def __init__(
        self,
        filters: int,
        kernel_size: int | tuple[int, int],
        strides: int | tuple[int, int] = (1, 1),
        padding: str = "valid",
        activation: str | None = None,
        use_bias: bool = True,
        kernel_initializer: str = "glorot_uniform",
        bias_initializer: str = "zeros",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        if not isinstance(filters, (int, np.integer)) or filters <= 0:
            raise ValueError(
                f"{self.describe()}: filters must be a positive int, received {filters!r}"
            )
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
                f"{tuple(input_shape)} with padding='{self.padding}'. Use padding='same' or a "
                "smaller kernel."
            )
        return (ho, wo, self.filters)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape)
        rng = rng or np.random.default_rng()
        shape = (*self.kernel_size, input_shape[2], self.filters)
        self.params["kernel"] = initializers.get(self.kernel_initializer)(shape, rng, floatx())
        if self.use_bias:
            self.params["bias"] = initializers.get(self.bias_initializer)(
                (self.filters,), rng, floatx()
            )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, H, W, C_in) -> cols: (N*Ho*Wo, kh*kw*C_in) -> a: (N, Ho, Wo, filters)
        self.a = self.activation.forward(self.forward_linear(x, training))
        return self.a

    def forward_linear(
        self, x: np.ndarray, training: bool = False, pool: tuple[int, int] = (1, 1)
    ) -> np.ndarray:
        """x -> z, the output before the activation (backward_linear takes its gradient). With a
        pool (ph, pw): the pixels a tiling pool reads, window tap by window tap, (ph*pw*N,
        Ho // ph, Wo // pw, filters) (fused.ConvNormThenPool)."""
        self.x_shape, self.pooled = x.shape, pool
        z, self.cols = functional.conv2d_forward(
            x,
            self.params["kernel"],
            self.params.get("bias"),
            self.strides,
            self.padding,
            self.workspace,
            pool,
        )
        return z

    def forward_max_pooled(
        self, x: np.ndarray, pool: tuple[int, int], find_first: bool = True
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """x -> (the maximum of z over each window of a tiling (ph, pw) pool: (N, Ho, Wo,
        filters); the tap of each window's first maximum, or None without find_first)
        (functional.conv2d_max_pool, fused.ConvThenPool). backward_linear then takes dz window
        tap by window tap: (ph*pw*N, Ho, Wo, filters)."""
        self.x_shape, self.pooled = x.shape, pool
        out, first, self.cols = functional.conv2d_max_pool(
            x,
            self.params["kernel"],
            self.params.get("bias"),
            self.strides,
            self.padding,
            pool,
            self.workspace,
            find_first,
        )
        return out, first

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        return self.backward_linear(self.activation.backward(dy, self.a))

    def backward_linear(self, dz: np.ndarray) -> np.ndarray | None:
        """dz: (N, Ho, Wo, filters), laid out as the last forward's z (forward_linear's, or
        forward_max_pooled's window taps) -> dx: (N, H, W, C_in); fills grads kernel and bias."""
        dx, dkernel, dbias = functional.conv2d_backward(
            dz,
            self.cols,
            self.params["kernel"],
            self.x_shape,
            self.strides,
            self.padding,
            self.needs_input_grad,
            self.workspace,
            has_bias=self.use_bias,
            pool=self.pooled,
        )
        self.grads["kernel"] = dkernel
        if self.use_bias:
            self.grads["bias"] = dbias
        return dx

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "filters": self.filters,
            "kernel_size": list(self.kernel_size),
            "strides": list(self.strides),
            "padding": self.padding,
            "activation": self.activation.name,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer,
            "bias_initializer": self.bias_initializer,
        }
