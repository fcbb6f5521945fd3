"""Engine-wide settings: the float type and the default random seed (Keras's globals).

These are the only module-level state of the engine besides layer-name counters.
"""

from __future__ import annotations

import numpy as np

_FLOATX = "float32"
_DEFAULT_SEED: int | None = None


def floatx() -> str:
    """The default float type of new weights and inputs: "float32" (Keras: keras.config.floatx)."""
    return _FLOATX


def set_floatx(dtype: str) -> None:
    """Use "float64" for gradient checks, "float32" (the default) otherwise."""
    global _FLOATX
    if dtype not in ("float32", "float64"):
        raise ValueError(f"floatx must be 'float32' or 'float64', received {dtype!r}")
    _FLOATX = dtype


def set_random_seed(seed: int | None) -> None:
    """Make every model built afterwards (without its own seed=) repeatable.

    Keras counterpart: keras.utils.set_random_seed.
    """
    global _DEFAULT_SEED
    if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
        raise ValueError(f"seed must be a non-negative integer or None, received {seed!r}")
    _DEFAULT_SEED = None if seed is None else int(seed)


def default_seed() -> int | None:
    """The seed set by ``set_random_seed``, or None."""
    return _DEFAULT_SEED
