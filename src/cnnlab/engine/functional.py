"""The convolution and pooling maths, as pure functions over NHWC arrays.

Layers call these; nothing here keeps state. Shapes use N for the batch, H and W for the
image, C for channels, F for filters, (kh, kw) for the kernel or pool window, (sh, sw) for
the strides, and (Ho, Wo) for the output.

A convolution is one matrix product. ``im2col`` lays every receptive field out as a row:
(N*Ho*Wo, kh*kw*C), so that ``cols @ kernel.reshape(kh*kw*C, F)`` is the whole layer. The
bias rides along as one more input that is always 1: cols gets a last column of ones and
the weight matrix a last row holding the bias, so the product adds it (no extra pass over
the output), and in backward the same product that gives the kernel's gradient gives the
bias's gradient in its last row. The input gradient goes the other way: a loop over the
kh*kw kernel taps (never over pixels or samples), each tap one matrix product added back
onto one strided slice.

Padding follows TensorFlow/Keras: "valid" uses no padding; "same" gives ceil(H / sh)
outputs and pads (total // 2) before and the rest after, so for stride > 1 the extra
pixel goes to the bottom/right.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

Pair = tuple[int, int]
# im2col copies tap by tap up to this many input channels (measured: 3x faster at C=1; from
# C=2 the one 6-D copy is 3-4x faster)
FEW_CHANNELS = 1
Pads = tuple[Pair, Pair]  # ((top, bottom), (left, right))
Pooled = tuple[Pair, Pair]  # ((ph, pw), (Ho, Wo)): a pool's window and its output size
Moments = tuple[np.ndarray, np.ndarray, int]  # (cols^T 1, cols^T cols, rows): column_moments


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


BLOCK_BYTES = 512 * 1024  # a block of samples and what is made from it stay in the 1 MB L2


def block_rows(a: np.ndarray) -> int:
    """Samples of a per block: about BLOCK_BYTES, at least one, at most all."""
    return max(1, min(len(a), BLOCK_BYTES // max(a[:1].nbytes, 1)))


def batch_blocks(a: np.ndarray) -> list[slice]:
    """Slices of the batch axis of a, about BLOCK_BYTES each: a pass that makes several arrays
    from a block works while the block is in the cache, instead of streaming the whole batch
    through memory once per operation."""
    step = block_rows(a)
    return [slice(start, start + step) for start in range(0, len(a), step)]


def scratch(
    workspace: Workspace | None,
    name: str,
    shape: tuple[int, ...],
    dtype: np.dtype,
    zero: bool = False,
) -> np.ndarray:
    """A scratch array from the workspace, or a new one without a workspace."""
    if workspace is None:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    return workspace.zeros(name, shape, dtype) if zero else workspace.empty(name, shape, dtype)


def column_sums(a: np.ndarray) -> np.ndarray:
    """a: (M, F) -> (F,), the sum of each column, as one matrix-vector product (BLAS is
    several times faster at this than a.sum(axis=0) for tall, narrow arrays)."""
    return np.ones(len(a), dtype=a.dtype) @ a


# ---------------------------------------------------------------------- im2col
def receptive_fields(xp: np.ndarray, window: Pair, strides: Pair, grid: Pooled) -> np.ndarray:
    """xp: padded (N, Hp, Wp, C) -> a read-only view (ph, pw, N, Ho, Wo, kh, kw, C): [pi, pj, n,
    r, s, i, j] is the pixel that kernel tap (i, j) reads for output pixel (n, ph*r + pi,
    pw*s + pj). grid = ((ph, pw), (Ho, Wo)); with (ph, pw) = (1, 1) that is every output pixel,
    and otherwise the pixels a tiling (ph, pw) pool reads, window tap by window tap."""
    (sh, sw), ((ph, pw), (ho, wo)) = strides, grid
    s_n, s_h, s_w, s_c = xp.strides
    return np.lib.stride_tricks.as_strided(
        xp,
        (ph, pw, xp.shape[0], ho, wo, *window, xp.shape[3]),
        (sh * s_h, sw * s_w, s_n, ph * sh * s_h, pw * sw * s_w, s_h, s_w, s_c),
        writeable=False,
    )


def im2col(
    xp: np.ndarray,
    window: Pair,
    strides: Pair,
    out_hw: Pair,
    out: np.ndarray | None = None,
    pool: Pair = (1, 1),
) -> np.ndarray:
    """xp: padded (N, Hp, Wp, C) -> cols: (N*Ho*Wo, kh*kw*C), rows in (kh, kw, C) order.

    out_hw is the output's (Ho, Wo), or with pool = (ph, pw) the pooled output's: then the
    rows are the ph*pw*N*Ho*Wo output pixels that pool reads, in (ph, pw, N, Ho, Wo) order
    (``receptive_fields``). out may be a column slice of a wider array (its rows need not be
    contiguous)."""
    fields = receptive_fields(xp, window, strides, (pool, out_hw))
    shape = (math.prod(fields.shape[:5]), math.prod(fields.shape[5:]))
    cols = np.empty(shape, xp.dtype) if out is None else out
    rows = cols.reshape(fields.shape, copy=False)  # a view: what is written lands in cols
    if xp.shape[3] <= FEW_CHANNELS:  # a strided copy per tap: faster than one 8-D copy at tiny C
        for i, j in taps(window):
            rows[..., i, j, :] = fields[..., i, j, :]
        return cols
    rows[...] = fields
    return cols


# ------------------------------------------------------------------ convolution
def conv2d_columns(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    strides: Pair,
    padding: str,
    workspace: Workspace | None = None,
    pool: Pair = (1, 1),
) -> tuple[np.ndarray, np.ndarray, Pair]:
    """x: (N, H, W, C) -> (cols: (rows, K) with K = kh*kw*C, or (rows, K + 1) ending in ones with
    a bias; weights: (K, F) or (K + 1, F) ending in the bias; (Ho, Wo)): the convolution is
    cols @ weights. With pool = (1, 1) the rows are the N*Ho*Wo output pixels; with a pool, the
    ph*pw*N*(Ho // ph)*(Wo // pw) pixels its windows read, window tap by window tap
    (``receptive_fields``), and (Ho, Wo) is the pooled size."""
    n, h, w, c = x.shape
    kh, kw, _, f = kernel.shape
    k = kh * kw * c
    out_hw = output_hw((h, w), (kh, kw), strides, padding)
    out_hw = (out_hw[0] // pool[0], out_hw[1] // pool[1])
    xp = pad(x, pads_hw((h, w), (kh, kw), strides, padding))
    weights = kernel.reshape(k, f)  # (K, F)
    rows = pool[0] * pool[1] * n * out_hw[0] * out_hw[1]
    cols = scratch(workspace, "cols", (rows, k + (bias is not None)), x.dtype)
    if bias is not None:  # the bias is the weight of an input that is always 1
        cols[:, k] = 1
        weights = np.concatenate([weights, bias.reshape(1, f)])  # (K + 1, F)
    im2col(xp, (kh, kw), strides, out_hw, out=cols[:, :k], pool=pool)  # (rows, K)
    return cols, weights, out_hw


def conv2d_forward(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    strides: Pair,
    padding: str,
    workspace: Workspace | None = None,
    pool: Pair = (1, 1),
) -> tuple[np.ndarray, np.ndarray]:
    """x: (N, H, W, C), kernel: (kh, kw, C, F), bias: (F,) -> y: (N, Ho, Wo, F), and cols
    for backward (``conv2d_columns``). With a pool, y holds the pixels its windows read, window
    tap by window tap: (ph*pw*N, Ho // ph, Wo // pw, F)."""
    cols, weights, out_hw = conv2d_columns(x, kernel, bias, strides, padding, workspace, pool)
    y = scratch(workspace, "y", (len(cols), kernel.shape[3]), x.dtype)  # no fresh pages
    np.matmul(cols, weights, out=y)  # (rows, F)
    return y.reshape(-1, *out_hw, kernel.shape[3]), cols


def conv2d_max_pool(
    x: np.ndarray,
    kernel: np.ndarray,
    bias: np.ndarray | None,
    strides: Pair,
    padding: str,
    pool: Pair,
    workspace: Workspace | None = None,
    find_first: bool = True,
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """The convolution followed by a max pool whose (ph, pw) windows tile its output:
    x: (N, H, W, C) -> (out: (N, Ho, Wo, F), the maximum of each window; first: (N, Ho, Wo, F),
    the tap k (row-major in the window) of its first maximum, or None without find_first
    (inference); cols for backward, rows window tap by window tap (``conv2d_columns`` with the
    pool)).

    Only the pixels the windows read are computed, one product per window tap, each folded into
    the running maximum (``fold_maximum``). The taps' outputs are never stored.
    """
    cols, weights, out_hw = conv2d_columns(x, kernel, bias, strides, padding, workspace, pool)
    shape = (len(x), *out_hw, kernel.shape[3])
    out, first = max_of_products(cols, weights, pool, shape, workspace, find_first)
    return out, first, cols


def max_of_products(
    cols: np.ndarray,
    weights: np.ndarray,
    pool: Pair,
    shape: tuple[int, ...],
    workspace: Workspace | None = None,
    find_first: bool = True,
) -> tuple[np.ndarray, np.ndarray | None]:
    """cols: (ph*pw*N*Ho*Wo, K), rows window tap by window tap -> (out: shape = (N, Ho, Wo, F),
    the maximum over the taps of cols @ weights; first, the tap of each window's first maximum
    (uint8), or None without find_first): one product per tap, folded into the running maximum
    (``fold_maximum``); the taps' products are never stored."""
    by_tap = cols.reshape(pool[0] * pool[1], -1, cols.shape[1])  # (ph*pw, N*Ho*Wo, K)
    out = scratch(workspace, "out", shape, cols.dtype)
    z = scratch(workspace, "z", shape, cols.dtype)
    first = None
    if find_first:
        first = scratch(workspace, "first", shape, np.dtype(np.uint8), zero=True)
    np.matmul(by_tap[0], weights, out=out.reshape(-1, shape[3]))
    for k in range(1, len(by_tap)):
        np.matmul(by_tap[k], weights, out=z.reshape(-1, shape[3]))  # (N*Ho*Wo, F): tap k
        fold_maximum(out, first, z, k, workspace)
    return out, first


# ------------------------------------------------- batch statistics of a convolution
def column_moments(cols: np.ndarray, workspace: Workspace | None = None) -> Moments:
    """cols: (M, K) -> (cols^T 1: (K,), the Gram matrix cols^T cols: (K, K), M), in float64,
    block by block of rows: the mean and variance of any column of cols @ w follow from them
    (``product_moments``) without computing the product."""
    m, k = cols.shape
    sums, gram = np.zeros(k), np.zeros((k, k))
    step = max(1, BLOCK_BYTES // (8 * k))
    block = scratch(workspace, "moments_block", (min(step, m), k), np.dtype(np.float64))
    for start in range(0, m, step):
        rows = block[: min(step, m - start)]
        np.copyto(rows, cols[start : start + step])
        gram += rows.T @ rows
        sums += column_sums(rows)
    return sums, gram, m


def product_moments(moments: Moments, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mean and the biased variance (F,) of each column of z = cols @ weights over its M
    rows, in float64, from ``column_moments``: with mu = cols^T 1 / M and the covariance
    S = cols^T cols / M - mu mu^T, mean_f = mu . w_f and var_f = w_f^T S w_f."""
    sums, gram, m = moments
    w = weights.astype(np.float64)
    mu = sums / m
    covariance = gram / m - np.outer(mu, mu)
    variance = np.einsum("kf,kl,lf->f", w, covariance, w)
    return mu @ w, np.maximum(variance, 0)


def normalized_product_gradient(
    colsT_dy: np.ndarray,
    moments: Moments,
    weights: np.ndarray,
    statistics: tuple[np.ndarray, np.ndarray, np.ndarray],
    dy_sums: tuple[np.ndarray, np.ndarray],
) -> np.ndarray:
    """The gradient (K, F) of the weights of z = cols @ weights followed by a batch
    normalization y = gain * (z - mean) + beta with the batch's statistics, without dz.

    colsT_dy = cols^T dy (K, F); statistics = (mean, inv_std, gain) (F,); dy_sums = (sum(dy),
    sum(dy * x_hat)) (F,) over the M rows. With dz = gain * (dy - sum(dy) / M - x_hat *
    sum(dy * x_hat) / M) (docs/backprop.md, section 12) and x_hat = (z - mean) * inv_std:
    cols^T dz = gain * (cols^T dy - s sum(dy) / M - (G w - s mean) inv_std sum(dy x_hat) / M),
    s = cols^T 1 and G = cols^T cols."""
    sums, gram, m = moments
    mean, inv_std, gain = statistics
    dbeta, dgamma = dy_sums
    colsT_xhat = (gram @ weights.astype(np.float64) - np.outer(sums, mean)) * inv_std
    return gain * (colsT_dy - np.outer(sums, dbeta / m) - colsT_xhat * (dgamma / m))


def fold_maximum(
    out: np.ndarray,
    first: np.ndarray | None,
    z: np.ndarray,
    k: int,
    workspace: Workspace | None = None,
) -> None:
    """Tap k's values z into the running maximum out of each window, in place; first (uint8, at
    most 256 taps), the tap of each window's first maximum so far, if not None. Tap k takes a
    window where it is greater than every tap before it, so on a tie the first keeps it (as
    max_pool_backward routes it); as k only grows, first = max(first, k * greater)."""
    if first is not None:
        greater = np.greater(z, out, out=scratch(workspace, "greater", z.shape, np.dtype(bool)))
        k_if_greater = scratch(workspace, "k_if_greater", z.shape, np.dtype(np.uint8))
        np.maximum(first, np.multiply(greater, np.uint8(k), out=k_if_greater), out=first)
    np.maximum(out, z, out=out)


def first_maximum_of_taps(
    windows: np.ndarray, workspace: Workspace | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """windows: (kh*kw, N, Ho, Wo, C), pixel k of every window -> (the maximum of each window,
    the tap of its first maximum, uint8) (the workspace's "out" and "first")."""
    out = scratch(workspace, "out", windows.shape[1:], windows.dtype)
    first = scratch(workspace, "first", windows.shape[1:], np.dtype(np.uint8), zero=True)
    np.copyto(out, windows[0])
    for k in range(1, len(windows)):
        fold_maximum(out, first, windows[k], k, workspace)
    return out, first


def route_to_first(
    dy: np.ndarray, first: np.ndarray, taps: int, workspace: Workspace | None = None
) -> np.ndarray:
    """dy: (N, Ho, Wo, F), first: the tap of each window's first maximum (conv2d_max_pool) ->
    (taps, N, Ho, Wo, F): each window's gradient at that tap, 0 at the others (the workspace's
    "routed")."""
    routed = scratch(workspace, "routed", (taps, *dy.shape), dy.dtype)
    is_first = scratch(workspace, "is_first", dy.shape, np.dtype(bool))
    for k in range(taps):
        np.multiply(dy, np.equal(first, k, out=is_first), out=routed[k])
    return routed


def conv2d_backward(
    dy: np.ndarray,
    cols: np.ndarray,
    kernel: np.ndarray,
    x_shape: tuple[int, ...],
    strides: Pair,
    padding: str,
    input_grad: bool = True,
    workspace: Workspace | None = None,
    *,
    has_bias: bool,
    pool: Pair = (1, 1),
) -> tuple[np.ndarray | None, np.ndarray, np.ndarray | None]:
    """dy: (N, Ho, Wo, F) -> (dx: (N, H, W, C) or None, dkernel: (kh, kw, C, F), dbias: (F,)
    or None without a bias). With has_bias, cols ends in the column of ones conv2d_forward adds;
    with pool, dy is laid out as conv2d_forward's y with that pool: (ph*pw*N, Ho, Wo, F).

    dweights = cols^T dy (each weight meets the inputs it multiplied; the bias's input is 1,
    so its row is the sum of dy). dx: see ``conv2d_input_gradient``.
    """
    kh, kw, c, _ = kernel.shape
    k = kh * kw * c
    dy2 = dy.reshape(-1, dy.shape[-1])  # (rows, F)
    dweights = scratch(workspace, "dweights", (cols.shape[1], dy2.shape[1]), dy2.dtype)
    np.matmul(cols.T, dy2, out=dweights)  # (K, F), or (K + 1, F) with the bias's gradient last
    dkernel = dweights[:k].reshape(kernel.shape)
    dbias = dweights[k] if has_bias else None
    if not input_grad:
        return None, dkernel, dbias
    if pool != (1, 1):  # window tap by window tap -> image order: 9 long additions, not 36 short
        dy = image_order(dy, pool, workspace)
        dy2 = dy.reshape(-1, dy.shape[-1])
    dx = conv2d_input_gradient(dy2, dy.shape[:3], kernel, x_shape, strides, padding, workspace)
    return dx, dkernel, dbias


def image_order(dy: np.ndarray, pool: Pair, workspace: Workspace | None = None) -> np.ndarray:
    """dy: (ph*pw*N, Ho, Wo, F), window tap by window tap (conv2d_forward with pool) -> (N,
    ph*Ho, pw*Wo, F), the same pixels in image order (the workspace's "dy_image")."""
    (ph, pw), (_, ho, wo, f) = pool, dy.shape
    n = len(dy) // (ph * pw)
    image = scratch(workspace, "dy_image", (n, ho, ph, wo, pw, f), dy.dtype)
    image[...] = dy.reshape(ph, pw, n, ho, wo, f).transpose(2, 3, 0, 4, 1, 5)
    return image.reshape(n, ho * ph, wo * pw, f)


def conv2d_input_gradient(
    dy2: np.ndarray,
    out_shape: tuple[int, ...],
    kernel: np.ndarray,
    x_shape: tuple[int, ...],
    strides: Pair,
    padding: str,
    workspace: Workspace | None = None,
) -> np.ndarray:
    """dy2: (N*Ho*Wo, F), the output gradient as rows; out_shape: (N, Ho, Wo) -> dx: (N, H, W, C).

    dx is dy correlated with the flipped kernel: for each kernel tap (i, j), dy @ kernel[i, j]^T
    is what that tap sends back, and it is added to the pixels the tap read (a strided slice):
    the transpose of im2col, one product per tap. (Ho, Wo) may leave out the last output pixels
    (ConvThenPool does not compute those no pool window reads): they send nothing back.
    """
    kh, kw, c, _ = kernel.shape
    n, ho, wo = out_shape
    pads = pads_hw(x_shape[1:3], (kh, kw), strides, padding)
    dxp = scratch(
        workspace,
        "dxp",
        (n, x_shape[1] + sum(pads[0]), x_shape[2] + sum(pads[1]), c),
        dy2.dtype,
        zero=True,
    )
    sent_back = scratch(workspace, "sent_back", (n * ho * wo, c), dy2.dtype)
    for i, j in taps((kh, kw)):
        np.matmul(dy2, kernel[i, j].T, out=sent_back)  # (N*Ho*Wo, F) @ (F, C): tap (i, j)
        tap(dxp, i, j, strides, (ho, wo))[...] += sent_back.reshape(n, ho, wo, c)  # to its pixels
    return crop(dxp, pads)


# ---------------------------------------------------------------------- pooling
def max_pool_forward(
    x: np.ndarray, pool: Pair, strides: Pair, padding: str, workspace: Workspace | None = None
) -> np.ndarray:
    """x: (N, H, W, C) -> (N, Ho, Wo, C), the largest value of each window (into the workspace's
    "out": no fresh pages every batch).

    Padding is -inf, so a padded pixel never wins.
    """
    out_hw = output_hw(x.shape[1:3], pool, strides, padding)
    xp = pad(x, pads_hw(x.shape[1:3], pool, strides, padding), value=-np.inf)
    views = [tap(xp, i, j, strides, out_hw) for i, j in taps(pool)]
    out = scratch(workspace, "out", views[0].shape, x.dtype)
    np.copyto(out, views[0])
    for view in views[1:]:
        np.maximum(out, view, out=out)
    return out


def window_taps(
    x: np.ndarray, pool: Pair, strides: Pair, padding: str, workspace: Workspace | None = None
) -> np.ndarray:
    """x: (N, H, W, C) -> windows: (kh*kw, N, Ho, Wo, C), pixel k (row-major) of every window.

    One strided copy; afterwards each tap is one contiguous block, which NumPy compares
    several times faster than a strided view. Padding is -inf, as in max_pool_forward.
    """
    (n, h, w, c), (kh, kw), (sh, sw) = x.shape, pool, strides
    ho, wo = output_hw((h, w), pool, strides, padding)
    xp = pad(x, pads_hw((h, w), pool, strides, padding), value=-np.inf)
    views = np.lib.stride_tricks.sliding_window_view(xp, pool, axis=(1, 2))
    views = views[:, : sh * (ho - 1) + 1 : sh, : sw * (wo - 1) + 1 : sw]  # (N, Ho, Wo, C, kh, kw)
    windows = scratch(workspace, "windows", (kh * kw, n, ho, wo, c), x.dtype)
    windows.reshape(kh, kw, n, ho, wo, c)[...] = views.transpose(4, 5, 0, 1, 2, 3)
    return windows


def max_pool_backward(
    dy: np.ndarray,
    first: np.ndarray,
    x_shape: tuple[int, ...],
    pool: Pair,
    strides: Pair,
    padding: str,
    workspace: Workspace | None = None,
) -> np.ndarray:
    """dy: (N, Ho, Wo, C) -> dx: (N, H, W, C); each window's gradient goes to its maximum.

    first: (N, Ho, Wo, C), the tap (row-major in the window) of each window's first maximum
    (``first_maximum_of_taps``), so on a tie the later pixels get zero (as PyTorch and
    TensorFlow route it). Windows that tile the image (stride = pool) and windows that overlap
    are two algorithms: max_pool_backward_tiled and max_pool_backward_overlapping.
    """
    n, h, w, c = x_shape
    pads = pads_hw((h, w), pool, strides, padding)
    dxp_shape = (n, h + sum(pads[0]), w + sum(pads[1]), c)
    if tuple(strides) == tuple(pool):
        dxp = max_pool_backward_tiled(dy, first, dxp_shape, pool, workspace)
    else:
        dxp = max_pool_backward_overlapping(dy, first, dxp_shape, pool, strides, workspace)
    return crop(dxp, pads)


def max_pool_backward_tiled(
    dy: np.ndarray,
    first: np.ndarray,
    dxp_shape: tuple[int, ...],
    pool: Pair,
    workspace: Workspace | None = None,
) -> np.ndarray:
    """Stride = pool: each pixel is in one window at most. Every tap's share goes into one block
    of (kh*kw, N, Ho, Wo, C) (``route_to_first``), then one strided copy puts them all in place:
    padded dx."""
    n, ho, wo, c = dy.shape
    (ph, pw) = pool
    dxp = scratch(workspace, "dxp", dxp_shape, dy.dtype)
    dxp[:, ho * ph :] = 0  # pixels past the last window get no gradient
    dxp[:, :, wo * pw :] = 0
    shares = route_to_first(dy, first, ph * pw, workspace)
    in_windows = dxp[:, : ho * ph, : wo * pw].reshape(n, ho, ph, wo, pw, c, copy=False)
    in_windows[...] = shares.reshape(ph, pw, n, ho, wo, c).transpose(2, 3, 0, 4, 1, 5)
    return dxp


def max_pool_backward_overlapping(
    dy: np.ndarray,
    first: np.ndarray,
    dxp_shape: tuple[int, ...],
    pool: Pair,
    strides: Pair,
    workspace: Workspace | None = None,
) -> np.ndarray:
    """Stride < pool: a pixel can be the maximum of several windows, so each tap's share is
    added onto the tap's strided slice of the padded dx as soon as it is made."""
    dxp = scratch(workspace, "dxp", dxp_shape, dy.dtype, zero=True)
    share = scratch(workspace, "share", dy.shape, dy.dtype)
    is_first = scratch(workspace, "is_first", dy.shape, np.dtype(bool))
    for k, (i, j) in enumerate(taps(pool)):
        np.multiply(dy, np.equal(first, k, out=is_first), out=share)
        tap(dxp, i, j, strides, dy.shape[1:3])[...] += share
    return dxp


def window_counts(hw: Pair, pool: Pair, strides: Pair, padding: str, dtype: np.dtype) -> np.ndarray:
    """(1, Ho, Wo, 1): how many real (unpadded) pixels each window holds."""
    ones = np.ones((1, *hw, 1), dtype=dtype)
    return sum_pool(
        pad(ones, pads_hw(hw, pool, strides, padding)),
        pool,
        strides,
        output_hw(hw, pool, strides, padding),
    )


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
    return sum_pool(xp, pool, strides, out_hw) / window_counts(
        x.shape[1:3], pool, strides, padding, x.dtype
    )


def avg_pool_backward(
    dy: np.ndarray, x_shape: tuple[int, ...], pool: Pair, strides: Pair, padding: str
) -> np.ndarray:
    """dy: (N, Ho, Wo, C) -> dx: (N, H, W, C); each window shares its gradient equally."""
    pads = pads_hw(x_shape[1:3], pool, strides, padding)
    share = dy / window_counts(x_shape[1:3], pool, strides, padding, dy.dtype)
    n, h, w, c = x_shape
    dxp = np.zeros((n, h + sum(pads[0]), w + sum(pads[1]), c), dtype=dy.dtype)
    for i, j in taps(pool):
        tap(dxp, i, j, strides, dy.shape[1:3])[...] += share
    return crop(dxp, pads)
