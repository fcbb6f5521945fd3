"""Reading a user's image file as network input (for ``cnnlab predict``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import CnnlabError


def load_image(path: Path, input_shape: tuple[int, ...], invert: str = "auto") -> np.ndarray:
    """A PNG/JPEG of any size -> float32 (H, W, C) in [0, 1] for a model with that input shape.

    Grey for one channel, RGB for three; resized with antialiasing. ``invert``: "yes",
    "no", or "auto" (invert when the image is mostly light, as a dark digit on paper,
    since MNIST digits are light on dark).
    """
    from PIL import Image, UnidentifiedImageError

    if len(input_shape) != 3 or input_shape[2] not in (1, 3):
        raise CnnlabError(f"this model takes input {input_shape}, not images (predict needs (H, W, 1) or (H, W, 3))")
    height, width, channels = input_shape
    try:
        with Image.open(path) as image:
            image = image.convert("L" if channels == 1 else "RGB").resize((width, height), Image.Resampling.LANCZOS)
            pixels = np.asarray(image, dtype=np.float32) / 255
    except FileNotFoundError:
        raise CnnlabError(f"{path}: no such image file") from None
    except (UnidentifiedImageError, OSError) as err:
        raise CnnlabError(f"{path}: not a readable image ({err})") from None
    if invert == "yes" or (invert == "auto" and pixels.mean() > 0.5):
        pixels = 1 - pixels
    return pixels.reshape(height, width, channels)
