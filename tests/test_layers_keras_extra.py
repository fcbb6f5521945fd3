"""The layers that real Keras programs use beyond the seed CNN (issue 19): BatchNormalization,
GlobalAveragePooling2D, GlobalMaxPooling2D, ZeroPadding2D, Reshape, Rescaling, Softmax, ReLU,
LeakyReLU, and Dense on inputs of any rank.

Each is checked three ways: central differences in float64 (the gradient of L = sum(f(x) * G)),
PyTorch as the oracle in float32 (forward 1e-5, gradients 1e-4 relative), and Keras 3 itself
given the same weights; then inside a Sequential against both reference twins. The registry
rule is tested too: every registered single-input layer has a torch twin, a Keras twin and a
gradient case here.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from cnnlab.engine import Input, Sequential, layers, optimizers
from cnnlab.engine.config import set_floatx
from cnnlab.engine.errors import UnsupportedKerasFeature

H = 1e-6
GRADIENT_TOLERANCE = 1e-6
FORWARD_TOLERANCE = 1e-5
BACKWARD_TOLERANCE = 1e-4


@pytest.fixture
def float64():
    set_floatx("float64")
    yield
    set_floatx("float32")


# ------------------------------------------------------------------- the cases
def away_from_kinks(shape: tuple[int, ...], seed: int, scale: float = 2.0) -> np.ndarray:
    """Distinct values, none within 0.05 of 0, 0.5, 2 or 6 (where ReLU variants bend): a finite
    difference never straddles a kink and a max never has a tie."""
    x = (
        np.random.default_rng(seed).permutation(math.prod(shape)).reshape(shape)
        / math.prod(shape)
        * 2
        - 1
    )
    x = x * scale * 4 + 0.013
    for kink in (0.0, 0.5, 2.0, 6.0):
        near = np.abs(x - kink) < 0.05
        x[near] += 0.1
    return x


Case = tuple[Callable[[], layers.Layer], tuple[int, ...], bool]
# name -> (layer factory, input shape with the batch axis, training)
CASES: dict[str, Case] = {
    "BatchNormalization features": (lambda: layers.BatchNormalization(), (5, 4), True),
    "BatchNormalization images": (lambda: layers.BatchNormalization(), (3, 3, 2, 3), True),
    "BatchNormalization axis=1": (lambda: layers.BatchNormalization(axis=1), (3, 4, 2), True),
    "BatchNormalization no scale": (lambda: layers.BatchNormalization(scale=False), (4, 3), True),
    "BatchNormalization no center": (
        lambda: layers.BatchNormalization(center=False),
        (2, 2, 2, 3),
        True,
    ),
    "BatchNormalization inference": (lambda: layers.BatchNormalization(), (3, 2, 2, 3), False),
    "GlobalAveragePooling2D": (lambda: layers.GlobalAveragePooling2D(), (2, 3, 4, 2), True),
    "GlobalAveragePooling2D keepdims": (
        lambda: layers.GlobalAveragePooling2D(keepdims=True),
        (2, 3, 2, 3),
        True,
    ),
    "GlobalMaxPooling2D": (lambda: layers.GlobalMaxPooling2D(), (2, 3, 4, 2), True),
    "GlobalMaxPooling2D keepdims": (
        lambda: layers.GlobalMaxPooling2D(keepdims=True),
        (2, 3, 2, 3),
        True,
    ),
    "ZeroPadding2D 1": (lambda: layers.ZeroPadding2D(1), (2, 2, 3, 2), True),
    "ZeroPadding2D pairs": (lambda: layers.ZeroPadding2D(((1, 2), (0, 3))), (1, 3, 2, 2), True),
    "Reshape": (lambda: layers.Reshape((-1, 2)), (2, 3, 2, 2), True),
    "Reshape to images": (lambda: layers.Reshape((2, 3, 2)), (2, 12), True),
    "Rescaling": (lambda: layers.Rescaling(1 / 255, offset=-0.5), (2, 3, 3, 1), True),
    "Softmax": (lambda: layers.Softmax(), (3, 5), True),
    "Softmax axis=1": (lambda: layers.Softmax(axis=1), (2, 3, 2, 2), True),
    "Softmax axes (1, 2)": (lambda: layers.Softmax(axis=(1, 2)), (2, 2, 3, 2), True),
    "ReLU": (lambda: layers.ReLU(), (3, 6), True),
    "ReLU max_value=6": (lambda: layers.ReLU(max_value=6), (3, 6), True),
    "ReLU all options": (
        lambda: layers.ReLU(max_value=2, negative_slope=0.1, threshold=0.5),
        (2, 2, 3, 2),
        True,
    ),
    "LeakyReLU": (lambda: layers.LeakyReLU(), (3, 6), True),
    "LeakyReLU 0.05": (lambda: layers.LeakyReLU(negative_slope=0.05), (2, 2, 2, 3), True),
    "Dense rank 3": (lambda: layers.Dense(3), (2, 4, 5), True),
    "Dense images softmax": (lambda: layers.Dense(4, activation="softmax"), (2, 3, 2, 3), True),
    # the layers of the seed CNN (test_gradients.py checks them over many more shapes)
    "Conv2D": (lambda: layers.Conv2D(2, 3, padding="same"), (1, 4, 4, 2), True),
    "MaxPooling2D": (lambda: layers.MaxPooling2D(2), (1, 4, 4, 2), True),
    "AveragePooling2D": (lambda: layers.AveragePooling2D(2), (1, 4, 4, 2), True),
    "Flatten": (lambda: layers.Flatten(), (2, 2, 3, 2), True),
    "Dropout": (lambda: layers.Dropout(0.5), (2, 5), False),  # training draws a new mask per call
    "Activation": (lambda: layers.Activation("tanh"), (2, 5), True),
}
NEW_CASES = [
    name
    for name in CASES
    if name.split()[0]
    not in ("Conv2D", "MaxPooling2D", "AveragePooling2D", "Flatten", "Dropout", "Activation")
]


def built(name: str, seed: int = 0) -> tuple[layers.Layer, np.ndarray, bool]:
    """The case's layer, built, with random gamma/beta and moving statistics; its input;
    training."""
    factory, shape, training = CASES[name]
    layer, rng = factory(), np.random.default_rng(seed)
    x = away_from_kinks(shape, seed)
    layer.build(x.shape[1:], rng)
    for value in layer.weights_dict().values():
        if value.ndim == 1:  # biases, gamma, beta, moving statistics: away from their trivial start
            value[...] = rng.uniform(0.5, 1.5, value.shape)
    return layer, x, training


# ----------------------------------------------------------- finite differences
def numerical_gradient(loss: Callable[[], float], array: np.ndarray) -> np.ndarray:
    """dL/d(array) by central differences, perturbing array in place one element at a time."""
    grad = np.zeros_like(array)
    flat, flat_grad = array.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        saved = flat[i]
        flat[i] = saved + H
        plus = loss()
        flat[i] = saved - H
        minus = loss()
        flat[i] = saved
        flat_grad[i] = (plus - minus) / (2 * H)
    return grad


def assert_close(quantity: str, ours: np.ndarray, oracle: np.ndarray, tolerance: float) -> None:
    """Largest difference relative to max(1, largest oracle value); names the quantity."""
    oracle = np.asarray(oracle)
    assert ours.shape == oracle.shape, f"{quantity}: shape {ours.shape}, oracle {oracle.shape}"
    gap = float(np.abs(ours - oracle).max(initial=0.0)) / max(
        1.0, float(np.abs(oracle).max(initial=0.0))
    )
    assert gap <= tolerance, f"{quantity}: largest difference {gap:.2e} exceeds {tolerance:.0e}"


@pytest.mark.parametrize("name", CASES)
def test_gradients_match_finite_differences(name, float64):
    layer, x, training = built(name)
    upstream = np.random.default_rng(1).standard_normal((len(x), *layer.output_shape))

    def loss() -> float:
        return float((layer.forward(x.copy(), training=training) * upstream).sum())

    assert layer.forward(x.copy(), training=training).shape == upstream.shape
    dx = layer.backward(upstream.copy())
    analytic = {key: layer.grads[key].copy() for key in layer.params}
    assert_close(f"{name} input", dx, numerical_gradient(loss, x), GRADIENT_TOLERANCE)
    for key, param in layer.params.items():
        assert_close(
            f"{name} {key}", analytic[key], numerical_gradient(loss, param), GRADIENT_TOLERANCE
        )


def keras_module():
    """Keras 3 on its torch backend (as cnnlab.reference.keras imports it), or skip."""
    pytest.importorskip("torch")
    from cnnlab.reference import keras as reference

    if not reference.keras_available():
        pytest.skip("Keras 3 is not installed")
    return reference.import_keras()


def test_every_registered_layer_has_both_twins_and_a_gradient_case():
    keras = keras_module()
    from cnnlab.engine.model import Model
    from cnnlab.reference.common import supported_layers
    from cnnlab.reference.torch import TORCH_LAYERS

    # multi-input layers (Add, Concatenate) and models used as layers have twins of their own kind
    single_input = [
        name
        for name, cls in layers.LAYER_CLASSES.items()
        if name != "InputLayer" and not cls.multi_input and not issubclass(cls, Model)
    ]
    assert {"BatchNormalization", "GlobalMaxPooling2D", "LeakyReLU", "Dense"} <= set(single_input)
    cased = {name.split()[0] for name in CASES}
    assert [name for name in single_input if name not in TORCH_LAYERS] == []
    assert [name for name in single_input if not hasattr(keras.layers, name)] == []
    assert [name for name in single_input if name not in cased] == []
    assert set(single_input) <= set(supported_layers())


# ------------------------------------------------------------------------ torch
def torch_module():
    return pytest.importorskip("torch")


def to_nchw(t):
    return t.permute(0, 3, 1, 2) if t.dim() == 4 else t


def to_nhwc(t):
    return t.permute(0, 2, 3, 1) if t.dim() == 4 else t


def torch_batch_norm(layer, x, p, training):
    """F.batch_norm (channels at dim 1) as the oracle; its running statistics are not used."""
    torch = torch_module()
    moved = x.movedim(layer.channel_axis, 1)
    mean, var = (
        torch.tensor(layer.state["moving_mean"]),
        torch.tensor(layer.state["moving_variance"]),
    )
    y = torch.nn.functional.batch_norm(
        moved,
        None if training else mean,
        None if training else var,
        p.get("gamma"),
        p.get("beta"),
        training=training,
        eps=layer.epsilon,
    )
    return y.movedim(1, layer.channel_axis)


def torch_relu(layer, x, p, training):
    torch = torch_module()
    slope, top, threshold = layer.options()
    if top is None and threshold == 0:
        return torch.nn.functional.leaky_relu(x, slope)
    clipped = x if top is None else torch.clamp(x, max=top)
    return torch.where(x > threshold, clipped, slope * (x - threshold))


def torch_dense(layer, x, p, training):
    z = x @ p["kernel"] + p["bias"]
    return z.softmax(-1) if layer.activation.name == "softmax" else z


# one lambda per layer: (engine layer, x in the engine's layout, params, training) -> output
TORCH_ORACLES: dict[str, Callable[..., Any]] = {
    "BatchNormalization": torch_batch_norm,
    "GlobalAveragePooling2D": lambda layer, x, p, t: x.mean(dim=(1, 2), keepdim=layer.keepdims),
    "GlobalMaxPooling2D": lambda layer, x, p, t: x.amax(dim=(1, 2), keepdim=layer.keepdims),
    "ZeroPadding2D": lambda layer, x, p, t: to_nhwc(
        torch_module().nn.functional.pad(to_nchw(x), (*layer.padding[1], *layer.padding[0]))
    ),
    "Reshape": lambda layer, x, p, t: x.reshape(len(x), *layer.target_shape),
    "Rescaling": lambda layer, x, p, t: x * layer.scale + layer.offset,
    "Softmax": lambda layer, x, p, t: (
        torch_module().exp(x - x.logsumexp(dim=layer.axes, keepdim=True))
        if len(layer.axes) > 1
        else x.softmax(dim=layer.axes[0])
    ),
    "ReLU": torch_relu,
    "LeakyReLU": torch_relu,
    "Dense": torch_dense,
}


@pytest.mark.torch
@pytest.mark.parametrize("name", NEW_CASES)
def test_forward_and_gradients_match_torch(name):
    torch = torch_module()
    layer, x, training = built(name, seed=2)
    x = (x * 3).astype(np.float32)
    for key, value in layer.weights_dict().items():
        layer.weights_dict()[key][...] = value.astype(np.float32)
    upstream = (
        np.random.default_rng(3).standard_normal((len(x), *layer.output_shape)).astype(np.float32)
    )
    tx = torch.tensor(x, requires_grad=True)
    tp = {key: torch.tensor(value, requires_grad=True) for key, value in layer.params.items()}
    ty = TORCH_ORACLES[type(layer).__name__](
        layer, tx, tp, training
    )  # before forward moves the statistics
    ty.backward(torch.tensor(upstream))
    y = layer.forward(x.copy(), training=training)
    dx = layer.backward(upstream.copy())
    assert_close(f"{name} output", y, ty.detach().numpy(), FORWARD_TOLERANCE)
    assert_close(f"{name} input gradient", dx, tx.grad.numpy(), BACKWARD_TOLERANCE)
    for key in layer.params:
        assert_close(
            f"{name} {key} gradient", layer.grads[key], tp[key].grad.numpy(), BACKWARD_TOLERANCE
        )


@pytest.mark.torch
@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 3, 2)])
def test_batch_normalization_moving_statistics_follow_keras_momentum(shape):
    """Five training steps: moving = moving * 0.99 + batch * 0.01 with the biased batch variance
    (torch's running_var would use the unbiased one and momentum 0.01)."""
    torch = torch_module()
    layer = layers.BatchNormalization()
    layer.build(shape[1:], np.random.default_rng(0))
    rng = np.random.default_rng(4)
    mean, var = (
        torch.zeros(shape[-1], dtype=torch.float64),
        torch.ones(shape[-1], dtype=torch.float64),
    )
    for _ in range(5):
        x = (rng.standard_normal(shape) * 3 + 2).astype(np.float32)
        layer.forward(x, training=True)
        flat = torch.tensor(x, dtype=torch.float64).reshape(-1, shape[-1])
        mean = mean * 0.99 + flat.mean(0) * 0.01
        var = var * 0.99 + flat.var(0, correction=0) * 0.01
    assert_close("moving_mean", layer.state["moving_mean"], mean.numpy(), FORWARD_TOLERANCE)
    assert_close("moving_variance", layer.state["moving_variance"], var.numpy(), FORWARD_TOLERANCE)
    before = layer.state["moving_mean"].copy()
    layer.forward(x, training=False)
    assert np.array_equal(layer.state["moving_mean"], before)  # inference leaves them alone


# ------------------------------------------------------------------------ Keras
def reference_keras():
    keras_module()
    from cnnlab.reference import keras as reference

    return reference


def keras_twin_of(layer: layers.Layer):
    reference = reference_keras()
    twin = reference.keras_layer(type(layer).__name__, layer.get_config(), "float32")
    twin.build((None, *layer.input_shape))
    twin.set_weights(list(layer.weights_dict().values()))
    return twin


@pytest.mark.torch
@pytest.mark.parametrize("name", NEW_CASES)
def test_forward_and_input_gradient_match_keras(name):
    import torch

    layer, x, training = built(name, seed=5)
    x = (x * 3).astype(np.float32)
    for key, value in layer.weights_dict().items():
        layer.weights_dict()[key][...] = value.astype(np.float32)
    twin = keras_twin_of(layer)
    upstream = (
        np.random.default_rng(6).standard_normal((len(x), *layer.output_shape)).astype(np.float32)
    )
    tx = torch.tensor(x, requires_grad=True)
    ty = twin(tx, training=training)
    ty.backward(torch.tensor(upstream))
    y = layer.forward(x.copy(), training=training)
    assert_close(f"{name} output", y, ty.detach().numpy(), FORWARD_TOLERANCE)
    assert_close(
        f"{name} input gradient",
        layer.backward(upstream.copy()),
        tx.grad.numpy(),
        BACKWARD_TOLERANCE,
    )
    with reference_keras().quiet_keras():
        after = twin.get_weights()
    for key, value in zip(
        layer.weights_dict(), after, strict=True
    ):  # BatchNormalization's moving statistics
        assert_close(
            f"{name} {key} after the step", layer.weights_dict()[key], value, FORWARD_TOLERANCE
        )


# ------------------------------------------------------------ inside a Sequential
def batch_norm_cnn() -> Sequential:
    return Sequential(
        [
            Input(shape=(8, 8, 1)),
            layers.Rescaling(1 / 4, offset=-0.5),
            layers.ZeroPadding2D(1),
            layers.Conv2D(4, 3),
            layers.BatchNormalization(),
            layers.ReLU(),
            layers.MaxPooling2D(2),
            layers.Conv2D(4, 3, padding="same"),
            layers.LeakyReLU(0.1),
            layers.GlobalAveragePooling2D(keepdims=True),
            layers.Reshape((4,)),
            layers.Dense(6),
            layers.BatchNormalization(),
            layers.Dense(3),
            layers.Softmax(),
        ],
        seed=3,
    )


def dense_on_images() -> Sequential:
    return Sequential(
        [
            Input(shape=(4, 4, 3)),
            layers.Dense(5),
            layers.BatchNormalization(momentum=0.9),
            layers.ReLU(max_value=1.5),
            layers.GlobalMaxPooling2D(),
            layers.Dense(3, activation="softmax"),
        ],
        seed=4,
    )


def softmax_inside() -> Sequential:
    return Sequential(
        [
            Input(shape=(6,)),
            layers.Reshape((2, 3)),
            layers.Softmax(axis=1),
            layers.Flatten(),
            layers.BatchNormalization(center=False),
            layers.Dense(3, activation="softmax"),
        ],
        seed=5,
    )


def conv_norm_pool() -> Sequential:
    """The conv-BN-relu-pool block of many tutorials, then a conv-pool pair whose pool leaves the
    last row and column out: Sequential runs them as fused.ConvNormThenPool and ConvThenPool."""
    return Sequential(
        [
            Input(shape=(8, 8, 2)),
            layers.Conv2D(4, 3, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(5, 2, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ],
        seed=6,
    )


MODELS = [batch_norm_cnn, dense_on_images, softmax_inside, conv_norm_pool]


def test_the_conv_norm_pool_model_runs_fused_steps():
    steps = [type(step).__name__ for step in conv_norm_pool().steps]
    assert steps[:2] == ["ConvNormThenPool", "ConvThenPool"]


def batches(
    model: Sequential, seed: int = 0, count: int = 3, size: int = 8
) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        x = rng.uniform(0, 4, (size, *model.input_shape)).astype(np.float32)
        out.append((x, np.eye(3, dtype=np.float32)[rng.integers(0, 3, size)]))
    return out


BATCH_NORM_CNN_KERAS = [  # (output shape, parameter count) of each layer, as Keras has them
    ((8, 8, 1), 0),
    ((10, 10, 1), 0),
    ((8, 8, 4), 40),
    ((8, 8, 4), 16),
    ((8, 8, 4), 0),
    ((4, 4, 4), 0),
    ((4, 4, 4), 148),
    ((4, 4, 4), 0),
    ((1, 1, 4), 0),
    ((4,), 0),
    ((6,), 30),
    ((6,), 24),
    ((3,), 21),
    ((3,), 0),
]


def test_shapes_and_parameter_counts_are_keras_ones():
    layers.clear_session()
    model = batch_norm_cnn()
    shapes = [layer.output_shape for layer in model.layers]
    assert shapes == [shape for shape, _ in BATCH_NORM_CNN_KERAS]
    assert [layer.count_params() for layer in model.layers] == [
        count for _, count in BATCH_NORM_CNN_KERAS
    ]
    assert [layer.count_trainable_params() for layer in model.layers][
        3
    ] == 8  # gamma, beta; not the moving statistics
    assert [layer.name for layer in model.layers][4:9] == [
        "re_lu",
        "max_pooling2d",
        "conv2d_1",
        "leaky_re_lu",
        "global_average_pooling2d",
    ]
    images = dense_on_images()
    assert (
        images.layers[0].output_shape == (4, 4, 5) and images.layers[0].count_params() == 3 * 5 + 5
    )


@pytest.mark.parametrize("make", MODELS)
def test_config_round_trip_keeps_every_argument(make):
    model = make()
    copy = Sequential.from_config(model.get_config())
    assert copy.get_config() == model.get_config()
    keys = [list(layer.weights_dict()) for layer in model.layers]
    assert [list(layer.weights_dict()) for layer in copy.layers] == keys


@pytest.mark.torch
@pytest.mark.parametrize("make", MODELS)
def test_sequential_matches_its_torch_twin_in_training_and_after_steps(make):
    pytest.importorskip("torch")
    from cnnlab.reference import torch as reference

    model = make()
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy")
    x = np.concatenate([b[0] for b in batches(model)])
    y = np.concatenate([b[1] for b in batches(model)])
    rows = reference.parity_report(model, x, y, steps=6, batch_size=8)
    assert {row["quantity"] for row in rows} == {"forward", "loss", "gradient", "weights"}
    assert any(row["param"] == "moving_variance" for row in rows)
    limits = {
        "forward": FORWARD_TOLERANCE,
        "loss": FORWARD_TOLERANCE,
        "gradient": BACKWARD_TOLERANCE,
        "weights": BACKWARD_TOLERANCE,
    }
    # relative to max(1, largest torch value), as everywhere here: the bias before a
    # BatchNormalization has a zero gradient in exact arithmetic, so both engines return round-off
    # there
    worst = [row for row in rows if min(row["max_rel"], row["max_abs"]) > limits[row["quantity"]]]
    assert worst == [], reference.format_parity(worst)


@pytest.mark.torch
def test_torch_twin_in_eval_mode_uses_the_moving_statistics_and_weights_copy_both_ways():
    pytest.importorskip("torch")
    from cnnlab.reference import torch as reference

    model = batch_norm_cnn()
    for layer in model.layers:
        for value in layer.state.values():
            value[...] = np.random.default_rng(7).uniform(0.5, 1.5, value.shape)
    twin = reference.build_torch_twin(model).eval()
    x = batches(model)[0][0]
    import torch

    assert_close(
        "predict",
        model.predict(x, verbose=0),
        twin(torch.tensor(x)).detach().numpy(),
        FORWARD_TOLERANCE,
    )
    other = Sequential.from_config(model.get_config(), seed=9)
    reference.copy_weights_from_torch(twin, other)
    for ours, theirs in zip(model.layers, other.layers):
        for key, value in ours.weights_dict().items():
            assert np.array_equal(theirs.weights_dict()[key], value), f"{ours.name}/{key}"


@pytest.mark.torch
@pytest.mark.parametrize("make", MODELS)
def test_sequential_matches_its_keras_twin_in_inference_and_after_sgd_steps(make):
    keras_module()
    from cnnlab.reference import keras as reference

    model = make()
    model.compile(optimizer=optimizers.SGD(learning_rate=0.1), loss="categorical_crossentropy")
    twin = reference.build_keras_twin(model)
    twin.compile(
        optimizer=reference.make_keras_optimizer({"name": "sgd", "learning_rate": 0.1}),
        loss="categorical_crossentropy",
        jit_compile=False,
    )
    data = batches(model, seed=1, count=4)
    with reference.quiet_keras():
        assert_close(
            "predict",
            model.predict(data[0][0], verbose=0),
            twin.predict(data[0][0], verbose=0),
            FORWARD_TOLERANCE,
        )
        for x, y in data:
            model.train_step(x, y)
            twin.train_on_batch(x, y)
    names = [f"{layer.name}/{key}" for layer in model.layers for key in layer.weights_dict()]
    with reference.quiet_keras():
        after = twin.get_weights()
    for name, ours, theirs in zip(names, reference.engine_weight_list(model), after, strict=True):
        assert_close(f"{name} after 4 steps", ours, theirs, BACKWARD_TOLERANCE)


# ---------------------------------------------------------- arguments and errors
def test_leaky_relu_accepts_keras_2_alpha_with_keras_warning():
    with pytest.warns(UserWarning, match="`alpha` is deprecated"):
        layer = layers.LeakyReLU(alpha=0.2)
    assert layer.negative_slope == 0.2 and layer.get_config()["negative_slope"] == 0.2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        layers.LeakyReLU()


def test_zero_padding_accepts_keras_forms():
    assert layers.ZeroPadding2D().padding == ((1, 1), (1, 1))
    assert layers.ZeroPadding2D(2).padding == ((2, 2), (2, 2))
    assert layers.ZeroPadding2D((1, 3)).padding == ((1, 1), (3, 3))
    assert layers.ZeroPadding2D(((0, 1), [2, 3])).padding == ((0, 1), (2, 3))


@pytest.mark.parametrize(
    "make, error, message",
    [
        (
            lambda: layers.ZeroPadding2D((1, 2, 3)),
            ValueError,
            r"ZeroPadding2D 'zero_padding2d.*': padding must be",
        ),
        (lambda: layers.ZeroPadding2D(-1), ValueError, "non-negative ints, received -1"),
        (
            lambda: layers.Reshape((2, -1, -1)),
            ValueError,
            r"at most one -1, received \(2, -1, -1\)",
        ),
        (
            lambda: layers.ReLU(max_value=-1),
            ValueError,
            "max_value cannot be None or negative, received -1",
        ),
        (
            lambda: layers.LeakyReLU(negative_slope=-0.1),
            ValueError,
            "negative_slope cannot be None or negative",
        ),
        (
            lambda: layers.Rescaling([1.0, 2.0]),
            UnsupportedKerasFeature,
            "per-channel scale .* not supported",
        ),
        (lambda: layers.Rescaling("x"), ValueError, "scale must be a number, received 'x'"),
        (lambda: layers.BatchNormalization(momentum=2), ValueError, "momentum must be in"),
        (
            lambda: layers.BatchNormalization(renorm=True),
            UnsupportedKerasFeature,
            "renorm=True is not supported",
        ),
        (
            lambda: layers.GlobalAveragePooling2D(data_format="channels_first"),
            UnsupportedKerasFeature,
            "channels_first",
        ),
        (lambda: layers.Softmax(axis="last"), ValueError, "axis must be an int or a tuple of ints"),
    ],
)
def test_bad_arguments_are_refused_with_the_layer_named(make, error, message):
    with pytest.raises(error, match=message):
        make()


@pytest.mark.parametrize(
    "stack, message",
    [
        (
            [Input(shape=(7,)), layers.Reshape((2, 3), name="r")],
            r"Reshape 'r': cannot reshape an input of shape \(7,\)",
        ),
        (
            [Input(shape=(7,)), layers.Reshape((2, -1), name="r")],
            r"\(7 values\) to target_shape \(2, -1\)",
        ),
        (
            [Input(shape=(4,)), layers.BatchNormalization(axis=2, name="bn")],
            r"BatchNormalization 'bn': axis 2 is out of",
        ),
        (
            [Input(shape=(4,)), layers.Softmax(axis=0, name="s")],
            r"Softmax 's': axis 0 is out of bounds",
        ),
        (
            [Input(shape=(4,)), layers.GlobalMaxPooling2D(name="g")],
            r"GlobalMaxPooling2D 'g': expected an image",
        ),
        (
            [Input(shape=(4,)), layers.ZeroPadding2D(name="z")],
            r"ZeroPadding2D 'z': expected an image",
        ),
    ],
)
def test_shapes_that_cannot_fit_fail_at_build_time(stack, message):
    with pytest.raises(ValueError, match=message):
        Sequential(stack)


def textbook_batch_norm(x, dy, gamma, beta, axis, epsilon):
    """The batch-statistics forward and backward written straight from the equations (float64)."""
    reduce = tuple(a for a in range(x.ndim) if a != axis % x.ndim)
    shape = [1] * x.ndim
    shape[axis] = -1
    mean, var = x.mean(axis=reduce, keepdims=True), x.var(axis=reduce, keepdims=True)
    x_hat = (x - mean) / np.sqrt(var + epsilon)
    y = x_hat * gamma.reshape(shape) + beta.reshape(shape)
    m = x.size / x.shape[axis]
    dx_hat = dy * gamma.reshape(shape)
    dx = (
        m * dx_hat
        - dx_hat.sum(reduce, keepdims=True)
        - x_hat * (dx_hat * x_hat).sum(reduce, keepdims=True)
    ) / (m * np.sqrt(var + epsilon))
    return y, dx, (dy * x_hat).sum(reduce), dy.sum(reduce), mean.reshape(-1), var.reshape(-1)


@pytest.mark.parametrize("axis, shape", [(-1, (7, 3, 3, 4)), (1, (7, 4, 3, 3)), (-1, (7, 5))])
@pytest.mark.parametrize("samples_per_block", [1, 2, 7])
@pytest.mark.parametrize("transposed", [False, True])
def test_batch_normalization_in_blocks_is_the_textbook_formula(
    monkeypatch, float64, axis, shape, samples_per_block, transposed
):
    """BatchNormalization runs its passes over blocks of samples (functional.BLOCK_BYTES):
    with blocks of one, two and all seven samples, ragged last blocks and an input that is not
    contiguous, outputs, gradients and moving statistics are the equations' own."""
    from cnnlab.engine import functional

    rng = np.random.default_rng(4)
    x = rng.standard_normal(shape) * 3 + 1.5
    if transposed:  # the same values, as a view with other strides
        x = np.ascontiguousarray(np.swapaxes(x, 0, -1)).swapaxes(0, -1)
    dy = rng.standard_normal(shape)
    monkeypatch.setattr(functional, "BLOCK_BYTES", samples_per_block * x[0].nbytes)
    layer = layers.BatchNormalization(axis=axis, momentum=0.5)
    layer.build(shape[1:], rng)
    gamma, beta = rng.standard_normal(shape[axis]), rng.standard_normal(shape[axis])
    layer.params["gamma"][...], layer.params["beta"][...] = gamma, beta
    y = layer.forward(x, training=True).copy()
    dx = layer.backward(dy.copy())
    want_y, want_dx, dgamma, dbeta, mean, var = textbook_batch_norm(x, dy, gamma, beta, axis, 1e-3)
    np.testing.assert_allclose(y, want_y, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dx, want_dx, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(layer.grads["gamma"], dgamma, rtol=1e-10)
    np.testing.assert_allclose(layer.grads["beta"], dbeta, rtol=1e-10)
    np.testing.assert_allclose(layer.state["moving_mean"], 0.5 * mean, rtol=1e-10)
    np.testing.assert_allclose(layer.state["moving_variance"], 0.5 + 0.5 * var, rtol=1e-10)
    inference = layer.forward(x, training=False)  # the moving statistics; backward: gain * dy
    np.testing.assert_allclose(
        layer.backward(dy.copy()),
        dy
        * (gamma / np.sqrt(layer.state["moving_variance"] + 1e-3)).reshape(
            [-1 if a == axis % len(shape) else 1 for a in range(len(shape))]
        ),
        rtol=1e-10,
    )
    assert inference.shape == shape
