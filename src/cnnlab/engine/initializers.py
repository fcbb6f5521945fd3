"""Weight initializers with Keras names and formulas.

fan_in and fan_out of a Dense kernel (in, out) are in and out; of a Conv2D kernel
(kh, kw, in, out) they are kh*kw*in and kh*kw*out.
"""

from __future__ import annotations

import math

import numpy as np


def fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """(fan_in, fan_out) of a kernel shape, as Keras computes them."""
    if len(shape) == 1:
        return shape[0], shape[0]
    receptive_field = math.prod(shape[:-2])
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def glorot_uniform(shape: tuple[int, ...], rng: np.random.Generator, dtype: str) -> np.ndarray:
    """U(-limit, limit) with limit = sqrt(6 / (fan_in + fan_out)); Keras's default kernel init."""
    fan_in, fan_out = fans(shape)
    limit = math.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape: tuple[int, ...], rng: np.random.Generator, dtype: str) -> np.ndarray:
    """Truncated normal (cut at 2 std) with std = sqrt(2 / fan_in), as Keras's he_normal."""
    fan_in, _ = fans(shape)
    std = math.sqrt(2 / fan_in) / 0.87962566103423978  # std of N(0,1) truncated to [-2, 2]
    values = rng.standard_normal(size=shape)
    outside = np.abs(values) > 2
    while outside.any():
        values[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = np.abs(values) > 2
    return (values * std).astype(dtype)


def zeros(shape: tuple[int, ...], rng: np.random.Generator, dtype: str) -> np.ndarray:
    """All zeros; Keras's default bias init."""
    return np.zeros(shape, dtype=dtype)


def ones(shape: tuple[int, ...], rng: np.random.Generator, dtype: str) -> np.ndarray:
    """All ones."""
    return np.ones(shape, dtype=dtype)


INITIALIZERS = {f.__name__: f for f in (glorot_uniform, he_normal, zeros, ones)}


def get(name: str):
    """An initializer function by Keras name."""
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; choose one of {', '.join(sorted(INITIALIZERS))}")
    return INITIALIZERS[name]
