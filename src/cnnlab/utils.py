"""The small Keras-compatible utilities (keras.utils): ``to_categorical``, ``set_random_seed``."""

from __future__ import annotations

import numpy as np

from .engine.config import set_random_seed

__all__ = ["set_random_seed", "to_categorical"]


def to_categorical(
    y: np.ndarray, num_classes: int | None = None, dtype: str = "float32"
) -> np.ndarray:
    """Integer labels (N,) or (N, 1) -> one-hot (N, num_classes) (keras.utils.to_categorical)."""
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or (y.size and (y.dtype.kind not in "iub" or y.min() < 0)):
        raise ValueError(
            "to_categorical: expected non-negative integer labels of shape (N,), received "
            f"{y.dtype} {y.shape}"
        )
    num_classes = int(y.max()) + 1 if num_classes is None else num_classes
    if y.size and y.max() >= num_classes:
        raise ValueError(
            f"to_categorical: label {int(y.max())} is out of range for num_classes={num_classes}"
        )
    out = np.zeros((len(y), num_classes), dtype=dtype)
    out[np.arange(len(y)), y] = 1
    return out
