"""Losses, metrics and optimizers as Keras programs give them to compile().

Losses: every value and gradient by central differences (float64), ``from_logits`` against
PyTorch's autograd, and every value against Keras 3 itself. Metrics: each against Keras 3's
own metric on the same batches (Keras's log name included). Optimizers: each against Keras 3's
optimizer and against the PyTorch twin over the same gradients. Keras is asked through
``cnnlab.reference.keras`` (torch backend); those tests are marked ``torch``.
"""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from cnnlab.engine import losses, metrics, optimizers
from cnnlab.engine.errors import UnsupportedKerasFeature

HAS_KERAS = (
    importlib.util.find_spec("keras") is not None and importlib.util.find_spec("torch") is not None
)
KERAS_MARKS = [
    pytest.mark.torch,
    pytest.mark.skipif(not HAS_KERAS, reason="needs Keras 3 and PyTorch"),
    pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword"),
]


def needs_keras(test: Callable[..., None]) -> Callable[..., None]:
    """Marks a test that asks Keras 3 itself (torch backend)."""
    for mark in KERAS_MARKS:
        test = mark(test)
    return test


def keras_module() -> Any:
    from cnnlab.reference.keras import import_keras

    return import_keras()


def numerical_gradient(f: Callable[[], float], x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    """Central differences of f() with respect to x, changed in place (float64)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        saved = x[i]
        x[i] = saved + h
        plus = f()
        x[i] = saved - h
        minus = f()
        x[i] = saved
        grad[i] = (plus - minus) / (2 * h)
    return grad


def softmax(z: np.ndarray) -> np.ndarray:
    return np.exp(losses.log_softmax(z))


# ------------------------------------------------------------------- losses
rng0 = np.random.default_rng(0)
LABELS = rng0.integers(0, 4, 6)
ONE_HOT = np.eye(4)[LABELS]
BINARY = rng0.integers(0, 2, (6, 4)).astype(float)
REGRESSION = rng0.standard_normal((6, 4))

# (id, loss, y_true, output maker from z: probabilities, logits or raw values)
LOSS_CASES = [
    ("cce", losses.CategoricalCrossentropy(), ONE_HOT, softmax),
    ("cce-logits", losses.CategoricalCrossentropy(from_logits=True), ONE_HOT, lambda z: z),
    (
        "cce-logits-smoothing",
        losses.CategoricalCrossentropy(from_logits=True, label_smoothing=0.1),
        ONE_HOT,
        lambda z: z,
    ),
    ("cce-smoothing", losses.CategoricalCrossentropy(label_smoothing=0.2), ONE_HOT, softmax),
    ("scce", losses.SparseCategoricalCrossentropy(), LABELS, softmax),
    ("scce-logits", losses.SparseCategoricalCrossentropy(from_logits=True), LABELS, lambda z: z),
    ("bce", losses.BinaryCrossentropy(), BINARY, losses.sigmoid),
    ("bce-logits", losses.BinaryCrossentropy(from_logits=True), BINARY, lambda z: z),
    (
        "bce-logits-smoothing",
        losses.BinaryCrossentropy(from_logits=True, label_smoothing=0.1),
        BINARY,
        lambda z: z,
    ),
    ("mse", losses.MeanSquaredError(), REGRESSION, lambda z: z),
    ("mae", losses.MeanAbsoluteError(), REGRESSION, lambda z: z),
    ("huber", losses.Huber(delta=0.7), REGRESSION, lambda z: z),
]


@pytest.mark.parametrize("case", LOSS_CASES, ids=[c[0] for c in LOSS_CASES])
def test_loss_gradient_equals_central_differences(case):
    _, loss, y_true, output = case
    y_pred = output(np.random.default_rng(1).standard_normal((6, 4)) * 2)
    numeric = numerical_gradient(lambda: loss(y_true, y_pred), y_pred)
    np.testing.assert_allclose(loss.gradient(y_true, y_pred), numeric, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize(
    "case",
    [c for c in LOSS_CASES if c[1].fused_activation],
    ids=[c[0] for c in LOSS_CASES if c[1].fused_activation],
)
def test_fused_gradient_with_label_smoothing_equals_central_differences(case):
    """(p - y') / count with the smoothed targets y' (softmax and sigmoid outputs)."""
    _, loss, y_true, output = case
    z = np.random.default_rng(2).standard_normal((6, 4))
    numeric = numerical_gradient(lambda: loss(y_true, output(z)), z)
    np.testing.assert_allclose(
        loss.gradient_before_activation(y_true, output(z)), numeric, rtol=1e-5, atol=1e-8
    )


def test_from_logits_loss_has_no_fused_activation_and_is_stable_for_huge_logits():
    loss = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert (
        loss.fused_activation is None
        and losses.SparseCategoricalCrossentropy().fused_activation == "softmax"
    )
    z = np.array([[1000.0, 0.0, -1000.0]])
    assert loss(np.array([1]), z) == pytest.approx(1000.0)
    np.testing.assert_allclose(loss.gradient(np.array([1]), z), [[1.0, -1.0, 0.0]])
    assert losses.BinaryCrossentropy(from_logits=True)(
        np.array([[0.0]]), np.array([[800.0]])
    ) == pytest.approx(800.0)


@pytest.mark.torch
@pytest.mark.parametrize(
    "name", ["categorical_crossentropy", "sparse_categorical_crossentropy", "binary_crossentropy"]
)
def test_from_logits_value_and_gradient_match_torch_and_the_torch_twin(name):
    torch = pytest.importorskip("torch")
    from cnnlab.reference.torch import KerasLoss

    rng = np.random.default_rng(3)
    z = (rng.standard_normal((16, 5)) * 4).astype(np.float32)
    labels = rng.integers(0, 5, 16)
    y = {
        "categorical_crossentropy": np.eye(5, dtype=np.float32)[labels],
        "sparse_categorical_crossentropy": labels,
        "binary_crossentropy": rng.integers(0, 2, (16, 5)).astype(np.float32),
    }[name]
    functional = {
        "binary_crossentropy": torch.nn.functional.binary_cross_entropy_with_logits,
        "sparse_categorical_crossentropy": torch.nn.functional.cross_entropy,
        "categorical_crossentropy": torch.nn.functional.cross_entropy,
    }[name]
    engine = losses.get({"name": name, "from_logits": True})
    for loss_fn in (
        functional,
        lambda tz, ty: KerasLoss({"name": name, "from_logits": True})(tz, tz, ty),
    ):
        tz = torch.tensor(z, requires_grad=True)
        value = loss_fn(tz, torch.tensor(y))
        value.backward()
        assert engine(y, z) == pytest.approx(value.item(), rel=1e-6)
        np.testing.assert_allclose(engine.gradient(y, z), tz.grad.numpy(), rtol=1e-5, atol=1e-8)


KERAS_LOSSES = [  # (engine identifier, Keras class, its arguments, y_true, output maker)
    ("categorical_crossentropy", "CategoricalCrossentropy", {}, ONE_HOT, softmax),
    (
        {"name": "categorical_crossentropy", "from_logits": True, "label_smoothing": 0.1},
        "CategoricalCrossentropy",
        {"from_logits": True, "label_smoothing": 0.1},
        ONE_HOT,
        lambda z: z,
    ),
    ("sparse_categorical_crossentropy", "SparseCategoricalCrossentropy", {}, LABELS, softmax),
    (
        {"name": "sparse_categorical_crossentropy", "from_logits": True},
        "SparseCategoricalCrossentropy",
        {"from_logits": True},
        LABELS,
        lambda z: z,
    ),
    ("binary_crossentropy", "BinaryCrossentropy", {}, BINARY, losses.sigmoid),
    (
        {"name": "binary_crossentropy", "from_logits": True},
        "BinaryCrossentropy",
        {"from_logits": True},
        BINARY,
        lambda z: z,
    ),
    ("mse", "MeanSquaredError", {}, REGRESSION, lambda z: z),
    ("mae", "MeanAbsoluteError", {}, REGRESSION, lambda z: z),
    ({"name": "huber", "delta": 0.7}, "Huber", {"delta": 0.7}, REGRESSION, lambda z: z),
]


@pytest.mark.parametrize("case", KERAS_LOSSES, ids=[c[1] + str(c[2]) for c in KERAS_LOSSES])
@needs_keras
def test_loss_values_and_functions_equal_keras(case):
    identifier, class_name, arguments, y_true, output = case
    keras = keras_module()
    y_pred = output(np.random.default_rng(4).standard_normal((6, 4)) * 3).astype(np.float32)
    y_true = y_true.astype(np.float32)
    ours, theirs = losses.get(identifier), getattr(keras.losses, class_name)(**arguments)
    assert ours(y_true, y_pred) == pytest.approx(float(theirs(y_true, y_pred)), rel=1e-6)
    function_name = (
        ours.name
    )  # the per-sample functions: keras.losses.categorical_crossentropy, ..., huber
    np.testing.assert_allclose(
        getattr(losses, function_name)(y_true, y_pred, **arguments),
        keras.ops.convert_to_numpy(
            getattr(keras.losses, function_name)(y_true, y_pred, **arguments)
        ),
        rtol=1e-6,
        atol=1e-7,
    )


def test_loss_get_takes_names_classes_instances_functions_and_saved_configs():
    instance = losses.SparseCategoricalCrossentropy(from_logits=True)
    assert losses.get(instance) is instance
    assert (
        type(losses.get("mae")) is losses.MeanAbsoluteError
        and type(losses.get("MSE")) is losses.MeanSquaredError
    )
    assert type(losses.get("CategoricalCrossentropy")) is losses.CategoricalCrossentropy
    assert type(losses.get(losses.BinaryCrossentropy)) is losses.BinaryCrossentropy
    assert type(losses.get(losses.categorical_crossentropy)) is losses.CategoricalCrossentropy
    assert losses.get(functools.partial(losses.binary_crossentropy, from_logits=True)).from_logits
    restored = losses.get(instance.get_config())
    assert type(restored) is losses.SparseCategoricalCrossentropy and restored.from_logits
    keras_form = {
        "class_name": "CategoricalCrossentropy",
        "config": {
            "name": "categorical_crossentropy",
            "reduction": "sum_over_batch_size",
            "from_logits": True,
            "label_smoothing": 0.0,
            "axis": -1,
        },
    }
    assert losses.get(keras_form).from_logits


def test_loss_written_in_python_is_refused_with_the_supported_list():
    def my_loss(y_true, y_pred):
        return ((y_true - y_pred) ** 2).mean()

    with pytest.raises(
        UnsupportedKerasFeature, match=r"loss 'my_loss' is not supported.*categorical_crossentropy"
    ):
        losses.get(my_loss)
    with pytest.raises(
        UnsupportedKerasFeature, match=r"unknown loss 'hinge'; cnnlab supports .*mse"
    ):
        losses.get("hinge")
    with pytest.raises(UnsupportedKerasFeature, match="axis=1 is not supported"):
        losses.CategoricalCrossentropy(axis=1)


# ------------------------------------------------------------------ metrics
def batches(kind: str) -> list[tuple[np.ndarray, np.ndarray]]:
    """Three batches of 7, 5 and 3 samples (unequal sizes test the sample-weighted mean)."""
    rng = np.random.default_rng(5)
    out = []
    for n in (7, 5, 3):
        labels = rng.integers(0, 4, n)
        probs = softmax(rng.standard_normal((n, 4))).astype(np.float32)
        out.append(
            {
                "sparse": (labels, probs),
                "sparse-column": (labels[:, None], probs),
                "one-hot": (np.eye(4, dtype=np.float32)[labels], probs),
                "binary": (rng.integers(0, 2, (n, 1)).astype(np.float32), probs[:, :1] * 2),
                "multi-binary": (rng.integers(0, 2, (n, 4)).astype(np.float32), probs * 2),
                "regression": (
                    rng.standard_normal((n, 3)).astype(np.float32),
                    rng.standard_normal((n, 3)).astype(np.float32),
                ),
            }[kind]
        )
    return out


METRIC_CASES = [  # (identifier given to compile, data kind)
    ("accuracy", "sparse"),
    ("acc", "sparse-column"),
    ("accuracy", "one-hot"),
    ("accuracy", "binary"),
    ("categorical_accuracy", "one-hot"),
    ("sparse_categorical_accuracy", "sparse"),
    ("binary_accuracy", "multi-binary"),
    ("mse", "regression"),
    ("mae", "regression"),
    ("mean_squared_error", "regression"),
    ("mean_absolute_error", "regression"),
    ("SparseTopKCategoricalAccuracy(k=3)", "sparse"),
    ("categorical_crossentropy", "one-hot"),
    ("SparseCategoricalAccuracy()", "sparse"),
    ("BinaryAccuracy(threshold=0.3)", "binary"),
    ("TopKCategoricalAccuracy(k=2)", "one-hot"),
    ("metrics.categorical_accuracy", "one-hot"),
    ("metrics.mean_squared_error", "regression"),
]


def build(identifier: str, module: Any) -> Any:
    """The identifier as a program writes it, against cnnlab's module or Keras's."""
    if identifier.endswith(")"):
        name, arguments = identifier[:-1].split("(")
        kwargs = dict(item.split("=") for item in arguments.split(",")) if arguments else {}
        return getattr(module, name)(
            **{k: float(v) if "." in v else int(v) for k, v in kwargs.items()}
        )
    if identifier.startswith("metrics."):
        return getattr(module, identifier.removeprefix("metrics."))
    return identifier


@pytest.mark.parametrize("identifier, kind", METRIC_CASES)
@needs_keras
def test_metric_equals_keras_metric_and_log_name(identifier, kind):
    keras = keras_module()
    from keras.src.trainers.compile_utils import get_metric

    data = batches(kind)
    theirs = get_metric(build(identifier, keras.metrics), *data[0])
    ours = metrics.get(build(identifier, metrics), losses.get("mse"))
    total = count = 0
    for y_true, y_pred in data:
        theirs.update_state(y_true, y_pred)
        batch_total, batch_count = ours.batch_totals(y_true, y_pred)
        total, count = total + batch_total, count + batch_count
    assert count == 15 and ours.name == theirs.name
    assert total / count == pytest.approx(float(theirs.result()), rel=1e-6)


def test_accuracy_resolves_from_shapes_as_keras_3_does():
    probs = np.array([[0.2, 0.8], [0.9, 0.1]])
    assert metrics.accuracy_for(np.array([1, 0]), probs) is metrics.sparse_categorical_accuracy
    assert metrics.accuracy_for(np.array([[1], [0]]), probs) is metrics.sparse_categorical_accuracy
    assert metrics.accuracy_for(np.eye(2), probs) is metrics.categorical_accuracy
    assert metrics.accuracy_for(np.array([[1.0], [0.0]]), probs[:, :1]) is metrics.binary_accuracy
    assert metrics.get("acc").batch_totals(np.array([1, 1]), probs) == (1.0, 2)


def test_metric_instances_keep_their_names_and_unknown_metrics_are_refused():
    assert metrics.get(metrics.SparseCategoricalAccuracy()).name == "sparse_categorical_accuracy"
    assert metrics.get(metrics.SparseCategoricalAccuracy(name="sca")).name == "sca"
    assert metrics.get(metrics.CategoricalAccuracy).name == "categorical_accuracy"
    assert metrics.get(losses.categorical_crossentropy).name == "categorical_crossentropy"
    with pytest.raises(
        UnsupportedKerasFeature, match=r"unknown metric 'auc'; cnnlab supports accuracy, acc, .*mse"
    ):
        metrics.get("auc")
    with pytest.raises(
        UnsupportedKerasFeature, match=r"metric 'f1' is not supported.*sparse_categorical_accuracy"
    ):
        metrics.get(lambda_named("f1"))


def lambda_named(name: str) -> Callable[..., float]:
    def metric(y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return 0.0

    metric.__name__ = name
    return metric


# --------------------------------------------------------------- optimizers
OPTIMIZER_CONFIGS = [
    {"name": "adadelta"},
    {"name": "adadelta", "learning_rate": 1.0, "rho": 0.9},
    {"name": "adagrad"},
    {"name": "adagrad", "learning_rate": 0.05, "initial_accumulator_value": 0.5},
    {"name": "nadam"},
    {"name": "nadam", "learning_rate": 0.01, "beta_1": 0.8},
    {"name": "adamw"},
    {"name": "adamw", "learning_rate": 0.01, "weight_decay": 0.1},
    {"name": "adam", "amsgrad": True},
    {"name": "sgd", "momentum": 0.9, "weight_decay": 0.01},
    {"name": "rmsprop", "clipnorm": 0.5},
    {"name": "adam", "clipvalue": 0.01},
    {"name": "sgd", "decay": 0.1},
]


def run_steps(
    config: dict[str, Any], steps: int = 5
) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
    """The engine's weights after ``steps`` updates, with the start and the gradients it used."""
    rng = np.random.default_rng(6)
    start = rng.standard_normal((4, 3)).astype(np.float32)
    grads = [
        (rng.standard_normal((4, 3)) * 10.0 ** rng.integers(-2, 1)).astype(np.float32)
        for _ in range(steps)
    ]
    param = start.copy()
    optimizer = optimizers.get(config)
    for grad in grads:
        optimizer.apply([("dense/kernel", param, grad)])
    return start, grads, param


@pytest.mark.parametrize("config", OPTIMIZER_CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
@needs_keras
def test_optimizer_steps_equal_keras(config):
    keras = keras_module()
    from cnnlab.reference.keras import make_keras_optimizer

    start, grads, ours = run_steps(config)
    variable = keras.Variable(start.copy())
    optimizer = make_keras_optimizer(config)
    for grad in grads:
        optimizer.apply_gradients([(keras.ops.convert_to_tensor(grad), variable)])
    np.testing.assert_allclose(ours, keras.ops.convert_to_numpy(variable), rtol=2e-6, atol=1e-7)
    assert not np.allclose(ours, start, rtol=0, atol=1e-6)  # the steps moved the weights


@pytest.mark.torch
@pytest.mark.parametrize("config", OPTIMIZER_CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_optimizer_steps_equal_the_torch_twin(config):
    torch = pytest.importorskip("torch")
    from cnnlab.reference.torch import make_torch_optimizer

    start, grads, ours = run_steps(config, steps=20)
    tparam = torch.tensor(start.copy(), requires_grad=True)
    twin = make_torch_optimizer(config, [tparam])
    for grad in grads:
        tparam.grad = torch.tensor(grad)
        twin.step()
    np.testing.assert_allclose(ours, tparam.detach().numpy(), rtol=1e-6, atol=1e-8)


def test_keras_2_lr_warns_and_equals_learning_rate():
    with pytest.warns(
        DeprecationWarning,
        match="Adadelta: 'lr' is Keras 2's name; Keras 3 calls it 'learning_rate'",
    ):
        old = optimizers.Adadelta(lr=0.5, rho=0.9)
    new = optimizers.Adadelta(learning_rate=0.5, rho=0.9)
    assert old.get_config() == new.get_config() and old.lr == 0.5
    params = [np.ones(3), np.ones(3)]
    for grad in np.random.default_rng(8).standard_normal((4, 3)):
        old.apply([("dense/bias", params[0], grad)])
        new.apply([("dense/bias", params[1], grad)])
    np.testing.assert_array_equal(params[0], params[1])
    assert not np.array_equal(params[0], np.ones(3))


def test_keras_2_decay_warns_and_divides_the_rate_by_one_plus_decay_times_steps():
    with pytest.warns(DeprecationWarning, match="InverseTimeDecay"):
        sgd = optimizers.SGD(learning_rate=0.1, decay=0.5)
    param = np.zeros(1)
    for _ in range(3):
        sgd.apply([("dense/bias", param, np.ones(1))])
    np.testing.assert_allclose(param, [-(0.1 + 0.1 / 1.5 + 0.1 / 2)])
    assert optimizers.get(sgd.get_config()).decay == 0.5  # restored without a second warning


def test_learning_rate_is_a_float_callbacks_can_assign_between_steps():
    sgd = optimizers.get("sgd")
    param = np.zeros(1)
    sgd.apply([("dense/bias", param, np.ones(1))])
    sgd.learning_rate = 0.5
    sgd.apply([("dense/bias", param, np.ones(1))])
    np.testing.assert_allclose(param, [-0.51])


@pytest.mark.parametrize("name", ["adadelta", "adagrad", "nadam", "adamw"])
def test_state_restored_mid_training_continues_exactly(name):
    rng = np.random.default_rng(7)
    grads = [rng.standard_normal(5) for _ in range(6)]
    straight, resumed = np.ones(5), np.ones(5)
    first = optimizers.get(name)
    for grad in grads:
        first.apply([("dense/kernel", straight, grad)])
    second = optimizers.get(name)
    for grad in grads[:3]:
        second.apply([("dense/kernel", resumed, grad)])
    third = optimizers.get(second.get_config())
    third.set_state(second.get_state())
    for grad in grads[3:]:
        third.apply([("dense/kernel", resumed, grad)])
    np.testing.assert_array_equal(straight, resumed)


def test_optimizer_get_takes_every_keras_name_class_and_instance():
    for name in [
        "adam",
        "sgd",
        "rmsprop",
        "adadelta",
        "adagrad",
        "nadam",
        "adamw",
        "Adam",
        "RMSprop",
        "AdamW",
    ]:
        assert optimizers.get(name).name == name.lower()
    assert type(optimizers.get(optimizers.Nadam)) is optimizers.Nadam
    adagrad = optimizers.Adagrad(0.1)
    assert optimizers.get(adagrad) is adagrad


def test_optimizer_get_takes_the_keras_config_form():
    keras_form = {
        "class_name": "Adadelta",
        "config": {
            "name": "adadelta",
            "learning_rate": 0.5,
            "rho": 0.9,
            "weight_decay": None,
            "clipnorm": None,
            "use_ema": False,
        },
    }
    assert optimizers.get(keras_form).get_config() == {
        "name": "adadelta",
        "learning_rate": 0.5,
        "rho": 0.9,
        "epsilon": 1e-7,
    }


def test_optimizers_refuse_what_cnnlab_does_not_support():
    with pytest.raises(
        UnsupportedKerasFeature,
        match="unknown optimizer 'lion'; cnnlab supports sgd, adam, rmsprop",
    ):
        optimizers.get("lion")
    with pytest.raises(UnsupportedKerasFeature, match="Adam: use_ema=True is not supported"):
        optimizers.Adam(use_ema=True)
    with pytest.raises(ValueError, match="AdamW: weight_decay must be a float"):
        optimizers.AdamW(weight_decay=None)


@pytest.mark.parametrize("config", OPTIMIZER_CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_a_large_parameter_updated_piece_by_piece_equals_the_rule_on_the_whole(config, monkeypatch):
    """Optimizer.apply runs each rule over pieces of at most CHUNK_BYTES of a large parameter
    (optimizers.chunks: small temporaries, no fresh pages); every rule is elementwise, so the
    result is the rule applied to the whole array, bit for bit, slots included. A parameter
    that is not contiguous is updated whole, in place."""
    from cnnlab.engine import optimizers as engine_optimizers

    rng = np.random.default_rng(8)
    start = rng.standard_normal((300, 70)).astype(np.float32)  # 84 KB: several 16 KB pieces
    grads = [rng.standard_normal(start.shape).astype(np.float32) for _ in range(3)]

    def run(chunk_bytes: int, param: np.ndarray) -> tuple[np.ndarray, dict]:
        monkeypatch.setattr(engine_optimizers, "CHUNK_BYTES", chunk_bytes)
        optimizer = optimizers.get(config)
        for grad in grads:
            optimizer.apply([("dense/kernel", param, grad[: param.shape[0]])])
        return param, optimizer.get_state()

    whole, whole_state = run(1 << 30, start.copy())
    pieces, pieces_state = run(16 * 1024, start.copy())
    np.testing.assert_array_equal(pieces, whole)
    for key, value in whole_state.items():
        np.testing.assert_array_equal(pieces_state[key], value, err_msg=key)
    strided = np.repeat(start, 2, axis=0)[::2]  # not contiguous: updated whole, in place
    np.testing.assert_array_equal(run(16 * 1024, strided)[0], whole)
