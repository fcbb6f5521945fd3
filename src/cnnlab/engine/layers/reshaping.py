"""ZeroPadding2D and Reshape (keras.layers reshaping layers)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import functional
from .base import Layer, Shape, register

Pads = tuple[tuple[int, int], tuple[int, int]]


def is_count(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and value >= 0


def padding_pairs(padding: Any, layer: str) -> Pads:
    """Keras's three forms: 1 -> ((1, 1), (1, 1)); (h, w) -> ((h, h), (w, w)); ((t, b), (l, r)) as
    given."""
    if is_count(padding):
        return ((int(padding),) * 2, (int(padding),) * 2)
    if isinstance(padding, (tuple, list)) and len(padding) == 2:
        pairs = [
            (entry, entry)
            if is_count(entry)
            else tuple(entry)
            if isinstance(entry, (tuple, list))
            else ()
            for entry in padding
        ]
        if all(len(pair) == 2 and all(is_count(v) for v in pair) for pair in pairs):
            return tuple((int(a), int(b)) for a, b in pairs)  # type: ignore[return-value]
    raise ValueError(
        f"{layer}: padding must be an int, a pair (height, width) or a pair of pairs "
        f"((top, bottom), (left, right)) of non-negative ints, received {padding!r}"
    )


@register
class ZeroPadding2D(Layer):
    """Zeros around each image: (N, H, W, C) -> (N, top + H + bottom, left + W + right, C)
    (keras.layers.ZeroPadding2D)."""

    def __init__(self, padding: Any = (1, 1), **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.padding = padding_pairs(padding, self.describe())

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        self.require_rank(input_shape, 3, "an image (height, width, channels)")
        (top, bottom), (left, right) = self.padding
        return (input_shape[0] + top + bottom, input_shape[1] + left + right, input_shape[2])

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, H, W, C) -> (N, H + top + bottom, W + left + right, C)
        return functional.pad(x, self.padding)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        # dy: padded (N, Hp, Wp, C) -> dx: (N, H, W, C), the border's gradient dropped
        return functional.crop(dy, self.padding)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "padding": [list(pair) for pair in self.padding]}


@register
class Reshape(Layer):
    """(N, *input_shape) -> (N, *target_shape), in C order; one entry may be -1
    (keras.layers.Reshape)."""

    def __init__(self, target_shape: tuple[int, ...] | list[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        target = tuple(target_shape) if isinstance(target_shape, (tuple, list)) else ()
        if (
            not target
            or not all(isinstance(d, (int, np.integer)) and (d > 0 or d == -1) for d in target)
            or target.count(-1) > 1
        ):
            raise ValueError(
                f"{self.describe()}: target_shape must be a tuple of positive ints with at most "
                "one -1, "
                f"received {target_shape!r}"
            )
        self.target_shape = tuple(int(d) for d in target)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        size, known = math.prod(input_shape), math.prod(d for d in self.target_shape if d != -1)
        shape = tuple(size // known if d == -1 else d for d in self.target_shape)
        if size % known or math.prod(shape) != size:
            raise ValueError(
                f"{self.describe()}: cannot reshape an input of shape {tuple(input_shape)} "
                f"({size} values) to target_shape {self.target_shape}"
            )
        return shape

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, *input_shape) -> (N, *output_shape)
        return x.reshape(len(x), *self.output_shape)

    def backward(self, dy: np.ndarray) -> np.ndarray:
        return dy.reshape(len(dy), *self.input_shape)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "target_shape": list(self.target_shape)}
