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
    (t, b), (left, r) = same_pads(x.shape[1], k[0], s[0]), same_pads(x.shape[2], k[1], s[1])
    return np.pad(x, ((0, 0), (t, b), (left, r), (0, 0)), constant_values=value)


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
    np.testing.assert_allclose(
        fast, naive_conv(x, kernel, bias, s, padding), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("shape, k, s, padding", CASES)
@pytest.mark.parametrize("kind", ["max", "avg"])
def test_pool_forward_matches_loops(shape, k, s, padding, kind):
    x = np.random.default_rng(1).standard_normal(shape)
    out = (
        F.max_pool_forward(x, k, s, padding)
        if kind == "max"
        else F.avg_pool_forward(x, k, s, padding)
    )
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
    windows = F.window_taps(x, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(windows.reshape(4), [5.0, 5.0, 1.0, 5.0])
    maximum, first = F.first_maximum_of_taps(windows)
    np.testing.assert_array_equal(maximum, out)
    assert first.reshape(()) == 0  # taps 0, 1 and 3 hold the maximum: the first takes it
    dx = F.max_pool_backward(np.ones_like(out), first, x.shape, (2, 2), (2, 2), "valid")
    np.testing.assert_array_equal(dx.reshape(2, 2), [[1.0, 0.0], [0.0, 0.0]])


def test_max_pool_padding_never_wins():
    x = -np.ones((1, 3, 3, 1))
    out = F.max_pool_forward(x, (2, 2), (2, 2), "same")
    np.testing.assert_array_equal(out, -np.ones((1, 2, 2, 1)))


def test_avg_pool_same_excludes_padding_from_the_mean():
    x = np.ones((1, 3, 3, 1))
    np.testing.assert_array_equal(
        F.avg_pool_forward(x, (2, 2), (2, 2), "same"), np.ones((1, 2, 2, 1))
    )


def test_im2col_rows_are_kernel_major_then_channel():
    x = np.arange(2 * 3 * 3 * 2, dtype=float).reshape(2, 3, 3, 2)
    cols = F.im2col(x, (2, 2), (1, 1), (2, 2))
    assert cols.shape == (2 * 2 * 2, 2 * 2 * 2)
    np.testing.assert_array_equal(cols[0], x[0, :2, :2, :].reshape(-1))
    np.testing.assert_array_equal(cols[-1], x[1, 1:, 1:, :].reshape(-1))


@pytest.mark.parametrize("shape, k, s, padding", CASES)
def test_conv_without_bias_has_no_ones_column_and_no_bias_gradient(shape, k, s, padding):
    rng = np.random.default_rng(3)
    x, kernel, bias = (
        rng.standard_normal(shape),
        rng.standard_normal((*k, shape[3], 4)),
        rng.standard_normal(4),
    )
    with_bias, cols = F.conv2d_forward(x, kernel, bias, s, padding)
    without, plain_cols = F.conv2d_forward(x, kernel, None, s, padding)
    np.testing.assert_allclose(with_bias, without + bias, rtol=1e-12, atol=1e-12)
    assert cols.shape[1] == plain_cols.shape[1] + 1 == math.prod(k) * shape[3] + 1
    np.testing.assert_array_equal(cols[:, -1], 1.0)
    dy = rng.standard_normal(with_bias.shape)
    _, dkernel, dbias = F.conv2d_backward(dy, cols, kernel, x.shape, s, padding, has_bias=True)
    _, plain_dkernel, no_dbias = F.conv2d_backward(
        dy, plain_cols, kernel, x.shape, s, padding, has_bias=False
    )
    np.testing.assert_allclose(dbias, dy.sum(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(dkernel, plain_dkernel, rtol=1e-12)
    assert no_dbias is None


@pytest.mark.parametrize("shape, k, s, padding", CASES)
def test_window_taps_are_the_pixels_of_each_window(shape, k, s, padding):
    x = np.random.default_rng(4).standard_normal(shape)
    windows = F.window_taps(x, k, s, padding)
    xp = naive_pad(x, k, s, padding, -np.inf)
    ho, wo = windows.shape[2:4]
    for n, (i, j) in enumerate((i, j) for i in range(k[0]) for j in range(k[1])):
        np.testing.assert_array_equal(
            windows[n], xp[:, i : i + s[0] * ho : s[0], j : j + s[1] * wo : s[1]]
        )
    np.testing.assert_array_equal(windows.max(axis=0), F.max_pool_forward(x, k, s, padding))


@pytest.mark.parametrize(
    "pool, strides, padding",
    [((2, 2), (2, 2), "valid"), ((3, 3), (1, 1), "same"), ((2, 3), (2, 1), "valid")],
)
def test_max_pool_layer_backward_after_inference_forward_equals_training(pool, strides, padding):
    """Backward lays the windows out itself when forward ran without training (input gradients)."""
    from cnnlab.engine import layers

    x = np.round(np.random.default_rng(5).standard_normal((2, 7, 6, 3)), 1)  # rounded: many ties
    grads = []
    for training in (True, False):
        layer = layers.MaxPooling2D(pool, strides=strides, padding=padding)
        layer.build(x.shape[1:])
        out = layer.forward(x, training=training)
        grads.append(layer.backward(np.ones_like(out)).copy())
    np.testing.assert_array_equal(grads[0], grads[1])
    assert grads[0].sum() == np.prod(
        out.shape
    )  # every window's gradient lands on exactly one pixel


@pytest.mark.parametrize("shape", [(4, 256), (3, 5, 7), (1024,), (0, 512)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_forward_equals_numpy_maximum(shape, dtype):
    from cnnlab.engine.activations import maximum_with_zero

    z = np.random.default_rng(6).standard_normal(shape).astype(dtype)
    expected = np.maximum(z, 0)
    assert maximum_with_zero(z) is z
    np.testing.assert_array_equal(z, expected)
    strided = (
        np.random.default_rng(7).standard_normal((8, 1024)).astype(dtype)[:, ::2]
    )  # not contiguous
    expected = np.maximum(strided, 0)
    np.testing.assert_array_equal(maximum_with_zero(strided), expected)


def naive_first_maximum(z, pool):
    """z: (N, H, W, F) -> (max, tap of the first maximum) of each tiling window, by loops."""
    (ph, pw), (n, h, w, f) = pool, z.shape
    ho, wo = h // ph, w // pw
    out, first = np.zeros((n, ho, wo, f)), np.zeros((n, ho, wo, f), dtype=int)
    for r in range(ho):
        for s in range(wo):
            window = z[:, r * ph : (r + 1) * ph, s * pw : (s + 1) * pw, :].reshape(n, ph * pw, f)
            out[:, r, s], first[:, r, s] = window.max(axis=1), window.argmax(axis=1)
    return out, first


@pytest.mark.parametrize("shape, k, s, padding", CASES[:4])
@pytest.mark.parametrize("pool", [(2, 2), (3, 2), (1, 3)])
def test_conv_max_pool_is_the_convolution_then_the_pool_with_the_first_maximum(
    shape, k, s, padding, pool
):
    """conv2d_max_pool (fused.ConvThenPool) against the loops: the convolution, then each tiling
    window's maximum and the row-major tap of its first maximum (np.argmax takes the first too),
    with ties made on purpose (a blank region); route_to_first puts dy at that tap only."""
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    x[:, : shape[1] // 2] = 0  # blank: every window there holds equal values
    kernel, bias = rng.standard_normal((*k, shape[3], 4)), rng.standard_normal(4)
    z = naive_conv(x, kernel, bias, s, padding)
    pool = (min(pool[0], z.shape[1]), min(pool[1], z.shape[2]))  # a window fits the output
    out, first, cols = F.conv2d_max_pool(x, kernel, bias, s, padding, pool)
    expected_out, expected_first = naive_first_maximum(z, pool)
    np.testing.assert_allclose(out, expected_out, rtol=1e-10, atol=1e-10)
    assert np.array_equal(first, expected_first) and first.dtype == np.uint8
    assert len(cols) == pool[0] * pool[1] * out[..., 0].size
    inference, none, _ = F.conv2d_max_pool(x, kernel, bias, s, padding, pool, find_first=False)
    assert none is None and np.array_equal(inference, out)
    dy = rng.standard_normal(out.shape)
    routed = F.route_to_first(dy, first, pool[0] * pool[1])
    taps = np.arange(pool[0] * pool[1]).reshape(-1, 1, 1, 1, 1)
    np.testing.assert_array_equal(routed, np.where(taps == expected_first, dy, 0))


@pytest.mark.parametrize("shape", [(7, 100, 97), (3, 5), (64, 1024)])
def test_relu_backward_masks_in_pieces_as_on_the_whole(shape):
    """ReLU's backward builds its mask a > 0 MASK_ROW values at a time on large arrays (small
    temporaries, no fresh pages); the result is the whole-array product, written into da."""
    from cnnlab.engine.activations import ReLU

    rng = np.random.default_rng(9)
    a = np.maximum(rng.standard_normal(shape).astype(np.float32), 0)
    da = rng.standard_normal(shape).astype(np.float32)
    expected = da * (a > 0)
    out = ReLU().backward(da, a)
    assert out is da
    np.testing.assert_array_equal(out, expected)
    strided_da = rng.standard_normal((shape[0], 2 * shape[-1])).astype(np.float32)[:, ::2]
    strided_a = np.maximum(rng.standard_normal(strided_da.shape).astype(np.float32), 0)
    expected = strided_da * (strided_a > 0)
    np.testing.assert_array_equal(ReLU().backward(strided_da, strided_a), expected)


def correlated_columns(rng: np.random.Generator, rows: int, k: int) -> np.ndarray:
    """Rows of k values as an image's neighbouring pixels are: an offset far from 0, and so
    alike that a difference of them varies 1000 times less than each (the hard case for a
    variance taken from sums of products)."""
    common = 5 + rng.standard_normal((rows, 1))
    return (common + 1e-3 * rng.standard_normal((rows, k))).astype(np.float32)


@pytest.mark.parametrize("rows, k", [(50_000, 9), (3_000, 28), (7, 4)])
def test_moments_of_the_columns_give_the_statistics_of_every_product(rows, k):
    """column_moments + product_moments (fused.ConvNormThenPool's folded forward): the mean and
    biased variance of each column of cols @ w, as computed from z itself in float64, for an
    edge-like filter (weights summing to 0: a variance below 1e-6 of its products' scale) too."""
    rng = np.random.default_rng(4)
    cols = correlated_columns(rng, rows, k)
    weights = rng.standard_normal((k, 3)).astype(np.float32)
    weights[:, 0] -= weights[:, 0].mean()  # an edge filter: the offset cancels
    mean, variance = F.product_moments(F.column_moments(cols, F.Workspace()), weights)
    z = cols.astype(np.float64) @ weights.astype(np.float64)
    np.testing.assert_allclose(mean, z.mean(axis=0), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(variance, z.var(axis=0), rtol=1e-7)
    products_scale = (cols.astype(np.float64) ** 2).mean() * (weights[:, 0] ** 2).sum()
    assert variance[0] < 1e-6 * products_scale  # what float32 sums of products would lose


def test_the_normalized_product_gradient_is_cols_transposed_times_dz():
    """normalized_product_gradient against dz written out: z = cols @ w, batch-normalized with
    the batch's statistics (gain = gamma * inv_std), dz = gain * (dy - mean(dy) - x_hat *
    mean(dy * x_hat)), and cols^T dz, in float64."""
    rng = np.random.default_rng(5)
    cols = correlated_columns(rng, 400, 6).astype(np.float64)
    weights, gamma = rng.standard_normal((6, 4)), rng.standard_normal(4)
    z = cols @ weights
    mean, inv_std = z.mean(axis=0), 1 / np.sqrt(z.var(axis=0) + 1e-3)
    x_hat, dy = (z - mean) * inv_std, rng.standard_normal(z.shape)
    dz = gamma * inv_std * (dy - dy.mean(axis=0) - x_hat * (dy * x_hat).mean(axis=0))
    moments = F.column_moments(cols)
    gradient = F.normalized_product_gradient(
        cols.T @ dy,
        moments,
        weights,
        (mean, inv_std, gamma * inv_std),
        (dy.sum(axis=0), (dy * x_hat).sum(axis=0)),
    )
    np.testing.assert_allclose(gradient, cols.T @ dz, rtol=1e-7, atol=1e-9)
