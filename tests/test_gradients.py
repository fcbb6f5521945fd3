"""Central-difference gradient checks (float64) for every layer and loss.

For a layer f and a fixed random upstream gradient G, the scalar L = sum(f(x) * G) has
dL/dx = backward(G); each analytic gradient is compared with (L(x + h) - L(x - h)) / 2h.
"""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.engine import layers, losses
from cnnlab.engine.config import set_floatx

H = 1e-6
TOLERANCE = 1e-6


@pytest.fixture(autouse=True)
def float64():
    set_floatx("float64")
    yield
    set_floatx("float32")


def numerical_gradient(f, array: np.ndarray) -> np.ndarray:
    """dL/d(array) by central differences, perturbing array in place one element at a time."""
    grad = np.zeros_like(array)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + H
        plus = f()
        flat[i] = saved - H
        minus = f()
        flat[i] = saved
        flat_grad[i] = (plus - minus) / (2 * H)
    return grad


def assert_close(name: str, analytic: np.ndarray, numeric: np.ndarray) -> None:
    scale = max(1.0, float(np.abs(numeric).max()))
    error = float(np.abs(analytic - numeric).max()) / scale
    assert error < TOLERANCE, f"{name}: largest relative difference {error:.2e}"


def check_layer(layer: layers.Layer, x: np.ndarray, seed: int = 0) -> None:
    """Compare backward() with finite differences for the input and every weight."""
    rng = np.random.default_rng(seed)
    layer.build(x.shape[1:], rng)
    upstream = rng.standard_normal((len(x), *layer.output_shape))

    def loss() -> float:
        return float((layer.forward(x.copy(), training=True) * upstream).sum())

    loss()
    dx = layer.backward(upstream.copy())  # backward may reuse its argument's memory
    analytic = {key: layer.grads[key].copy() for key in layer.params}
    assert_close(f"{layer.name} input", dx, numerical_gradient(loss, x))
    for key, param in layer.params.items():
        assert_close(f"{layer.name} {key}", analytic[key], numerical_gradient(loss, param))


CONV_CASES = [
    # (input (N, H, W, C), filters, kernel, strides, padding)
    ((2, 5, 5, 1), 2, 1, 1, "valid"),
    ((2, 6, 5, 2), 3, 2, 1, "valid"),
    ((1, 7, 7, 3), 2, 3, 2, "valid"),
    ((1, 7, 6, 2), 2, 3, 1, "same"),
    ((1, 8, 7, 2), 3, 3, 2, "same"),
    ((1, 9, 9, 1), 2, 5, 3, "same"),
    ((1, 9, 8, 2), 2, 4, 3, "valid"),
    ((1, 6, 6, 2), 2, (2, 3), (1, 2), "same"),
    ((1, 5, 5, 2), 2, 5, 1, "valid"),
    ((1, 4, 4, 1), 1, 1, 3, "same"),
]


@pytest.mark.parametrize("shape, filters, kernel, strides, padding", CONV_CASES)
@pytest.mark.parametrize("activation", [None, "tanh"])
def test_conv2d_gradients(shape, filters, kernel, strides, padding, activation):
    layer = layers.Conv2D(filters, kernel, strides=strides, padding=padding, activation=activation)
    check_layer(layer, np.random.default_rng(1).standard_normal(shape))


POOL_CASES = [
    # (input, pool, strides, padding): with and without overlap, odd sizes
    ((2, 4, 4, 2), 2, None, "valid"),
    ((1, 5, 5, 3), 2, None, "valid"),
    ((1, 7, 7, 2), 3, None, "valid"),
    ((1, 6, 6, 2), 3, 1, "valid"),
    ((1, 7, 5, 2), 3, 2, "valid"),
    ((1, 5, 5, 1), 2, 1, "same"),
    ((1, 7, 7, 2), 3, 2, "same"),
    ((1, 5, 6, 2), (2, 3), (1, 2), "same"),
]


@pytest.mark.parametrize("shape, pool, strides, padding", POOL_CASES)
@pytest.mark.parametrize("kind", [layers.MaxPooling2D, layers.AveragePooling2D])
def test_pooling_gradients(shape, pool, strides, padding, kind):
    # distinct values, so that no max-pool window has a tie a small step could flip
    x = np.random.default_rng(2).permutation(np.prod(shape)).reshape(shape) / 7.0
    check_layer(kind(pool, strides=strides, padding=padding), x.astype(np.float64))


@pytest.mark.parametrize("activation", ["linear", "relu", "sigmoid", "tanh", "softmax"])
def test_dense_gradients(activation):
    x = np.random.default_rng(3).standard_normal((4, 5)) + 0.1  # keeps relu away from its kink
    check_layer(layers.Dense(3, activation=activation), x)


@pytest.mark.parametrize("activation", ["relu", "sigmoid", "tanh", "softmax"])
def test_activation_layer_gradients(activation):
    check_layer(
        layers.Activation(activation), np.random.default_rng(4).standard_normal((3, 6)) + 0.05
    )


def test_flatten_gradients():
    check_layer(layers.Flatten(), np.random.default_rng(5).standard_normal((2, 3, 4, 2)))


def test_dropout_gradients_use_the_same_mask():
    layer = layers.Dropout(0.4, seed=0)
    x = np.random.default_rng(6).standard_normal((3, 8))
    layer.build(x.shape[1:])
    y = layer.forward(x, training=True)
    dx = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(dx, layer.mask)
    np.testing.assert_allclose(y, x * layer.mask)
    assert set(np.unique(layer.mask)) <= {0.0, 1 / 0.6}


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_dropout_drops_its_rate_and_keeps_the_expected_value(rate):
    """Over 200,000 values the dropped share is the rate within 1% (binomial sd < 0.12%), and the
    mean of the output stays the input's (inverted dropout); at inference nothing is dropped."""
    layer = layers.Dropout(rate, seed=1)
    x = np.ones((200, 1000))
    layer.build(x.shape[1:])
    y = layer.forward(x, training=True)
    assert abs((y == 0).mean() - rate) < 0.01
    assert abs(y.mean() - 1.0) < 0.02
    assert layer.forward(x, training=False) is x


def one_hot(labels: np.ndarray, k: int) -> np.ndarray:
    return np.eye(k)[labels]


LOSS_CASES = [
    ("categorical_crossentropy", "softmax", lambda rng: one_hot(rng.integers(0, 4, 5), 4)),
    ("sparse_categorical_crossentropy", "softmax", lambda rng: rng.integers(0, 4, 5)),
    ("binary_crossentropy", "sigmoid", lambda rng: rng.integers(0, 2, (5, 4)).astype(float)),
    ("mean_squared_error", "linear", lambda rng: rng.standard_normal((5, 4))),
]


@pytest.mark.parametrize("name, activation, targets", LOSS_CASES)
def test_loss_gradients(name, activation, targets):
    rng = np.random.default_rng(7)
    loss, y_true = losses.get(name), targets(rng)
    y_pred = layers.Activation(activation).forward(rng.standard_normal((5, 4)))
    if activation == "linear":
        y_pred = rng.standard_normal((5, 4))
    assert_close(
        name,
        loss.gradient(y_true, y_pred),
        numerical_gradient(lambda: loss(y_true, y_pred), y_pred),
    )


@pytest.mark.parametrize("name, activation, targets", [c for c in LOSS_CASES if c[1] != "linear"])
def test_fused_gradient_equals_the_chain_rule(name, activation, targets):
    """(p - y) / N must equal loss.gradient followed by the activation's backward."""
    rng = np.random.default_rng(8)
    loss, y_true = losses.get(name), targets(rng)
    act = layers.Activation(activation)
    z = rng.standard_normal((5, 4))
    p = act.forward(z)
    fused = loss.gradient_before_activation(y_true, p)
    np.testing.assert_allclose(fused, act.backward(loss.gradient(y_true, p)), rtol=1e-9, atol=1e-12)
    assert_close(
        f"{name} fused", fused, numerical_gradient(lambda: loss(y_true, act.forward(z.copy())), z)
    )


@pytest.mark.parametrize(
    "name, activation, targets",
    [
        (
            "categorical_crossentropy",
            "softmax",
            lambda rng: one_hot(rng.integers(0, 3, (2, 3, 3)), 3),
        ),
        ("sparse_categorical_crossentropy", "softmax", lambda rng: rng.integers(0, 3, (2, 3, 3))),
    ],
)
def test_cross_entropy_over_spatial_outputs(name, activation, targets):
    """A per-pixel classifier (N, H, W, K): the mean runs over N*H*W predictions."""
    rng = np.random.default_rng(9)
    loss, y_true = losses.get(name), targets(rng)
    act = layers.Activation(activation)
    z = rng.standard_normal((2, 3, 3, 3))
    p = act.forward(z.copy())
    numeric = numerical_gradient(lambda: loss(y_true, act.forward(z.copy())), z)
    assert_close(f"{name} fused (N, H, W, K)", loss.gradient_before_activation(y_true, p), numeric)
    assert_close(f"{name} (N, H, W, K)", act.backward(loss.gradient(y_true, p)), numeric)


def test_clipped_probabilities_get_no_gradient():
    loss = losses.get("categorical_crossentropy")
    grad = loss.gradient(np.array([[1.0, 0.0]]), np.array([[1e-9, 1 - 1e-9]]))
    np.testing.assert_array_equal(grad, [[0.0, 0.0]])
