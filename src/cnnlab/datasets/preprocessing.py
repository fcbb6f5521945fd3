"""Turn raw images into network input: float32, channels last, pixels in 0..1."""

from __future__ import annotations

import numpy as np

from cnnlab.errors import DatasetError


def prepare_images(x: np.ndarray) -> np.ndarray:
    """Images (N, H, W) or (N, H, W, C) -> float32 (N, H, W, C).

    Adds the channel axis to grey images (as ``np.expand_dims(x, -1)`` in the Keras MNIST
    example); divides integer pixels (uint8 0..255) by 255; float input is only cast to
    float32, assumed already scaled.
    """
    x = np.asarray(x)
    if x.ndim not in (3, 4):
        raise DatasetError(f"images have shape {x.shape}, expected (N, H, W) or (N, H, W, C)")
    if x.ndim == 3:
        x = x[..., np.newaxis]
    if np.issubdtype(x.dtype, np.integer):
        return x.astype(np.float32) / np.float32(255)
    if np.issubdtype(x.dtype, np.floating):
        return x.astype(np.float32, copy=False)
    raise DatasetError(f"images have dtype {x.dtype}, expected integers or floats")
