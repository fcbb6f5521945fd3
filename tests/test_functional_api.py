"""The functional API: graphs of layers (residual Add, branches joined by Concatenate, several
inputs, nested models), checked by central differences (float64), against Sequential, and
through files; Keras's errors for graphs cnnlab cannot run."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.engine import layers
from cnnlab.engine.config import set_floatx
from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.engine.graph import EagerArray, Functional
from cnnlab.engine.layers import clear_session
from cnnlab.engine.model import Model, load_model
from cnnlab.engine.sequential import Sequential

H = 1e-6


@pytest.fixture(autouse=True)
def fresh_names():
    clear_session()
    yield


@pytest.fixture
def float64():
    set_floatx("float64")
    yield
    set_floatx("float32")


def residual_model(seed: int = 0, head: str = "softmax") -> Model:
    inputs = layers.Input(shape=(6, 6, 2))
    x = layers.Conv2D(3, 3, padding="same", activation="tanh")(inputs)
    y = layers.Conv2D(3, 3, padding="same", activation="relu")(x)
    y = layers.Conv2D(3, 1, activation="tanh")(y)
    x = layers.Add()([x, y])  # x is read twice: its gradient is the sum of two paths
    x = layers.MaxPooling2D(2)(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(4, activation=head)(x)
    return Model(inputs, outputs, seed=seed)


def branches_model(seed: int = 0) -> Model:
    inputs = layers.Input(shape=(5, 5, 1))
    left = layers.Conv2D(2, 3, activation="sigmoid")(inputs)
    right = layers.Conv2D(3, 3, activation="tanh")(inputs)
    x = layers.Concatenate()([left, right])
    x = layers.Conv2D(2, 2, activation="relu")(x)
    x = layers.Flatten()(x)
    return Model(inputs=inputs, outputs=layers.Dense(3, activation="softmax")(x), seed=seed)


def numerical_gradient(loss, array: np.ndarray) -> np.ndarray:
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


def check_model_gradients(model: Model, x, y: np.ndarray) -> None:
    """Every weight's gradient from the model's backward against central differences of its loss."""
    model.compile(optimizer="sgd", loss="categorical_crossentropy")

    def loss() -> float:
        return model.loss(y, model.forward(x, training=False))

    model.backward_from_loss(y, model.forward(x, training=False))
    analytic = {key: value.copy() for key, value in model.grads.items()}
    assert sorted(analytic) == sorted(model.params)
    for key, param in model.params.items():
        numeric = numerical_gradient(loss, param)
        error = np.abs(analytic[key] - numeric).max() / max(1.0, np.abs(numeric).max())
        assert error < 1e-6, f"{key}: largest relative difference {error:.2e}"


def data(
    shape: tuple[int, ...], classes: int, n: int = 4, seed: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, *shape)), np.eye(classes)[rng.integers(0, classes, n)]


@pytest.mark.usefixtures("float64")
@pytest.mark.parametrize("build", [residual_model, branches_model])
def test_graph_gradients_match_finite_differences(build):
    model = build()
    check_model_gradients(model, *data(model.input_shape, 4 if build is residual_model else 3))


@pytest.mark.usefixtures("float64")
def test_two_inputs_and_their_gradients():
    image, extra = layers.Input(shape=(4, 4, 1)), layers.Input(shape=(3,))
    x = layers.Flatten()(layers.Conv2D(2, 3, activation="tanh")(image))
    x = layers.Concatenate()([x, layers.Dense(2, activation="tanh")(extra)])
    model = Model([image, extra], layers.Dense(2, activation="softmax")(x), seed=0)
    (xa, y), (xb, _) = data((4, 4, 1), 2), data((3,), 2, seed=2)
    check_model_gradients(model, [xa, xb], y)
    assert model.predict([xa, xb], verbose=0).shape == (4, 2)
    with pytest.raises(ValueError, match="the model has 2 inputs; pass a list of 2 arrays"):
        model.predict(xa, verbose=0)


@pytest.mark.usefixtures("float64")
def test_input_gradient_of_a_graph_matches_finite_differences():
    model = residual_model(head="softmax")
    x, _ = data((6, 6, 2), 4, n=2)
    saliency = model.input_gradient(x, class_index=1)

    def logit() -> float:  # the score is the output layer's value before its softmax
        trace: list = []
        model.forward(x, trace=trace)
        flatten = dict(trace)["flatten"]
        dense = model.get_layer("dense")
        return float((flatten @ dense.params["kernel"] + dense.params["bias"])[:, 1].sum())

    numeric = numerical_gradient(logit, x)
    assert np.abs(saliency - numeric).max() < 1e-6


@pytest.mark.usefixtures("float64")
def test_nested_sequential_inside_a_functional_model():
    features = Sequential(
        [layers.Conv2D(2, 3, activation="tanh"), layers.Flatten()], name="features"
    )
    inputs = layers.Input(shape=(5, 5, 1))
    model = Model(inputs, layers.Dense(3, activation="softmax")(features(inputs)), seed=0)
    assert features.output_shape == (18,)
    assert [key for key in model.params] == [
        "features/conv2d/kernel",
        "features/conv2d/bias",
        "dense/kernel",
        "dense/bias",
    ]
    check_model_gradients(model, *data((5, 5, 1), 3))


def test_a_frozen_nested_model_is_not_trained_and_counted_non_trainable():
    base = Sequential(
        [layers.Input(shape=(5, 5, 1)), layers.Conv2D(2, 3, activation="relu"), layers.Flatten()],
        name="base",
        seed=1,
    )
    base.trainable = False
    model = Sequential([base, layers.Dense(3, activation="softmax")], seed=0)
    model.compile(optimizer="adam", loss="categorical_crossentropy")
    frozen = [w.copy() for w in base.get_weights()]
    x, y = data((5, 5, 1), 3, n=16)
    model.fit(x.astype("float32"), y, epochs=2, batch_size=4, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(frozen, base.get_weights()))
    assert model.count_params() == 20 + 57 and model.count_trainable_params() == 57
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert " Non-trainable params: 20 (80.00 B)" in lines


def test_a_chain_graph_computes_what_the_sequential_model_computes():
    sequential = Sequential(
        [
            layers.Input(shape=(6, 6, 1)),
            layers.Conv2D(3, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(2, activation="softmax"),
        ],
        seed=0,
    )
    inputs = layers.Input(shape=(6, 6, 1))
    x = inputs
    for kind in (
        layers.Conv2D(3, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Flatten(),
        layers.Dense(2, activation="softmax"),
    ):
        x = kind(x)
    graph = Model(inputs, x, seed=5)
    graph.set_weights(sequential.get_weights())
    for model in (sequential, graph):
        model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x_data, y_data = data((6, 6, 1), 2, n=32)
    x_data = x_data.astype("float32")
    history = [
        m.fit(x_data, y_data, epochs=2, batch_size=8, shuffle=False, verbose=0).history
        for m in (sequential, graph)
    ]
    assert history[0] == history[1]
    np.testing.assert_array_equal(
        sequential.predict(x_data, verbose=0), graph.predict(x_data, verbose=0)
    )


def test_save_and_load_a_graph_model(tmp_path):
    model = residual_model()
    model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
    x, y = data((6, 6, 2), 4, n=16)
    model.fit(x.astype("float32"), y, epochs=1, batch_size=8, verbose=0)
    model.save(tmp_path / "residual.cnnlab")
    clear_session()
    loaded = load_model(tmp_path / "residual.cnnlab")
    assert isinstance(loaded, Functional)
    assert [layer.name for layer in loaded.layers] == [layer.name for layer in model.layers]
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), model.predict(x, verbose=0))
    assert loaded.evaluate(x, y, verbose=0) == model.evaluate(x, y, verbose=0)


def test_a_feature_map_model_from_a_sequential_models_layer_outputs():
    model = Sequential(
        [
            layers.Input(shape=(8, 8, 1)),
            layers.Conv2D(2, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Flatten(),
            layers.Dense(2, activation="softmax"),
        ],
        seed=0,
    )
    maps = Model(inputs=model.input, outputs=[layer.output for layer in model.layers[:2]])
    x, _ = data((8, 8, 1), 2, n=3)
    outputs = maps.predict(x, verbose=0)
    assert [o.shape for o in outputs] == [(3, 6, 6, 2), (3, 3, 3, 2)]
    expected = dict(model.feature_maps(x))
    np.testing.assert_array_equal(outputs[1], expected["max_pooling2d"])
    with pytest.raises(UnsupportedKerasFeature, match="several outputs"):
        maps.compile(optimizer="adam", loss="mse")


def test_calling_a_model_or_a_layer_on_arrays_gives_arrays_that_answer_numpy():
    model = branches_model()
    x, _ = data((5, 5, 1), 3, n=2)
    out = model(x.astype("float32"))
    assert isinstance(out, EagerArray) and out.numpy().shape == (2, 3)
    np.testing.assert_allclose(out.numpy(), model.predict(x, verbose=0), rtol=1e-6)
    dense = layers.Dense(4)
    assert dense(np.ones((2, 3), "float32")).numpy().shape == (2, 4)


def test_graph_errors_name_the_problem():
    a, b = layers.Input(shape=(3,)), layers.Input(shape=(4,))
    with pytest.raises(
        ValueError, match=r"inputs must have the same shape, received \[\(3,\), \(4,\)\]"
    ):
        layers.Add()([a, b])
    out = layers.Dense(2)(layers.Concatenate()([a, b]))
    with pytest.raises(ValueError, match="disconnected"):
        Model(a, out)
    shared = layers.Dense(2)
    shared(a)
    with pytest.raises(UnsupportedKerasFeature, match="shared layers"):
        shared(b)

    class Subclassed(Model):
        def call(self, x):
            return x

    with pytest.raises(UnsupportedKerasFeature, match="subclassed models"):
        Subclassed()


# --------------------------------------------------------------- PyTorch as the oracle
MERGE_CASES = [  # (layer, input shapes without the batch axis)
    (lambda: layers.Add(), [(4, 4, 3), (4, 4, 3)]),
    (lambda: layers.Add(), [(5,), (5,), (5,)]),
    (lambda: layers.Concatenate(), [(4, 4, 2), (4, 4, 3)]),
    (lambda: layers.Concatenate(axis=1), [(2, 3, 2), (4, 3, 2)]),
    (lambda: layers.Concatenate(axis=-2), [(2, 3), (4, 3), (1, 3)]),
]


@pytest.mark.torch
@pytest.mark.parametrize("make, shapes", MERGE_CASES)
def test_merge_layers_match_pytorch_forward_and_backward(make, shapes):
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(3)
    xs = [rng.standard_normal((2, *shape)).astype(np.float32) for shape in shapes]
    layer = make()
    layer.build([x.shape[1:] for x in xs])
    out = layer.forward(xs)
    upstream = rng.standard_normal(out.shape).astype(np.float32)
    grads = layer.backward(upstream.copy())
    tensors = [torch.tensor(x, requires_grad=True) for x in xs]
    if isinstance(layer, layers.Add):
        expected = sum(tensors[1:], tensors[0])
    else:
        expected = torch.cat(tensors, dim=layer.axis)
    (expected * torch.tensor(upstream)).sum().backward()
    np.testing.assert_allclose(out, expected.detach().numpy(), rtol=1e-5, atol=1e-6)
    for ours, tensor in zip(grads, tensors):
        np.testing.assert_allclose(ours, tensor.grad.numpy(), rtol=1e-5, atol=1e-6)
    assert len({id(g) for g in grads}) == len(grads)  # each input's gradient is an array of its own


@pytest.mark.torch
def test_a_residual_graph_matches_the_same_graph_in_pytorch():
    """The functional model's forward, loss and every weight gradient against the same
    computation written in PyTorch (float32)."""
    torch = pytest.importorskip("torch")
    import torch.nn.functional as F

    model = residual_model(head="softmax")
    model.compile(optimizer="sgd", loss="categorical_crossentropy")
    x, y = data((6, 6, 2), 4, n=8)
    x, y = x.astype(np.float32), y.astype(np.float32)
    y_pred = model.forward(x)
    model.backward_from_loss(y, y_pred)
    w = {key: torch.tensor(value, requires_grad=True) for key, value in model.params.items()}

    def conv(h, name, padding):  # NCHW, Keras kernel (kh, kw, in, out)
        kernel = w[f"{name}/kernel"].permute(3, 2, 0, 1)
        return F.conv2d(h, kernel, w[f"{name}/bias"], padding=padding)

    h = torch.tensor(x).permute(0, 3, 1, 2)
    a = torch.tanh(conv(h, "conv2d", "same"))
    b = torch.tanh(conv(torch.relu(conv(a, "conv2d_1", "same")), "conv2d_2", "valid"))
    z = F.max_pool2d(a + b, 2).permute(0, 2, 3, 1).reshape(len(x), -1)
    logits = z @ w["dense/kernel"] + w["dense/bias"]
    loss = -(torch.tensor(y) * torch.log_softmax(logits, dim=-1)).sum(dim=-1).mean()
    loss.backward()
    np.testing.assert_allclose(
        y_pred, torch.softmax(logits, -1).detach().numpy(), rtol=1e-5, atol=1e-6
    )
    for key, grad in model.grads.items():
        np.testing.assert_allclose(grad, w[key].grad.numpy(), rtol=1e-4, atol=1e-6, err_msg=key)
