"""The fast convolution and pooling paths against naive loop implementations.

The loops here are the second reference (besides PyTorch): slow, obvious and independent
of im2col. They use TensorFlow's padding rule written out directly.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from cnnlab.engine import functional as F


def same_pads(size: int, k: int, s: int) -> tuple[int, int]:
    out = math.ceil(size / s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def naive_pad(x, k, s, padding, value):
    if padding == "valid":
        return x
    (t, b), (l, r) = same_pads(x.shape[1], k[0], s[0]), same_pads(x.shape[2], k[1], s[1])
    return np.pad(x, ((0, 0), (t, b), (l, r), (0, 0)), constant_values=value)


def naive_conv(x, kernel, bias, s, padding):
    kh, kw, c, f = kernel.shape
    xp = naive_pad(x, (kh, kw), s, padding, 0.0)
    ho, wo = (xp.shape[1] - kh) // s[0] + 1, (xp.shape[2] - kw) // s[1] + 1
    out = np.zeros((x.shape[0], ho, wo, f))
    for n in range(x.shape[0]):
        for i in range(ho):
            for j in range(wo):
                patch = xp[n, i * s[0] : i * s[0] + kh, j * s[1] : j * s[1] + kw, :]
                for o in range(f):
                    out[n, i, j, o] = (patch * kernel[..., o]).sum() + bias[o]
    return out


def naive_pool(x, k, s, padding, kind):
    xp = naive_pad(x, k, s, padding, np.nan)
    ho, wo = (xp.shape[1] - k[0]) // s[0] + 1, (xp.shape[2] - k[1]) // s[1] + 1
    out = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    reduce = np.nanmax if kind == "max" else np.nanmean
    for i in range(ho):
        for j in range(wo):
            window = xp[:, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1], :]
            out[:, i, j, :] = reduce(window, axis=(1, 2))
    return out


CASES = [
    ((2, 7, 7, 3), (3, 3), (1, 1), "valid"),
    ((2, 7, 7, 3), (3, 3), (2, 2), "same"),
    ((1, 8, 9, 2), (2, 4), (3, 2), "same"),
    ((1, 10, 10, 1), (5, 5), (3, 3), "valid"),
    ((1, 6, 6, 2), (1, 1), (2, 2), "same"),
    ((1, 5, 5, 2), (4, 4), (1, 1), "same"),
]


@pytest.mark.parametrize("shape, k, s, padding", CASES)
def test_conv_forward_matches_loops(shape, k, s, padding):
    rng = np.random.default_rng(0)
    x = rng.standard_normal(shape)
    kernel, bias = rng.standard_normal((*k, shape[3], 4)), rng.standard_normal(4)
    fast, _ = F.conv2d_forward(x, kernel, bias, s, padding)
    np.testing.assert_allclose(fast, naive_conv(x, kernel, bias, s, padding), rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("shape, k, s, padding", CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_forward_matches_loops(shape, k, s, padding, kind):
    x = np.random.default_rng(1).standard_normal(shape)
    out = F.max_pool_forward(x, k, s, padding) if kind == "max" else F.avg_pool_forward(x, k, s, padding)
    np.testing.assert_allclose(out, naive_pool(x, k, s, padding, kind), rtol=1e-12)


def test_same_padding_puts_the_odd_pixel_after():
    """TensorFlow: 'same' with stride 2 on an even input pads 0 before and 1 after."""
    assert F.padding_amounts(8, 3, 2, "same") == (0, 1)
    assert F.padding_amounts(7, 3, 2, "same") == (1, 1)
    assert F.padding_amounts(5, 4, 1, "same") == (1, 2)
    assert F.output_length(8, 3, 2, "same") == 4
    assert F.output_length(8, 3, 2, "valid") == 3


def test_max_pool_routes_a_tie_to_the_first_pixel():
    x = np.array([[5.0, 5.0], [1.0, 5.0]]).reshape(1, 2, 2, 1)
    out = F.max_pool_forward(x, (2, 2), (2, 2), "valid")
    dx = F.max_pool_backward(np.ones_like(out), x, out, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(dx.reshape(2, 2), [[1.0, 0.0], [0.0, 0.0]])


def test_max_pool_padding_never_wins():
    x = -np.ones((1, 3, 3, 1))
    out = F.max_pool_forward(x, (2, 2), (2, 2), "same")
    np.testing.assert_array_equal(out, -np.ones((1, 2, 2, 1)))


def test_avg_pool_same_excludes_padding_from_the_mean():
    x = np.ones((1, 3, 3, 1))
    np.testing.assert_array_equal(F.avg_pool_forward(x, (2, 2), (2, 2), "same"), np.ones((1, 2, 2, 1)))


def test_im2col_rows_are_kernel_major_then_channel():
    x = np.arange(2 * 3 * 3 * 2, dtype=float).reshape(2, 3, 3, 2)
    cols = F.im2col(x, (2, 2), (1, 1), (2, 2))
    assert cols.shape == (2 * 2 * 2, 2 * 2 * 2)
    np.testing.assert_array_equal(cols[0], x[0, :2, :2, :].reshape(-1))
    np.testing.assert_array_equal(cols[-1], x[1, 1:, 1:, :].reshape(-1))
