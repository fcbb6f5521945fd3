"""MaxPooling2D and AveragePooling2D (keras.layers pooling layers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional
from .base import Layer, Shape, as_pair, check_padding, register


class Pooling2D(Layer):
    """Shared arguments and shape rules of MaxPooling2D and AveragePooling2D."""

    def __init__(
        self,
        pool_size: int | tuple[int, int] = (2, 2),
        strides: int | tuple[int, int] | None = None,
        padding: str = "valid",
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.pool_size = as_pair(pool_size, "pool_size", self.describe())
        self.strides = (
            self.pool_size if strides is None else as_pair(strides, "strides", self.describe())
        )
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
        return {
            "name": self.name,
            "pool_size": list(self.pool_size),
            "strides": list(self.strides),
            "padding": self.padding,
        }


@register
class MaxPooling2D(Pooling2D):
    """The largest value of each window (keras.layers.MaxPooling2D)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, H, W, C) -> out: (N, Ho, Wo, C). In training the windows are laid out tap by
        # tap, (kh*kw, N, Ho, Wo, C), and the tap of each window's first maximum is kept for
        # backward: first, (N, Ho, Wo, C).
        self.x = x
        if training:
            windows = functional.window_taps(
                x, self.pool_size, self.strides, self.padding, self.workspace
            )
            self.out, self.first = functional.first_maximum_of_taps(windows, self.workspace)
        else:
            self.first = None
            self.out = functional.max_pool_forward(
                x, self.pool_size, self.strides, self.padding, self.workspace
            )
        return self.out

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dy: (N, Ho, Wo, C) -> dx: (N, H, W, C), routed to each window's first maximum
        if self.first is None:  # after an inference forward (an input gradient): find them now
            windows = functional.window_taps(
                self.x, self.pool_size, self.strides, self.padding, self.workspace
            )
            _, self.first = functional.first_maximum_of_taps(windows)  # self.out stays as it is
        return functional.max_pool_backward(
            dy,
            self.first,
            self.x.shape,
            self.pool_size,
            self.strides,
            self.padding,
            self.workspace,
        )


@register
class AveragePooling2D(Pooling2D):
    """The mean of each window (keras.layers.AveragePooling2D)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, H, W, C) -> (N, Ho, Wo, C)
        self.x_shape = x.shape
        return functional.avg_pool_forward(x, self.pool_size, self.strides, self.padding)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dy: (N, Ho, Wo, C) -> dx: (N, H, W, C), shared equally over each window
        return functional.avg_pool_backward(
            dy, self.x_shape, self.pool_size, self.strides, self.padding
        )
