"""GlobalAveragePooling2D and GlobalMaxPooling2D (keras.layers global pooling layers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer, Shape, register


class GlobalPooling2D(Layer):
    """Shared arguments and shapes: (N, H, W, C) -> (N, C), or (N, 1, 1, C) with keepdims=True."""

    def __init__(self, keepdims: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.keepdims = bool(keepdims)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self.require_rank(input_shape, 3, "an image (height, width, channels)")
        return (1, 1, input_shape[2]) if self.keepdims else (input_shape[2],)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "keepdims": self.keepdims}


@register
class GlobalAveragePooling2D(GlobalPooling2D):
    """The mean of each channel over all pixels (keras.layers.GlobalAveragePooling2D)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, H, W, C) -> (N, C) or (N, 1, 1, C)
        self.x_shape = x.shape
        return x.mean(axis=(1, 2), keepdims=self.keepdims)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dy: (N, C) or (N, 1, 1, C) -> dx: (N, H, W, C), each pixel gets dy / (H * W)
        n, h, w, c = self.x_shape
        share = dy.reshape(n, 1, 1, c) / (h * w)
        return np.broadcast_to(share, self.x_shape).copy()


@register
class GlobalMaxPooling2D(GlobalPooling2D):
    """The largest value of each channel over all pixels (keras.layers.GlobalMaxPooling2D)."""

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, H, W, C) -> (N, C) or (N, 1, 1, C)
        self.x = x
        self.top = x.max(axis=(1, 2), keepdims=True)  # (N, 1, 1, C)
        return self.top.copy() if self.keepdims else self.top.reshape(len(x), -1).copy()

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dy: (N, C) or (N, 1, 1, C) -> dx: (N, H, W, C); a tie shares dy equally
        # (as TensorFlow and torch.amax)
        winners = self.x == self.top
        counts = winners.sum(axis=(1, 2), keepdims=True)
        return winners * (dy.reshape(self.top.shape) / counts)
