"""The PyTorch reference (cnnlab.reference.torch) against the engine: same network, same numbers.

The acceptance test of "handwritten vs framework": on the seed MNIST CNN and the seed dense
model, every layer's output, the loss and every gradient agree within 1e-5 in float32, and
the weights after 100 Adam steps agree within 1e-4.

Why the CNN's 100-step check runs in float64: in float32 the training trajectory of a
ReLU + max-pool network under Adam is itself sensitive at the level of one rounding error.
Differences of ~1e-7 in a conv output flip the occasional near-tie of a max-pool window or
the sign of a pre-activation near 0; one such flip reroutes a sample's gradient, Adam
normalises it into a step of order lr, and the runs part. The engine against *itself*, with
its input moved by one ulp, ends 100 steps apart by 1e-2 to 1e-1 on this data. In float64
those flips do not happen and the two engines agree to ~1e-15 after 100 steps, which is the
statement the tolerance is meant to make: the same algorithm, step for step.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from cnnlab import models
from cnnlab.engine import Input, Sequential, callbacks, layers, set_floatx
from cnnlab.engine.callbacks import Callback

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from cnnlab.reference import torch as reference  # noqa: E402  (needs torch)

FLOAT32_TOLERANCE = 1e-5  # forward, loss, gradients (the figure)
WEIGHTS_TOLERANCE = 1e-4  # weights after 100 steps (the figure)
FLOAT64_TOLERANCE = 1e-10  # everything, in float64: far inside both
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """One thread for torch and for NumPy's BLAS: these arrays are small, and on a busy
    machine a thread pool only adds waiting (the 100-step tests run 4x slower without)."""
    threadpoolctl = pytest.importorskip("threadpoolctl")  # installed with scikit-learn
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with threadpoolctl.threadpool_limits(1, user_api="blas"):
        yield
    torch.set_num_threads(threads)


@pytest.fixture
def float64() -> Iterator[None]:
    set_floatx("float64")
    yield
    set_floatx("float32")


@pytest.fixture(params=["float32", "float64"])
def precision(request: pytest.FixtureRequest) -> Iterator[str]:
    set_floatx(request.param)
    yield request.param
    set_floatx("float32")


# ------------------------------------------------------------------------- models
def seed_cnn(seed: int = 1, optimizer: str | dict = "adam") -> Sequential:
    """The seed MNIST CNN (34,826 parameters; the built-in seed-cnn), compiled as the seed program
    compiles it."""
    model = models.build_model(models.model_config("seed-cnn", (28, 28, 1), 10), 10, seed)
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


def seed_dense(seed: int = 1, optimizer: str | dict = "adam", dropout: float = 0.5) -> Sequential:
    """The seed dense model for 2-D points."""
    model = Sequential(
        [
            layers.Dense(64, activation="relu", input_shape=(2,)),
            layers.Dense(64, activation="relu"),
            layers.Flatten(),
            layers.Dropout(dropout),
            layers.Dense(2, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(loss="categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    return model


def random_data(model: Sequential, count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Random inputs of the model's shape and random one-hot targets."""
    rng = np.random.default_rng(seed)
    x = rng.random((count, *model.input_shape))
    classes = model.output_shape[-1]
    return x, np.eye(classes)[rng.integers(0, classes, count)]


# ------------------------------------------------------------------------ oracle
def assert_parity(
    rows: list[dict],
    tolerance: float = FLOAT32_TOLERANCE,
    weights_tolerance: float = WEIGHTS_TOLERANCE,
) -> None:
    """Every row within tolerance; the message lists the rows that are not.

    Forward, loss and gradients: the largest difference scaled by max(1, largest torch
    value), as test_torch_parity does (relative for large values, absolute for small ones,
    where float32 sums that cancel, such as a bias gradient of 5e-4 made of terms of 3e-2,
    leave a relative error of ~1e-5 in either engine). Weights: the largest difference.
    """
    failures = [row for row in rows if row_error(row, tolerance, weights_tolerance) > 1]
    assert not failures, "engine and torch differ:\n" + reference.format_parity(failures)


def row_error(row: dict, tolerance: float, weights_tolerance: float) -> float:
    if row["quantity"] == "weights":
        return row["max_abs"] / weights_tolerance
    return min(row["max_abs"], row["max_rel"]) / tolerance  # = max_abs / max(1, scale)


def assert_rows_cover(rows: list[dict], model: Sequential) -> None:
    """The report compares every layer's output and every weight's gradient and final value."""
    forward = [row["layer"] for row in rows if row["quantity"] == "forward"]
    assert forward == [layer.name for layer in model.layers]
    weights = [f"{layer.name}/{key}" for layer in model.layers for key in layer.params]
    for quantity in ("gradient", "weights"):
        assert [
            f"{row['layer']}/{row['param']}" for row in rows if row["quantity"] == quantity
        ] == weights
    assert sum(row["quantity"] == "loss" for row in rows) == 1


# -------------------------------------------------------------- acceptance tests
def test_seed_cnn_forward_loss_and_gradients_agree_in_float32():
    model = seed_cnn()
    x, y = random_data(model, 64)
    rows = reference.parity_report(model, x, y, steps=0)
    assert_rows_cover(rows, model)
    assert_parity(rows)


def test_seed_cnn_weights_agree_after_100_adam_steps(float64):
    model = seed_cnn()
    x, y = random_data(model, 64)
    rows = reference.parity_report(model, x, y, steps=100, batch_size=32)
    assert_rows_cover(rows, model)
    assert {row["steps"] for row in rows if row["quantity"] == "weights"} == {100}
    assert_parity(rows, tolerance=FLOAT64_TOLERANCE, weights_tolerance=FLOAT64_TOLERANCE)


def test_seed_dense_model_agrees_after_100_adam_steps(precision):
    model = seed_dense()
    x, y = random_data(model, 64)
    rows = reference.parity_report(model, x, y, steps=100, batch_size=32)
    assert_rows_cover(rows, model)
    if precision == "float32":
        assert_parity(rows)
    else:
        assert_parity(rows, tolerance=FLOAT64_TOLERANCE, weights_tolerance=FLOAT64_TOLERANCE)


# ----------------------------------------------- padding, pooling, optimizers
def same_strided() -> list:
    # tanh before the max pool: negative values, so padding with 0 instead of -inf would show
    return [
        Input(shape=(9, 10, 2)),
        layers.Conv2D(4, 3, strides=2, padding="same", activation="tanh"),
        layers.MaxPooling2D(3, strides=2, padding="same"),
        layers.Conv2D(3, (2, 4), strides=(3, 1), padding="same", activation="relu"),
        layers.Flatten(),
        layers.Dense(5, activation="softmax"),
    ]


def average_pooling() -> list:
    return [
        Input(shape=(8, 8, 3)),
        layers.Conv2D(6, 3, padding="same", activation="sigmoid"),
        layers.AveragePooling2D(3, strides=2, padding="same"),
        layers.AveragePooling2D(2),
        layers.Flatten(),
        layers.Dense(4),
        layers.Activation("softmax"),
    ]


def strided_valid_binary() -> list:
    return [
        Input(shape=(11, 11, 1)),
        layers.Conv2D(5, 3, strides=2, activation="relu"),
        layers.AveragePooling2D(3, strides=2),
        layers.Flatten(),
        layers.Dropout(0.3),
        layers.Dense(1, activation="sigmoid"),
    ]


def per_pixel_classes() -> list:
    """Softmax over the channels of every pixel: the loss averages over N * H * W predictions."""
    return [
        Input(shape=(6, 5, 2)),
        layers.Conv2D(4, 3, padding="same", activation="relu"),
        layers.Conv2D(3, 1, activation="softmax"),
    ]


def dense_regression() -> list:
    return [Input(shape=(3,)), layers.Dense(8, activation="tanh"), layers.Dense(2)]


PARITY_CASES = [
    (
        same_strided,
        {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
        "categorical_crossentropy",
    ),
    (
        average_pooling,
        {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
        "sparse_categorical_crossentropy",
    ),
    (strided_valid_binary, {"name": "rmsprop", "learning_rate": 0.01}, "binary_crossentropy"),
    (dense_regression, {"name": "adam", "learning_rate": 0.01, "beta_1": 0.8}, "mse"),
    (per_pixel_classes, {"name": "adam"}, "sparse_categorical_crossentropy"),
    (same_strided, {"name": "sgd", "learning_rate": 0.1}, "categorical_crossentropy"),
]


def targets_for(model: Sequential, loss: str, count: int, rng: np.random.Generator) -> np.ndarray:
    classes = model.output_shape[-1]
    if loss == "sparse_categorical_crossentropy":
        return rng.integers(0, classes, (count, *model.output_shape[:-1]))
    if loss == "binary_crossentropy":
        return rng.integers(0, 2, (count, classes)).astype(np.float32)
    if loss == "mse":
        return rng.standard_normal((count, classes))
    return np.eye(classes)[rng.integers(0, classes, count)]


@pytest.mark.parametrize(
    "architecture, optimizer, loss",
    PARITY_CASES,
    ids=[f"{a.__name__}-{o['name']}-{loss}" for a, o, loss in PARITY_CASES],
)
def test_configs_agree_for_a_few_steps(
    architecture: Callable[[], list], optimizer: dict, loss: str
):
    model = Sequential(architecture(), seed=4)
    model.compile(optimizer=optimizer, loss=loss, metrics=["accuracy"])
    rng = np.random.default_rng(5)
    x = rng.standard_normal((24, *model.input_shape))
    rows = reference.parity_report(
        model, x, targets_for(model, loss, 24, rng), steps=5, batch_size=8
    )
    assert_rows_cover(rows, model)
    assert_parity(rows, weights_tolerance=FLOAT32_TOLERANCE)


def test_parity_report_leaves_the_model_untouched():
    model = seed_dense(optimizer={"name": "sgd", "learning_rate": 0.1})
    before = model.get_weights()
    x, y = random_data(model, 16)
    reference.parity_report(model, x, y, steps=3, optimizer_config="adam", batch_size=8)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))
    assert model.layers[3].rate == 0.5
    assert model.optimizer.iterations == 0 and model.optimizer.get_config()["name"] == "sgd"


def test_format_parity_is_one_line_per_row():
    model = seed_dense()
    rows = reference.parity_report(model, *random_data(model, 8), steps=1)
    table = reference.format_parity(rows)
    lines = table.splitlines()
    assert len(lines) == len(rows) + 2
    assert lines[0].split() == ["quantity", "layer", "param", "steps", "max", "abs", "max", "rel"]
    assert lines[2].split()[:4] == ["forward", model.layers[0].name, "-", "0"]
    assert lines[-1].split()[:4] == ["weights", model.layers[-1].name, "bias", "1"]


# --------------------------------------------------------------- build, weights
def test_unsupported_layer_class_is_refused():
    config = seed_dense().get_config()
    config["layers"].insert(2, {"class_name": "LSTM", "config": {"name": "lstm"}})
    with pytest.raises(
        ValueError, match="the PyTorch reference does not support layer class 'LSTM'"
    ):
        reference.build_torch_model(config)


def test_built_model_starts_from_the_engine_initialisation_and_keeps_layer_names():
    model = seed_cnn(seed=7)
    twin = reference.build_torch_model(
        model.get_config()["layers"], seed=7
    )  # the bare list works too
    assert [name for name, _ in twin.named_children()] == [layer.name for layer in model.layers]
    assert np.array_equal(
        twin.get_submodule(model.layers[0].name).conv.weight.detach().numpy(),
        model.layers[0].params["kernel"].transpose(3, 2, 0, 1),
    )
    assert np.array_equal(
        twin.get_submodule(model.layers[-1].name).linear.weight.detach().numpy(),
        model.layers[-1].params["kernel"].T,
    )


def test_weight_copy_round_trip_is_exact_and_predictions_agree():
    model = Sequential(same_strided(), seed=2)
    twin = reference.build_torch_model(model.get_config(), seed=99)
    reference.copy_weights_to_torch(model, twin)
    other = Sequential.from_config(model.get_config(), seed=3)
    reference.copy_weights_from_torch(twin, other)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), other.get_weights()))
    x = np.random.default_rng(0).standard_normal((6, 9, 10, 2)).astype(np.float32)
    with torch.no_grad():
        theirs = twin.eval()(torch.tensor(x)).numpy()
    np.testing.assert_allclose(model.predict(x, verbose=0), theirs, atol=FLOAT32_TOLERANCE, rtol=0)


def test_weights_of_another_architecture_are_refused():
    with pytest.raises(ValueError, match="no weight"):
        reference.copy_weights_to_torch(
            seed_dense(), reference.build_torch_model(seed_cnn().get_config())
        )


# ------------------------------------------------------------ optimizers, losses
OPTIMIZER_CONFIGS = [
    {"name": "sgd", "learning_rate": 0.1},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9},
    {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True},
    {"name": "adam"},
    {"name": "adam", "learning_rate": 0.01, "beta_1": 0.8, "epsilon": 1e-3},
    {"name": "rmsprop", "epsilon": 1e-2},
]


@pytest.mark.parametrize("config", OPTIMIZER_CONFIGS, ids=lambda c: "-".join(map(str, c.values())))
def test_torch_optimizers_repeat_the_engine_update_bit_for_bit(config):
    """The twin's optimizers (what cnnlab compare trains PyTorch with) repeat the engine's update
    bit for bit; large epsilons make the place of epsilon (Keras vs torch.optim) visible. The
    engine's own updates are checked against real Keras 3 in test_losses_metrics_optimizers.py
    (test_optimizer_steps_equal_keras), so this is not a copy checked against itself."""
    from cnnlab.engine import optimizers

    rng = np.random.default_rng(6)
    param = rng.standard_normal((5, 4)).astype(np.float32)
    tparam = torch.tensor(param.copy(), requires_grad=True)
    ours, theirs = optimizers.get(config), reference.make_torch_optimizer(config, [tparam])
    for _ in range(20):
        grad = (rng.standard_normal((5, 4)) * 10.0 ** rng.integers(-4, 1)).astype(np.float32)
        ours.apply([("layer/kernel", param, grad)])
        tparam.grad = torch.tensor(grad)
        theirs.step()
    assert np.array_equal(param, tparam.detach().numpy())


def test_make_torch_optimizer_accepts_names_and_refuses_unknown_ones():
    params = [torch.zeros(2, requires_grad=True)]
    adam = reference.make_torch_optimizer("adam", params)
    assert isinstance(adam, reference.KerasAdam)
    assert adam.defaults == {"lr": 0.001, "beta_1": 0.9, "beta_2": 0.999, "epsilon": 1e-7}
    with pytest.raises(ValueError, match="unknown optimizer 'lion'"):
        reference.make_torch_optimizer({"name": "lion"}, params)


LOSS_CASES = [
    ("categorical_crossentropy", "softmax"),
    ("sparse_categorical_crossentropy", "softmax"),
    ("binary_crossentropy", "sigmoid"),
    ("mse", "linear"),
]


@pytest.mark.parametrize("name, activation", LOSS_CASES)
def test_loss_value_is_the_engine_value_and_gradient_the_fused_one(name, activation):
    """Logits with a spread of 40 put probabilities below the 1e-7 clip: the value is still
    Keras's."""
    from cnnlab.engine import activations, losses

    rng = np.random.default_rng(7)
    z = (rng.standard_normal((16, 3)) * 40).astype(np.float32)
    labels = rng.integers(0, 3, 16)
    y = {
        "categorical_crossentropy": np.eye(3, dtype=np.float32)[labels],
        "sparse_categorical_crossentropy": labels,
        "binary_crossentropy": rng.integers(0, 2, (16, 3)).astype(np.float32),
        "mse": rng.random((16, 3), dtype=np.float32),
    }[name]
    y_pred = activations.get(activation).forward(z.copy())
    engine_loss = losses.get(name)
    tz = torch.tensor(z, requires_grad=True)
    value = reference.KerasLoss(name, activation)(
        tz, reference.ACTIVATIONS[activation](tz), torch.tensor(y)
    )
    value.backward()
    expected_grad = (
        engine_loss.gradient_before_activation(y, y_pred)
        if engine_loss.fused_activation
        else engine_loss.gradient(y, y_pred)
    )
    assert abs(value.item() - engine_loss(y, y_pred)) <= FLOAT32_TOLERANCE * max(
        1.0, abs(value.item())
    )
    np.testing.assert_allclose(tz.grad.numpy(), expected_grad, atol=1e-7, rtol=1e-5)


# -------------------------------------------------------------------------- trainer
def blobs(count: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two well separated clusters of 2-D points, one-hot labels."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    x = rng.standard_normal((count, 2)) * 0.5 + np.where(labels[:, None] == 1, 2.0, -2.0)
    return x.astype(np.float32), np.eye(2, dtype=np.float32)[labels]


def test_trainer_learns_a_separable_problem_with_keras_history():
    x, y = blobs(120)
    seen = []
    trainer = reference.TorchTrainer(
        seed_dense().get_config(),
        {"name": "adam", "learning_rate": 0.01},
        "categorical_crossentropy",
        seed=0,
    )
    history = trainer.fit(
        x,
        y,
        batch_size=16,
        epochs=4,
        validation_split=0.25,
        on_epoch_end=lambda epoch, logs: seen.append((epoch, sorted(logs))),
    )
    assert sorted(history) == ["accuracy", "loss", "val_accuracy", "val_loss"]
    assert all(len(values) == 4 for values in history.values()) and len(trainer.epoch_seconds) == 4
    assert seen == [(epoch, ["accuracy", "loss", "val_accuracy", "val_loss"]) for epoch in range(4)]
    assert history["loss"][-1] < history["loss"][0] and history["val_accuracy"][-1] >= 0.95
    loss, accuracy = trainer.evaluate(x, y)
    assert accuracy >= 0.95 and loss < 0.3
    probabilities = trainer.predict(x, batch_size=50)
    assert probabilities.dtype == np.float32 and probabilities.shape == (120, 2)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1, atol=1e-6)


def test_validation_split_takes_the_last_fraction_with_floor():
    x, y = blobs(10, seed=1)
    trainer = reference.TorchTrainer(
        seed_dense(dropout=0.0).get_config(), "sgd", "categorical_crossentropy", seed=0
    )
    history = trainer.fit(
        x, y, batch_size=4, epochs=1, validation_split=0.25
    )  # floor(7.5) = 7 for training
    assert history["val_loss"][0] == pytest.approx(trainer.evaluate(x[7:], y[7:])[0], abs=1e-7)
    assert history["val_loss"][0] != pytest.approx(trainer.evaluate(x[8:], y[8:])[0], abs=1e-7)
    with_data = trainer.fit(x[:7], y[:7], batch_size=4, epochs=1, validation_data=(x[7:], y[7:]))
    assert with_data["val_loss"][0] == pytest.approx(trainer.evaluate(x[7:], y[7:])[0], abs=1e-7)


def test_trainer_sees_the_engine_batches_with_a_copied_generator():
    x, y = blobs(40, seed=2)
    model = seed_dense(seed=3, optimizer={"name": "sgd", "learning_rate": 0.1}, dropout=0.0)
    trainer = reference.TorchTrainer(
        model.get_config(), model.optimizer.get_config(), "categorical_crossentropy", seed=9
    )
    unshuffled = reference.TorchTrainer(
        model.get_config(), model.optimizer.get_config(), "categorical_crossentropy"
    )
    trainer.set_weights_from(model)
    unshuffled.set_weights_from(model)
    generator = copy.deepcopy(model.shuffle_rng)
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    torch_history = trainer.fit(x, y, batch_size=8, epochs=1, shuffle_rng=generator)
    assert torch_history["loss"][0] == pytest.approx(
        history.history["loss"][0], abs=FLOAT32_TOLERANCE
    )
    assert_same_weights(model, trainer, FLOAT32_TOLERANCE)
    unshuffled.fit(x, y, batch_size=8, epochs=1, shuffle=False)
    with pytest.raises(AssertionError):  # the check is sensitive to the order of the batches
        assert_same_weights(model, unshuffled, 1e-3)


def test_one_seed_gives_the_same_start_and_batches_in_both_engines():
    x, y = blobs(40, seed=4)
    model = seed_dense(seed=5, optimizer={"name": "sgd", "learning_rate": 0.1}, dropout=0.0)
    trainer = reference.TorchTrainer(
        model.get_config(), model.optimizer.get_config(), "categorical_crossentropy", seed=5
    )
    model.fit(x, y, batch_size=8, epochs=2, verbose=0)
    trainer.fit(x, y, batch_size=8, epochs=2)
    assert_same_weights(model, trainer, FLOAT32_TOLERANCE)


def test_trainer_takes_one_unit_targets_as_the_engine_does():
    x, y = blobs(24, seed=7)
    labels = y[:, 1]  # (N,) for a one-unit sigmoid output
    model = Sequential(
        [
            layers.Dense(4, activation="tanh", input_shape=(2,)),
            layers.Dense(1, activation="sigmoid"),
        ],
        seed=8,
    )
    model.compile(
        optimizer={"name": "rmsprop", "learning_rate": 0.01},
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    trainer = reference.TorchTrainer(
        model.get_config(), model.optimizer.get_config(), "binary_crossentropy", seed=8
    )
    history = model.fit(x, labels, batch_size=8, epochs=2, verbose=0).history
    torch_history = trainer.fit(x, labels, batch_size=8, epochs=2)
    np.testing.assert_allclose(
        torch_history["loss"], history["loss"], atol=FLOAT32_TOLERANCE, rtol=0
    )
    assert torch_history["accuracy"] == history["accuracy"]
    assert_same_weights(model, trainer, FLOAT32_TOLERANCE)


def assert_same_weights(
    model: Sequential, trainer: reference.TorchTrainer, tolerance: float
) -> None:
    trained = trainer.to_engine()
    gap = max(
        float(np.abs(a - b).max()) for a, b in zip(model.get_weights(), trained.get_weights())
    )
    assert gap <= tolerance, f"weights differ by {gap:.2e}"


def test_trainer_dropout_is_repeatable_and_leaves_torch_global_state_alone():
    x, y = blobs(32, seed=6)
    config = seed_dense().get_config()
    state = torch.get_rng_state()
    runs = [
        reference.TorchTrainer(config, "adam", "categorical_crossentropy", seed=11).fit(
            x, y, epochs=2
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert torch.equal(torch.get_rng_state(), state)


def test_trainer_refuses_inputs_of_the_wrong_shape():
    trainer = reference.TorchTrainer(
        seed_dense().get_config(), "adam", "categorical_crossentropy", seed=0
    )
    with pytest.raises(ValueError, match=r"expected input of shape \(N, 2\)"):
        trainer.fit(np.zeros((4, 3)), np.zeros((4, 2)))


# ---------------------------------------------------------------- callbacks
RECORDED_HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
)


class HookRecorder(Callback):
    """Records every fit hook as (hook, epoch or batch, sorted log keys), and the params it
    was handed; ``stop_at`` (epoch, batch) sets ``model.stop_training`` after that batch."""

    def __init__(self, stop_at: tuple[int, int] | None = None) -> None:
        super().__init__()
        self.calls: list[tuple] = []
        self.stop_at, self.epoch = stop_at, -1


def recording(hook: str) -> Callable[..., None]:
    """A hook that records its call; logs come by keyword (batch hooks) or by position."""

    def record(self: HookRecorder, *args: Any, logs: dict | None = None) -> None:
        numbers = tuple(a for a in args if isinstance(a, int))
        given = next((a for a in args if isinstance(a, dict)), logs)
        self.calls.append((hook, *numbers, tuple(sorted(given or {}))))
        if hook == "on_epoch_begin":
            self.epoch = numbers[0]
        if hook == "on_train_batch_end" and self.stop_at == (self.epoch, numbers[0]):
            self.model.stop_training = True

    return record


for _hook in RECORDED_HOOKS:
    setattr(HookRecorder, _hook, recording(_hook))


def engine_and_twin(seed: int = 3) -> tuple[Sequential, reference.TorchTrainer]:
    """The seed dense model without dropout (SGD) and its torch trainer, same weights."""
    model = seed_dense(seed=seed, optimizer={"name": "sgd", "learning_rate": 0.1}, dropout=0.0)
    trainer = reference.TorchTrainer(
        model.get_config(), model.optimizer.get_config(), "categorical_crossentropy", seed=seed
    )
    trainer.set_weights_from(model)
    return model, trainer


def test_trainer_calls_the_hooks_of_the_engine_fit_in_its_order_with_its_params():
    x, y = blobs(40, seed=2)
    model, trainer = engine_and_twin()
    generator = copy.deepcopy(model.shuffle_rng)
    fit = dict(batch_size=8, epochs=2, validation_split=0.25)
    ours, theirs = HookRecorder(), HookRecorder()
    model.fit(x, y, verbose=0, callbacks=[ours], **fit)
    history = trainer.fit(x, y, shuffle_rng=generator, callbacks=[theirs], **fit)
    assert theirs.calls == ours.calls
    assert theirs.params == ours.params == {"verbose": 0, "epochs": 2, "steps": 4}
    assert ("on_test_batch_end", 1, ("accuracy", "loss")) in theirs.calls  # 10 to validate
    assert theirs.model is trainer.engine_model and trainer.engine_model.history.history == history
    np.testing.assert_allclose(
        history["val_loss"], model.history.history["val_loss"], atol=FLOAT32_TOLERANCE, rtol=0
    )


def test_stop_training_from_a_batch_hook_ends_the_epoch_after_that_batch():
    x, y = blobs(40, seed=2)
    model, trainer = engine_and_twin()
    generator = copy.deepcopy(model.shuffle_rng)
    ours, theirs = HookRecorder(stop_at=(1, 2)), HookRecorder(stop_at=(1, 2))
    model.fit(x, y, batch_size=8, epochs=3, verbose=0, callbacks=[ours])
    history = trainer.fit(x, y, batch_size=8, epochs=3, shuffle_rng=generator, callbacks=[theirs])
    batches = [call[1] for call in theirs.calls if call[0] == "on_train_batch_end"]
    assert batches == [0, 1, 2, 3, 4, 0, 1, 2] and len(history["loss"]) == 2  # 5 steps an epoch
    assert theirs.calls == ours.calls and theirs.calls[-1][0] == "on_train_end"
    assert_same_weights(model, trainer, FLOAT32_TOLERANCE)  # stopped after the same batch


def test_early_stopping_stops_at_the_engine_epoch_and_restores_the_best_weights(float64):
    x, y = blobs(40, seed=2)
    model, trainer = engine_and_twin()
    generator = copy.deepcopy(model.shuffle_rng)
    fit = dict(batch_size=8, epochs=30, validation_split=0.25)

    def early_stopping() -> callbacks.EarlyStopping:
        return callbacks.EarlyStopping(min_delta=1e-3, patience=2, restore_best_weights=True)

    engine_stop, torch_stop = early_stopping(), early_stopping()
    history = model.fit(x, y, verbose=0, callbacks=[engine_stop], **fit).history
    torch_history = trainer.fit(x, y, shuffle_rng=generator, callbacks=[torch_stop], **fit)
    assert 0 < torch_stop.stopped_epoch == engine_stop.stopped_epoch < 29
    assert torch_stop.best_epoch == engine_stop.best_epoch < torch_stop.stopped_epoch
    np.testing.assert_allclose(
        torch_history["val_loss"], history["val_loss"], atol=FLOAT64_TOLERANCE, rtol=0
    )
    assert_same_weights(model, trainer, FLOAT64_TOLERANCE)  # the best epoch's, in torch too
    probabilities = trainer.predict(x[:8])
    np.testing.assert_allclose(probabilities, model.predict(x[:8], verbose=0), atol=1e-6)


def test_the_reference_package_does_not_import_torch():
    code = "import sys, cnnlab.reference; assert 'torch' not in sys.modules"
    subprocess.run(
        [sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(SRC)}
    )


def test_cli_trains_with_the_torch_engine_into_a_run_the_engine_loads(tmp_path, capsys):
    from cnnlab import load_model
    from cnnlab.cli import main

    out = tmp_path / "run"
    argv = [
        "train",
        "--dataset",
        "digits",
        "--engine",
        "torch",
        "--epochs",
        "1",
        "--train-size",
        "300",
        "--test-size",
        "60",
        "--batch-size",
        "32",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["engine"] == "torch" and len(metrics["epoch_seconds"]) == 1
    model = load_model(out / "model.cnnlab")  # torch-trained weights, saved in the engine's format
    assert model.count_params() == metrics["params"]


def test_strides_larger_than_the_kernel_do_not_corrupt_memory(tmp_path):
    """PyTorch 2.13's oneDNN convolution corrupts the heap in backward for a 1x1 kernel with
    stride 3 on one thread; the reference runs such layers natively. glibc's malloc checks
    (MALLOC_CHECK_=3) abort the process at once if the heap is damaged."""
    import subprocess
    import sys

    script = tmp_path / "strided.py"
    script.write_text(
        "import numpy as np\n"
        "from cnnlab import Sequential, Input, layers\n"
        "from cnnlab.reference.torch import TorchTrainer\n"
        "m = Sequential([Input(shape=(9, 9, 1)), layers.Conv2D(3, 1, strides=3, "
        "activation='relu'), layers.Flatten(),\n"
        "                layers.Dense(2, activation='softmax')], seed=0)\n"
        "m.compile(loss='categorical_crossentropy', optimizer='sgd')\n"
        "t = TorchTrainer(m.get_config(), m.optimizer.get_config(), m.loss.name, seed=0, "
        "threads=1)\n"
        "x = np.random.default_rng(0).random((64, 9, 9, 1)).astype('float32')\n"
        "t.fit(x, np.eye(2, dtype='float32')[np.arange(64) % 2], batch_size=8, epochs=10)\n"
        "print('ok')\n"
    )
    done = subprocess.run(
        [sys.executable, str(script)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MALLOC_CHECK_": "3", "OMP_NUM_THREADS": "1"},
    )
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-1500:]
