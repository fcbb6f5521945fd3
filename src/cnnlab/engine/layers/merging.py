"""Layers that merge several tensors: Add and Concatenate (keras.layers merging layers).

They take a list of inputs (``multi_input``): ``forward(xs)`` and ``backward(dy) -> [dx, ...]``.
Each returned gradient is an array of its own, so the layers that receive them may
overwrite them (the engine's gradient-ownership rule, see base.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import Layer, Shape, register


class Merge(Layer):
    """Shared checks: a list of at least two inputs."""

    multi_input = True

    def check_inputs(self, input_shapes: list[Shape]) -> list[Shape]:
        if not isinstance(input_shapes, (list, tuple)) or len(input_shapes) < 2:
            raise ValueError(
                f"{self.describe()}: expects a list of at least 2 inputs, received {input_shapes!r}"
            )
        return [tuple(shape) for shape in input_shapes]

    def build(self, input_shape: list[Shape], rng: np.random.Generator | None = None) -> None:
        self.input_shape = [tuple(shape) for shape in input_shape]
        self.output_shape = self.compute_output_shape(self.input_shape)
        self.built = True


@register
class Add(Merge):
    """y = x_1 + x_2 + ... (same shapes); dx_i = dy for every input (keras.layers.Add)."""

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        shapes = self.check_inputs(input_shape)
        if any(shape != shapes[0] for shape in shapes):
            raise ValueError(
                f"{self.describe()}: inputs must have the same shape, received {shapes}"
            )
        return shapes[0]

    def forward(self, xs: list[np.ndarray], training: bool = False) -> np.ndarray:
        # xs: k arrays (N, ...) -> (N, ...)
        out = xs[0] + xs[1]
        for x in xs[2:]:
            out += x
        return out

    def backward(self, dy: np.ndarray) -> list[np.ndarray]:
        # dy: (N, ...) -> k arrays (N, ...), each its own copy
        return [dy] + [dy.copy() for _ in self.input_shape[1:]]


@register
class Concatenate(Merge):
    """y = the inputs joined along ``axis`` (default the last, the channels); dx_i is dy's
    slice that came from x_i (keras.layers.Concatenate)."""

    def __init__(self, axis: int = -1, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if not isinstance(axis, (int, np.integer)) or axis == 0:
            raise ValueError(f"{self.describe()}: axis must be a non-batch axis, received {axis!r}")
        self.axis = int(axis)

    def compute_output_shape(self, input_shape: list[Shape]) -> Shape:
        shapes = self.check_inputs(input_shape)
        rank = len(shapes[0])
        axis = self.axis - 1 if self.axis > 0 else rank + self.axis  # without the batch axis
        if not 0 <= axis < rank or any(
            len(s) != rank or s[:axis] + s[axis + 1 :] != shapes[0][:axis] + shapes[0][axis + 1 :]
            for s in shapes
        ):
            raise ValueError(
                f"{self.describe()}: inputs must match on every axis but axis={self.axis}, "
                f"received {shapes}"
            )
        return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1 :])

    def forward(self, xs: list[np.ndarray], training: bool = False) -> np.ndarray:
        # xs: k arrays (N, ..., C_i, ...) -> (N, ..., sum C_i, ...)
        return np.concatenate(xs, axis=self.axis)

    def backward(self, dy: np.ndarray) -> list[np.ndarray]:
        # dy: (N, ..., sum C_i, ...) -> k arrays (N, ..., C_i, ...)
        sizes = [shape[self.axis - 1 if self.axis > 0 else self.axis] for shape in self.input_shape]
        return [
            np.ascontiguousarray(part)
            for part in np.split(dy, np.cumsum(sizes)[:-1], axis=self.axis)
        ]

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, "axis": self.axis}
