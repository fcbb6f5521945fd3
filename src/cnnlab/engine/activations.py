"""Activation functions with their derivatives.

Each activation maps z -> a elementwise (softmax along the last axis). The backward pass
needs only the output a, so layers keep a and not z.
"""

from __future__ import annotations

import numpy as np


class Activation:
    """Base class: ``forward(z)`` may overwrite z; ``backward(da, a)`` returns dz and may
    overwrite da (each gradient array is used once, by the layer that receives it)."""

    name = "linear"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return z

    def backward(self, da: np.ndarray, a: np.ndarray) -> np.ndarray:
        return da


ROW = 512  # values per row in maximum_with_zero
MASK_ROW = 32 * 1024  # values per piece of ReLU's backward mask (32 KB of bools)


def maximum_with_zero(z: np.ndarray) -> np.ndarray:
    """max(z, 0), in place. The same as ``np.maximum(z, 0, out=z)``, 2.5x faster: NumPy
    has no SIMD loop for maximum against a scalar, but has one against an array, so z is
    seen as rows of 512 values and the 0 as one row of 512 zeros broadcast over them."""
    if not z.flags.c_contiguous or z.size % ROW:
        return np.maximum(z, 0, out=z)
    rows = z.reshape(-1, ROW)  # a view, as z is contiguous
    np.maximum(rows, np.zeros(ROW, z.dtype), out=rows)
    return z


class ReLU(Activation):
    """a = max(z, 0);  dz = da where a > 0, else 0."""

    name = "relu"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return maximum_with_zero(z)

    def backward(self, da: np.ndarray, a: np.ndarray) -> np.ndarray:
        # da is this layer's own gradient: reuse it. The mask a > 0 is made MASK_ROW values at
        # a time: a small temporary comes back from malloc's heap, a large one as fresh pages
        if not (da.flags.c_contiguous and a.flags.c_contiguous) or a.size <= MASK_ROW:
            return np.multiply(da, a > 0, out=da)
        flat_da, flat_a = da.reshape(-1), a.reshape(-1)
        for start in range(0, a.size, MASK_ROW):
            part = slice(start, start + MASK_ROW)
            np.multiply(flat_da[part], flat_a[part] > 0, out=flat_da[part])
        return da


class Sigmoid(Activation):
    """a = 1 / (1 + e^-z);  dz = da * a * (1 - a)."""

    name = "sigmoid"

    def forward(self, z: np.ndarray) -> np.ndarray:
        # Split by sign so that exp never overflows.
        out = np.empty_like(z)
        positive = z >= 0
        out[positive] = 1 / (1 + np.exp(-z[positive]))
        ez = np.exp(z[~positive])
        out[~positive] = ez / (1 + ez)
        return out

    def backward(self, da: np.ndarray, a: np.ndarray) -> np.ndarray:
        return da * a * (1 - a)


class Tanh(Activation):
    """a = tanh(z);  dz = da * (1 - a^2)."""

    name = "tanh"

    def forward(self, z: np.ndarray) -> np.ndarray:
        return np.tanh(z, out=z)

    def backward(self, da: np.ndarray, a: np.ndarray) -> np.ndarray:
        return da * (1 - a * a)


class Softmax(Activation):
    """a_i = e^{z_i} / sum_j e^{z_j} over the last axis;  dz = a * (da - sum(da * a))."""

    name = "softmax"

    def forward(self, z: np.ndarray) -> np.ndarray:
        z -= z.max(axis=-1, keepdims=True)  # shift for stability; softmax is unchanged
        np.exp(z, out=z)
        z /= z.sum(axis=-1, keepdims=True)
        return z

    def backward(self, da: np.ndarray, a: np.ndarray) -> np.ndarray:
        return a * (da - (da * a).sum(axis=-1, keepdims=True))


ACTIVATIONS: dict[str, type[Activation]] = {
    cls.name: cls for cls in (Activation, ReLU, Sigmoid, Tanh, Softmax)
}


def get(identifier: str | None) -> Activation:
    """An activation by Keras name ("relu", "softmax", ...); None means linear."""
    if identifier is None:
        return Activation()
    if isinstance(identifier, Activation):
        return identifier
    if not isinstance(identifier, str) or identifier.lower() not in ACTIVATIONS:
        raise ValueError(
            f"unknown activation {identifier!r}; choose one of {', '.join(sorted(ACTIVATIONS))}"
        )
    return ACTIVATIONS[identifier.lower()]()
