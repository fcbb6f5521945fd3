"""Reading a user's image file as network input (for ``cnnlab predict``)."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .engine.limits import limit
from .errors import CnnlabError


def load_image(path: Path, input_shape: tuple[int, ...], invert: str = "auto") -> np.ndarray:
    """A PNG/JPEG of any size -> float32 (H, W, C) in [0, 1] for a model with that input shape.

    Grey for one channel, RGB for three; resized with antialiasing. ``invert``: "yes",
    "no", or "auto" (invert when the image is mostly light, as a dark digit on paper,
    since MNIST digits are light on dark).
    """
    from PIL import Image, UnidentifiedImageError

    if len(input_shape) != 3 or input_shape[2] not in (1, 3):
        raise CnnlabError(
            f"this model takes input {input_shape}, not images (predict needs (H, W, 1) or (H, W, "
            "3))"
        )
    height, width, channels = input_shape
    try:
        with warnings.catch_warnings(), pillow_pixel_limit(limit("CNNLAB_MAX_IMAGE_PIXELS")):
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                pixels = unit_pixels(image, channels, (width, height))
    except FileNotFoundError:
        raise CnnlabError(f"{path}: no such image file") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise CnnlabError(
            f"{path}: refused as a decompression bomb ({err}); set CNNLAB_MAX_IMAGE_PIXELS "
            "to raise the limit"
        ) from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise CnnlabError(f"{path}: not a readable image ({err})") from None
    if invert == "yes" or (invert == "auto" and pixels.mean() > 0.5):
        pixels = 1 - pixels
    return pixels.reshape(height, width, channels)


@contextlib.contextmanager
def pillow_pixel_limit(pixels: int) -> Iterator[None]:
    """Pillow's own bomb check (a warning above the limit, an error above twice it) at cnnlab's
    limit."""
    from PIL import Image

    previous, Image.MAX_IMAGE_PIXELS = Image.MAX_IMAGE_PIXELS, pixels
    try:
        yield
    finally:
        Image.MAX_IMAGE_PIXELS = previous


# Modes wider than 8 bits per pixel, and the value of white in each (Pillow converts them to
# "L" by clipping at 255, which turns a 16-bit image black).
WIDE_MODES = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535, "F": 1.0}


def unit_pixels(image: Any, channels: int, size: tuple[int, int]) -> np.ndarray:
    """The image resized to size (width, height), as float32 (H, W) or (H, W, 3) in [0, 1],
    each mode scaled by its real range (16-bit grey by 65535)."""
    from PIL import Image

    if image.mode not in WIDE_MODES:
        converted = image.convert("L" if channels == 1 else "RGB").resize(
            size, Image.Resampling.LANCZOS
        )
        return np.asarray(converted, dtype=np.float32) / 255
    grey = np.asarray(image, dtype=np.float64) / WIDE_MODES[image.mode]
    grey = Image.fromarray(np.clip(grey, 0, 1).astype(np.float32)).resize(
        size, Image.Resampling.LANCZOS
    )
    grey = np.clip(np.asarray(grey, dtype=np.float32), 0, 1)
    return grey if channels == 1 else np.repeat(grey[..., None], 3, axis=2)
