"""Rescaling (keras.layers.Rescaling; Keras files it under preprocessing layers)."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..errors import UnsupportedKerasFeature
from .base import Layer, register


@register
class Rescaling(Layer):
    """y = x * scale + offset, elementwise, any shape (keras.layers.Rescaling);
    ``Rescaling(1 / 255)``."""

    def __init__(self, scale: float, offset: float = 0.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        for argument, value in (("scale", scale), ("offset", offset)):
            if isinstance(value, (list, tuple, np.ndarray)):
                raise UnsupportedKerasFeature(
                    f"{self.describe()}: a per-channel {argument} (an array) is not "
                    "supported; cnnlab supports a scalar scale and offset"
                )
            if not isinstance(value, (int, float, np.integer, np.floating)) or isinstance(
                value, bool
            ):
                raise ValueError(
                    f"{self.describe()}: {argument} must be a number, received {value!r}"
                )
        self.scale, self.offset = float(scale), float(offset)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, ...) -> (N, ...)
        y = x * np.asarray(self.scale, dtype=x.dtype)
        y += np.asarray(self.offset, dtype=x.dtype)
        return y

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy * np.asarray(self.scale, dtype=dy.dtype)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "scale": self.scale, "offset": self.offset}
