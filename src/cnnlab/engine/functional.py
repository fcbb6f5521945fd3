"""The convolution and pooling maths, as pure functions over NHWC arrays.

Layers call these; nothing here keeps state. Shapes use N for the batch, H and W for the
image, C for channels, F for filters, (kh, kw) for the kernel or pool window, (sh, sw) for
the strides, and (Ho, Wo) for the output.

A convolution is one matrix product. ``im2col`` lays every receptive field out as a row:
(N*Ho*Wo, kh*kw*C), so that ``cols @ kernel.reshape(kh*kw*C, F)`` is the whole layer.
The input gradient goes the other way: a loop over the kh*kw kernel taps (never over
pixels or samples), each tap one matrix product added back onto one strided slice.

Padding follows TensorFlow/Keras: "valid" uses no padding; "same" gives ceil(H / sh)
outputs and pads (total // 2) before and the rest after, so for stride > 1 the extra
pixel goes to the bottom/right.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

Pair = tuple[int, int]
FEW_CHANNELS = 4  # im2col copies tap by tap below this many input channels (measured: 3x faster at C=1)
Pads = tuple[Pair, Pair]  # ((top, bottom), (left, right))


# --------------------------------------------------------------------------- sizes
def output_length(size: int, window: int, stride: int, padding: str) -> int:
    """Length of one output axis; zero or less means the window does not fit."""
    if padding == "same":
        return math.ceil(size / stride)
    return (size - window) // stride + 1


def padding_amounts(size: int, window: int, stride: int, padding: str) -> Pair:
    """Pixels added (before, after) one axis; TensorFlow puts the odd one after."""
    if padding != "same":
        return (0, 0)
    total = max((output_length(size, window, stride, "same") - 1) * stride + window - size, 0)
    return (total // 2, total - total // 2)


def output_hw(hw: Pair, window: Pair, strides: Pair, padding: str) -> Pair:
    """(Ho, Wo) of a convolution or pooling over an (H, W) image."""
    return (
        output_length(hw[0], window[0], strides[0], padding),
        output_length(hw[1], window[1], strides[1], padding),
    )


def pads_hw(hw: Pair, window: Pair, strides: Pair, padding: str) -> Pads:
    """((top, bottom), (left, right)) padding of an (H, W) image."""
    return (
        padding_amounts(hw[0], window[0], strides[0], padding),
        padding_amounts(hw[1], window[1], strides[1], padding),
    )


# ------------------------------------------------------------------------- padding
def pad(x: np.ndarray, pads: Pads, value: float = 0.0) -> np.ndarray:
    """x: (N, H, W, C) -> (N, H + top + bottom, W + left + right, C), filled with value."""
    (top, bottom), (left, right) = pads
    if top == bottom == left == right == 0:
        return x
    n, h, w, c = x.shape
    out = np.full((n, h + top + bottom, w + left + right, c), value, dtype=x.dtype)
    out[:, top : top + h, left : left + w, :] = x
    return out


def crop(x: np.ndarray, pads: Pads) -> np.ndarray:
    """The inverse of ``pad``: drop the padded border again."""
    (top, bottom), (left, right) = pads
    h, w = x.shape[1], x.shape[2]
    return x[:, top : h - bottom, left : w - right, :]


def tap(x: np.ndarray, i: int, j: int, strides: Pair, out_hw: Pair) -> np.ndarray:
    """The (N, Ho, Wo, C) view of pixel (i, j) of every window: a strided slice, no copy."""
    (sh, sw), (ho, wo) = strides, out_hw
    return x[:, i : i + sh * (ho - 1) + 1 : sh, j : j + sw * (wo - 1) + 1 : sw, :]


def taps(window: Pair) -> Iterator[Pair]:
    """Kernel positions (i, j) in row-major order."""
    for i in range(window[0]):
        for j in range(window[1]):
            yield i, j


# ------------------------------------------------------------------- workspace
class Workspace:
    """Scratch arrays kept from one batch to the next.

    A fresh array of many megabytes comes from the kernel as untouched pages, and the first
    write to each page costs a page fault; a layer that asks its workspace for the same
    scratch array every batch gets the same memory back instead.
    """

    def __init__(self) -> None:
        self.arrays: dict[str, np.ndarray] = {}

    def empty(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """An array of that shape and dtype; its contents are whatever was left in it."""
        array = self.arrays.get(name)
        if array is None or array.shape != tuple(shape) or array.dtype != dtype:
            array = self.arrays[name] = np.empty(shape, dtype=dtype)
        return array

    def zeros(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        array = self.empty(name, shape, dtype)
        array.fill(0)
        return array


def scratch(workspace: Workspace | None, name: str, shape: tuple[int, ...], dtype: np.dtype, zero: bool = False) -> np.ndarray:
    """A scratch array from the workspace, or a new one without a workspace."""
    if workspace is None:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    return workspace.zeros(name, shape, dtype) if zero else workspace.empty(name, shape, dtype)


def column_sums(a: np.ndarray) -> np.ndarray:
    """a: (M, F) -> (F,), the sum of each column, as one matrix-vector product (BLAS is
    several times faster at this than a.sum(axis=0) for tall, narrow arrays)."""
    return np.ones(len(a), dtype=a.dtype) @ a


# ---------------------------------------------------------------------- im2col
def im2col(xp: np.ndarray, window: Pair, strides: Pair, out_hw: Pair, out: np.ndarray | None = None) -> np.ndarray:
    """xp: padded (N, Hp, Wp, C) -> cols: (N*Ho*Wo, kh*kw*C), rows in (kh, kw, C) order."""
    n, c = xp.shape[0], xp.shape[3]
    (sh, sw), (ho, wo) = strides, out_hw
    cols = np.empty((n * ho * wo, window[0] * window[1] * c), xp.dtype) if out is None else out
    rows = cols.reshape(n, ho, wo, *window, c)
    if c <= FEW_CHANNELS:  # one strided copy per tap: faster than a 6-D transpose when C is tiny
        for i, j in taps(window):
            rows[:, :, :, i, j, :] = tap(xp, i, j, strides, out_hw)
        return cols
    views = np.lib.stride_tricks.sliding_window_view(xp, window, axis=(1, 2))
    views = views[:, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw]  # (N, Ho, Wo, C, kh, kw)
    rows[...] = views.transpose(0, 1, 2, 4, 5, 3)
    return cols


# ------------------------------------------------------------------ convolution
def conv2d_forward(
    x: np.ndarray, kernel: np.ndarray, bias: np.ndarray | None, strides: Pair, padding: str,
    workspace: Workspace | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """x: (N, H, W, C), kernel: (kh, kw, C, F) -> y: (N, Ho, Wo, F), and cols for backward."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    out_hw = output_hw((h, w), (kh, kw), strides, padding)
    xp = pad(x, pads_hw((h, w), (kh, kw), strides, padding))
    cols = scratch(workspace, "cols", (n * out_hw[0] * out_hw[1], kh * kw * c), x.dtype)
    im2col(xp, (kh, kw), strides, out_hw, out=cols)  # (N*Ho*Wo, kh*kw*C)
    y = cols @ kernel.reshape(-1, f)  # (N*Ho*Wo, F)
    if bias is not None:
        y += bias
    return y.reshape(n, *out_hw, f), cols


def conv2d_backward(
    dy: np.ndarray,
    cols: np.ndarray,
    kernel: np.ndarray,
    x_shape: tuple[int, ...],
    strides: Pair,
    padding: str,
    input_grad: bool = True,
    workspace: Workspace | None = None,
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray]:
    """dy: (N, Ho, Wo, F) -> (dx: (N, H, W, C) or None, dkernel: (kh, kw, C, F), dbias: (F,)).

    dkernel = cols^T dy (each weight meets the inputs it multiplied). dx is dy correlated
    with the flipped kernel: for each kernel tap (i, j), dy @ kernel[i, j]^T is what that tap
    sends back, and it is added to the pixels the tap read (a strided slice): the transpose
    of im2col, one matrix product per tap.
    """
    n, ho, wo, f = dy.shape
    kh, kw, c, _ = kernel.shape
    dy2 = dy.reshape(-1, f)  # (N*Ho*Wo, F)
    dkernel = (cols.T @ dy2).reshape(kernel.shape)
    dbias = column_sums(dy2)
    if not input_grad:
        return None, dkernel, dbias
    pads = pads_hw(x_shape[1:3], (kh, kw), strides, padding)
    dxp = scratch(workspace, "dxp", (n, x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1]), c), dy.dtype, zero=True)
    sent_back = scratch(workspace, "sent_back", (n * ho * wo, c), dy.dtype)
    for i, j in taps((kh, kw)):
        np.matmul(dy2, kernel[i, j].T, out=sent_back)  # (N*Ho*Wo, F) @ (F, C): what tap (i, j) sends back
        tap(dxp, i, j, strides, (ho, wo))[...] += sent_back.reshape(n, ho, wo, c)  # to the pixels it read
    return crop(dxp, pads), dkernel, dbias


# ---------------------------------------------------------------------- pooling
def max_pool_forward(x: np.ndarray, pool: Pair, strides: Pair, padding: str) -> np.ndarray:
    """x: (N, H, W, C) -> (N, Ho, Wo, C), the largest value of each window.

    Padding is -inf, so a padded pixel never wins.
    """
    out_hw = output_hw(x.shape[1:3], pool, strides, padding)
    xp = pad(x, pads_hw(x.shape[1:3], pool, strides, padding), value=-np.inf)
    out = tap(xp, 0, 0, strides, out_hw).copy()
    for i, j in taps(pool):
        np.maximum(out, tap(xp, i, j, strides, out_hw), out=out)
    return out


def max_pool_backward(dy: np.ndarray, x: np.ndarray, out: np.ndarray, pool: Pair, strides: Pair, padding: str,
                      workspace: Workspace | None = None) -> np.ndarray:
    """dy: (N, Ho, Wo, C) -> dx: (N, H, W, C); each window's gradient goes to its maximum.

    Taps are visited in row-major order and the first pixel equal to the maximum takes what
    remains of the window's gradient, so on a tie the first pixel gets it all and the later
    ones get zero (as PyTorch and TensorFlow route it). dy is used up: it is overwritten.
    """
    pads = pads_hw(x.shape[1:3], pool, strides, padding)
    xp = pad(x, pads, value=-np.inf)
    out_hw = out.shape[1:3]
    tiled = tuple(strides) == tuple(pool)  # windows tile the image: each pixel is in at most one
    dxp = scratch(workspace, "dxp", xp.shape, dy.dtype, zero=not tiled)
    if tiled:  # pixels past the last window get no gradient
        dxp[:, out_hw[0] * pool[0] :] = 0
        dxp[:, :, out_hw[1] * pool[1] :] = 0
    remaining = dy  # dy is this layer's own gradient: it is used up as it is routed
    routed = scratch(workspace, "routed", dy.shape, dy.dtype)
    is_max = scratch(workspace, "is_max", dy.shape, np.dtype(bool))
    last = pool[0] * pool[1] - 1
    for k, (i, j) in enumerate(taps(pool)):
        share = tap(dxp, i, j, strides, out_hw) if tiled else routed  # tiled: write each share in place
        np.multiply(remaining, np.equal(tap(xp, i, j, strides, out_hw), out, out=is_max), out=share)
        if k < last:
            remaining -= share
        if not tiled:
            tap(dxp, i, j, strides, out_hw)[...] += share
    return crop(dxp, pads)


def window_counts(hw: Pair, pool: Pair, strides: Pair, padding: str, dtype: np.dtype) -> np.ndarray:
    """(1, Ho, Wo, 1): how many real (unpadded) pixels each window holds."""
    ones = np.ones((1, *hw, 1), dtype=dtype)
    return sum_pool(pad(ones, pads_hw(hw, pool, strides, padding)), pool, strides, output_hw(hw, pool, strides, padding))


def sum_pool(xp: np.ndarray, pool: Pair, strides: Pair, out_hw: Pair) -> np.ndarray:
    """xp: padded (N, Hp, Wp, C) -> (N, Ho, Wo, C), the sum of each window."""
    out = tap(xp, 0, 0, strides, out_hw).copy()
    for i, j in list(taps(pool))[1:]:
        out += tap(xp, i, j, strides, out_hw)
    return out


def avg_pool_forward(x: np.ndarray, pool: Pair, strides: Pair, padding: str) -> np.ndarray:
    """x: (N, H, W, C) -> (N, Ho, Wo, C), the mean of the real pixels of each window.

    With "same" padding the padded pixels are not counted (TensorFlow's rule).
    """
    out_hw = output_hw(x.shape[1:3], pool, strides, padding)
    xp = pad(x, pads_hw(x.shape[1:3], pool, strides, padding))
    return sum_pool(xp, pool, strides, out_hw) / window_counts(x.shape[1:3], pool, strides, padding, x.dtype)


def avg_pool_backward(dy: np.ndarray, x_shape: tuple[int, ...], pool: Pair, strides: Pair, padding: str) -> np.ndarray:
    """dy: (N, Ho, Wo, C) -> dx: (N, H, W, C); each window shares its gradient equally."""
    pads = pads_hw(x_shape[1:3], pool, strides, padding)
    share = dy / window_counts(x_shape[1:3], pool, strides, padding, dy.dtype)
    n, h, w, c = x_shape
    dxp = np.zeros((n, h + sum(pads[0]), w + sum(pads[1]), c), dtype=dy.dtype)
    for i, j in taps(pool):
        tap(dxp, i, j, strides, dy.shape[1:3])[...] += share
    return crop(dxp, pads)
