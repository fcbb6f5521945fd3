"""Layouts and padding: how the torch twin holds what the engine holds.

The torch model takes and returns the engine's layout: images NHWC in, (N, units) or NHWC out.
Inside, images are NCHW, as PyTorch's kernels want them. Weights keep torch's layout, conv
(out, in, kh, kw) and Linear (out, in); ``torch_layout`` and ``engine_layout`` transpose from
and to the engine's (kh, kw, in, out) and (in, out).

Keras's "same" padding gives ceil(H / stride) outputs and pads total // 2 before, the odd pixel
after (explicit ``F.pad``; torch's own ``padding=`` is symmetric).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

Pads = tuple[int, int, int, int]  # (left, right, top, bottom), the order of F.pad
TORCH_DTYPES = {"float32": torch.float32, "float64": torch.float64}


def channels_first(x: torch.Tensor) -> torch.Tensor:
    """(N, H, W, C) -> (N, C, H, W); other ranks unchanged."""
    return x.permute(0, 3, 1, 2) if x.dim() == 4 else x


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H, W, C); other ranks unchanged."""
    return x.permute(0, 2, 3, 1) if x.dim() == 4 else x


def same_padding(size: int, window: int, stride: int) -> tuple[int, int]:
    """Keras's "same": ceil(size / stride) outputs; (before, after) with the odd pixel after."""
    total = max((math.ceil(size / stride) - 1) * stride + window - size, 0)
    return total // 2, total - total // 2


def keras_pads(
    input_shape: tuple[int, ...], window: tuple[int, int], strides: tuple[int, int], padding: str
) -> Pads:
    """(left, right, top, bottom) padding of an (H, W, C) input, as F.pad takes it."""
    if padding != "same":
        return (0, 0, 0, 0)
    top, bottom = same_padding(input_shape[0], window[0], strides[0])
    left, right = same_padding(input_shape[1], window[1], strides[1])
    return (left, right, top, bottom)


def pad(h: torch.Tensor, pads: Pads, value: float = 0.0) -> torch.Tensor:
    """h: (N, C, H, W) -> (N, C, H + top + bottom, W + left + right)."""
    return F.pad(h, pads, value=value) if any(pads) else h


def torch_layout(value: np.ndarray) -> np.ndarray:
    """Engine -> torch: conv kernel (kh, kw, in, out) -> (out, in, kh, kw); dense (in, out) ->
    (out, in)."""
    if value.ndim == 4:
        return value.transpose(3, 2, 0, 1)
    return value.T if value.ndim == 2 else value


def engine_layout(value: torch.Tensor) -> np.ndarray:
    """Torch -> engine: the inverse of ``torch_layout``."""
    value = value.detach().cpu()
    if value.dim() == 4:
        value = value.permute(2, 3, 1, 0)
    elif value.dim() == 2:
        value = value.T
    return value.numpy()
