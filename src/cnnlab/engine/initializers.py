"""Weight initializers with Keras names and formulas.

fan_in and fan_out of a Dense kernel (in, out) are in and out; of a Conv2D kernel
(kh, kw, in, out) they are kh*kw*in and kh*kw*out.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np

from . import limits


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
    """An initializer function by Keras name: ``get(name)(shape, rng, dtype)`` -> array.

    Every weight the engine creates passes here: one over ``CNNLAB_MAX_PARAMS`` is refused
    before it is allocated, and inside ``shapes_only()`` no memory is allocated at all."""
    if name not in INITIALIZERS:
        raise ValueError(
            f"unknown initializer {name!r}; choose one of {', '.join(sorted(INITIALIZERS))}"
        )
    initializer = INITIALIZERS[name]

    def create(shape: tuple[int, ...], rng: np.random.Generator, dtype: str) -> np.ndarray:
        if _shapes_only:
            return np.broadcast_to(np.zeros((), dtype=dtype), shape)  # zero strides: no memory
        limits.check(
            "CNNLAB_MAX_PARAMS", math.prod(shape), f"a weight of shape {tuple(shape)}", "parameters"
        )
        return initializer(shape, rng, dtype)

    create.__name__ = create.__qualname__ = initializer.__name__
    create.__doc__ = initializer.__doc__
    return create


_shapes_only = False  # True inside shapes_only()


@contextlib.contextmanager
def shapes_only() -> Iterator[None]:
    """Build layers without allocating their weights (read-only zero-stride views of the right
    shapes), so that a model's parameters are counted from its config before it is built."""
    global _shapes_only
    previous, _shapes_only = _shapes_only, True
    try:
        yield
    finally:
        _shapes_only = previous
