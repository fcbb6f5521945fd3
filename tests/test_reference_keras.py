"""Keras 3 itself (cnnlab.reference.keras, torch backend) against the engine: the real oracle.

The torch reference reproduces Keras's conventions by hand; here Keras is asked. The seed
CNN has Keras's own parameter counts and, with copied weights, Keras's forward pass; so does
a network with "same" padding, strides 2 and average pooling (Keras's padding semantics).
One SGD step and 20 Adam/RMSprop/Nesterov steps on the same batches give the same weights.
``KerasTrainer`` reports Keras's history keys and, given a copy of the engine's shuffling
generator, walks the engine's batches in the engine's order.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("torch")
os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")

from cnnlab.datasets import load_dataset, prepare_images  # noqa: E402
from cnnlab.engine.sequential import Sequential  # noqa: E402
from cnnlab.models import layer, seed_cnn  # noqa: E402
from cnnlab.reference import keras as reference  # noqa: E402
from cnnlab.utils import to_categorical  # noqa: E402

pytestmark = [
    pytest.mark.torch,
    # NumPy 2 on torch's Tensor.__array__ (called by Keras's torch backend): harmless
    pytest.mark.filterwarnings(
        "ignore:__array__ implementation doesn't accept a copy keyword:DeprecationWarning"
    ),
]

FORWARD_TOLERANCE = 1e-5  # float32 outputs, both engines from the same weights
STEP_TOLERANCE = 1e-5  # weights after one SGD step
STEPS_TOLERANCE = 1e-4  # weights after 20 Adam / RMSprop / Nesterov steps
SRC = Path(__file__).resolve().parents[1] / "src"


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    """Small arrays on a shared machine: one torch thread, as the torch reference's tests."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------- configs
def with_input(shape: tuple[int, ...], layers: list[dict], name: str = "probe") -> dict[str, Any]:
    return {
        "name": name,
        "layers": [{"class_name": "InputLayer", "config": {"shape": list(shape)}}, *layers],
    }


def without_dropout(config: dict[str, Any]) -> dict[str, Any]:
    config = copy.deepcopy(config)
    for spec in config["layers"]:
        if spec["class_name"] == "Dropout":
            spec["config"]["rate"] = 0.0
    return config


SEED_CNN = with_input((28, 28, 1), seed_cnn(10), "seed_cnn")
# "same" padding with uneven totals (the extra pixel after), strides 2, both poolings, Activation
SAME_STRIDED = with_input(
    (14, 13, 2),
    [
        layer(
            "Conv2D",
            "conv_s2",
            filters=8,
            kernel_size=[3, 3],
            strides=[2, 2],
            padding="same",
            activation="relu",
        ),  # pads H (0, 1), W (1, 1) -> 7x7
        layer(
            "AveragePooling2D", "avg_same", pool_size=[3, 3], strides=[2, 2], padding="same"
        ),  # pads (1, 1) -> 4x4
        layer(
            "MaxPooling2D", "max_same", pool_size=[3, 3], strides=[2, 2], padding="same"
        ),  # pads (0, 1) -> 2x2
        layer(
            "Conv2D",
            "conv_same",
            filters=6,
            kernel_size=[2, 2],
            strides=[1, 1],
            padding="same",
            activation="linear",
        ),  # pads (0, 1)
        layer("Activation", "tanh", activation="tanh"),
        layer(
            "AveragePooling2D", "avg_valid", pool_size=[2, 2], strides=[1, 1], padding="valid"
        ),  # -> 1x1
        layer("Flatten", "flatten"),
        layer("Dropout", "dropout", rate=0.25),
        layer("Dense", "dense", units=5, activation="softmax"),
    ],
    "same_strided",
)
SMALL_CNN = with_input(
    (10, 10, 1),
    [
        layer(
            "Conv2D",
            "conv",
            filters=4,
            kernel_size=[3, 3],
            strides=[1, 1],
            padding="valid",
            activation="relu",
        ),
        layer("MaxPooling2D", "pool", pool_size=[2, 2]),
        layer("Flatten", "flatten"),
        layer("Dropout", "dropout", rate=0.0),
        layer("Dense", "dense", units=3, activation="softmax"),
    ],
    "small_cnn",
)


def random_images(shape: tuple[int, ...], count: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).random((count, *shape), dtype=np.float32)


def random_targets(count: int, classes: int, seed: int = 1) -> np.ndarray:
    return np.eye(classes, dtype=np.float32)[
        np.random.default_rng(seed).integers(0, classes, count)
    ]


def keras_summary_params(model: Any) -> dict[str, int]:
    """{layer name: "Param #"} read from the table ``keras_model.summary`` prints (its width
    follows COLUMNS: set it wide enough for all three columns)."""
    lines: list[str] = []
    model.summary(print_fn=lambda text, **_: lines.extend(text.splitlines()))
    rows = [
        [cell.strip() for cell in line.strip("│").split("│")]
        for line in lines
        if line.startswith("│")
    ]
    return {cells[0].split(" (")[0]: int(cells[-1].replace(",", "")) for cells in rows}


def max_diff(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64)).max())


def max_weight_diff(engine: Sequential, keras_model: Any) -> float:
    return max(
        max_diff(ours, theirs)
        for ours, theirs in zip(engine.get_weights(), keras_model.get_weights(), strict=True)
    )


# ------------------------------------------------------------------------- import
def test_importing_the_module_imports_neither_keras_nor_torch() -> None:
    code = (
        "import sys, cnnlab; before = set(sys.modules); import cnnlab.reference.keras as k; "
        "print(sorted({m.split('.')[0] for m in set(sys.modules) - before} & {'keras', 'torch'}), "
        "k.keras_available())"
    )
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout
    assert out.split() == ["[]", "True"]


def test_unsupported_layer_is_named() -> None:
    config = with_input((4, 4, 1), [{"class_name": "LSTM", "config": {"name": "lstm"}}])
    with pytest.raises(ValueError, match="'LSTM'"):
        reference.build_keras_model(config)
    with pytest.raises(ValueError, match="'LSTM'"):
        reference.KerasTrainer(config)


def test_optimizers_carry_the_engine_arguments() -> None:
    sgd = reference.make_keras_optimizer(
        {"name": "sgd", "learning_rate": 0.05, "momentum": 0.9, "nesterov": True}
    )
    assert isinstance(sgd, keras.optimizers.SGD)
    assert (float(sgd.learning_rate), sgd.momentum, sgd.nesterov) == (
        pytest.approx(0.05),
        0.9,
        True,
    )
    adam = reference.make_keras_optimizer("adam")
    assert isinstance(adam, keras.optimizers.Adam)
    assert (adam.beta_1, adam.beta_2, adam.epsilon) == (0.9, 0.999, 1e-7)
    rmsprop = reference.make_keras_optimizer({"name": "rmsprop", "rho": 0.8})
    assert isinstance(rmsprop, keras.optimizers.RMSprop) and rmsprop.rho == 0.8


# ------------------------------------------------------------------------ forward
def test_seed_cnn_has_keras_parameter_counts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "120")
    engine = Sequential.from_config(SEED_CNN, seed=1)
    params = keras_summary_params(reference.build_keras_twin(engine))
    assert params == {name: count for name, _, _, count in engine.summary_rows()}
    assert (params["conv2d"], params["conv2d_1"], params["dense"]) == (320, 18_496, 16_010)


@pytest.mark.parametrize("config", [SEED_CNN, SAME_STRIDED], ids=["seed_cnn", "same_strided"])
def test_forward_pass_equals_keras(config: dict[str, Any]) -> None:
    engine = Sequential.from_config(config, seed=3)
    keras_model = reference.build_keras_model(config, seed=3)  # the same seed: the same start
    assert [tuple(layer.output.shape[1:]) for layer in keras_model.layers] == [
        layer.output_shape for layer in engine.layers
    ]
    x = random_images(engine.input_shape, 64)
    theirs = reference.KerasTrainer(config, seed=3).predict(x, batch_size=32)
    assert theirs.dtype == np.float32
    assert max_diff(engine.predict(x), theirs) < FORWARD_TOLERANCE
    assert max_diff(engine.predict(x), keras_model.predict(x, verbose=0)) < FORWARD_TOLERANCE


def test_average_pooling_with_uneven_same_padding() -> None:
    """The one place Keras's torch backend departs from TensorFlow's rule, which the engine
    follows (divide each window by its real pixels): when any axis needs an odd padding
    total, Keras on torch pads every axis by replicating the edge pixels and averages over
    the whole window. Windows that touch no padding agree."""
    config = with_input(
        (6, 7, 2),
        [layer("AveragePooling2D", "avg", pool_size=[3, 3], strides=[2, 2], padding="same")],
    )
    engine = Sequential.from_config(config)  # H pads (0, 1), W pads (1, 1) -> (3, 4)
    x = random_images((6, 7, 2), 8)
    ours, theirs = engine.predict(x), reference.build_keras_model(config).predict(x, verbose=0)
    assert (
        max_diff(ours[:, :2, 1:3], theirs[:, :2, 1:3]) < FORWARD_TOLERANCE
    )  # the windows inside the image
    padded = np.pad(x, [(0, 0), (0, 1), (1, 1), (0, 0)], mode="edge")  # (8, 7, 9, 2)
    replicated = np.stack(
        [
            np.stack(
                [
                    padded[:, 2 * i : 2 * i + 3, 2 * j : 2 * j + 3].mean(axis=(1, 2))
                    for j in range(4)
                ],
                axis=1,
            )
            for i in range(3)
        ],
        axis=1,
    )
    assert (
        max_diff(theirs, ours) < FORWARD_TOLERANCE
        or max_diff(theirs, replicated) < FORWARD_TOLERANCE
    )


# ----------------------------------------------------------------------- training
def compiled_pair(
    config: dict[str, Any], optimizer: dict[str, Any] | str
) -> tuple[Sequential, Any]:
    engine = Sequential.from_config(config, seed=5)
    engine.compile(optimizer=optimizer, loss="categorical_crossentropy")
    keras_model = reference.build_keras_twin(engine)
    keras_model.compile(
        optimizer=reference.make_keras_optimizer(optimizer),
        loss="categorical_crossentropy",
        jit_compile=False,
    )
    return engine, keras_model


def test_one_sgd_step_equals_keras() -> None:
    engine, keras_model = compiled_pair(SMALL_CNN, {"name": "sgd", "learning_rate": 0.5})
    x, y = random_images((10, 10, 1), 32), random_targets(32, 3)
    loss = engine.train_step(x, y)
    with reference.quiet_keras():
        keras_loss = keras_model.train_on_batch(x, y)
    assert float(keras_loss) == pytest.approx(loss, abs=1e-6)
    assert max_weight_diff(engine, keras_model) < STEP_TOLERANCE


@pytest.mark.parametrize(
    "optimizer",
    [
        "adam",
        {"name": "rmsprop", "learning_rate": 0.003},
        {"name": "sgd", "learning_rate": 0.1, "momentum": 0.9, "nesterov": True},
    ],
    ids=["adam", "rmsprop", "nesterov"],
)
def test_twenty_steps_equal_keras(optimizer: dict[str, Any] | str) -> None:
    """The same update formulas: Adam's lr * sqrt(1 - b2^t) / (1 - b1^t) * m / (sqrt(v) + eps),
    RMSprop's lr * g / sqrt(v + eps), SGD's velocity (cnnlab.engine.optimizers)."""
    engine, keras_model = compiled_pair(SMALL_CNN, optimizer)
    x, y = random_images((10, 10, 1), 64), random_targets(64, 3)
    with reference.quiet_keras():
        for step in range(20):
            batch = slice(16 * (step % 4), 16 * (step % 4 + 1))
            engine.train_step(x[batch], y[batch])
            keras_model.train_on_batch(x[batch], y[batch])
    assert max_weight_diff(engine, keras_model) < STEPS_TOLERANCE


# ------------------------------------------------------------------------ trainer
@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    data = load_dataset("digits")
    return prepare_images(data.x_train[:240]), to_categorical(data.y_train[:240], 10)


DIGITS_CNN = without_dropout(with_input((8, 8, 1), seed_cnn(10, "same"), "digits_cnn"))


def test_trainer_batch_order_equals_the_engine(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """SGD, dropout 0, one epoch with a validation split and a last partial batch: with a copy
    of the engine's shuffling generator Keras ends at the engine's weights; with another
    order it does not."""
    x, y = digits
    sgd = {"name": "sgd", "learning_rate": 0.1}
    fit = dict(
        batch_size=25, epochs=1, validation_split=0.2
    )  # 192 training images: 7 batches of 25 and one of 17
    engine = Sequential.from_config(DIGITS_CNN, seed=7)
    engine.compile(optimizer=sgd, loss="categorical_crossentropy", metrics=["accuracy"])
    trainers = [reference.KerasTrainer(DIGITS_CNN, sgd, seed=7) for _ in range(2)]
    for trainer in trainers:
        trainer.set_weights_from(engine)
    same_order, other_order = copy.deepcopy(engine.shuffle_rng), np.random.default_rng(123)
    history = engine.fit(x, y, verbose=0, **fit).history
    keras_history = trainers[0].fit(x, y, shuffle_rng=same_order, **fit)
    trainers[1].fit(x, y, shuffle_rng=other_order, **fit)
    assert list(keras_history) == ["loss", "accuracy", "val_loss", "val_accuracy"]
    for key, values in history.items():
        assert keras_history[key] == pytest.approx(values, abs=1e-5), key
    assert max_weight_diff(engine, trainers[0].keras_model) < STEPS_TOLERANCE
    assert max_weight_diff(engine, trainers[1].keras_model) > 100 * STEPS_TOLERANCE


def fit_twice(
    config: dict, x: np.ndarray, y: np.ndarray
) -> tuple[list[dict], list[tuple[int, list[str]]], reference.KerasTrainer]:
    """Two KerasTrainers of config (Adam, seed 11), each fit 2 epochs with validation data:
    their histories, the (epoch, sorted log keys) the epoch hook saw, and the second trainer."""
    runs, seen = [], []
    for _ in range(2):
        trainer = reference.KerasTrainer(
            config, "adam", "categorical_crossentropy", seed=11, threads=1
        )
        runs.append(
            trainer.fit(
                x,
                y,
                batch_size=32,
                epochs=2,
                validation_data=(x[:40], y[:40]),
                on_epoch_end=lambda epoch, logs: seen.append((epoch, sorted(logs))),
            )
        )
    return runs, seen, trainer


def test_trainer_interface(digits: tuple[np.ndarray, np.ndarray]) -> None:
    """Keras's history keys, per-epoch hooks and timings; repeatable with a seed (dropout on);
    predict/evaluate/to_engine as TorchTrainer's."""
    x, y = digits
    config = with_input((8, 8, 1), seed_cnn(10, "same"), "digits_cnn")  # Dropout(0.5)
    runs, seen, trainer = fit_twice(config, x, y)
    assert runs[0] == runs[1]
    assert (
        sorted(runs[0]) == ["accuracy", "loss", "val_accuracy", "val_loss"]
        and len(runs[0]["loss"]) == 2
    )
    assert seen[:2] == [
        (0, ["accuracy", "loss", "val_accuracy", "val_loss"]),
        (1, ["accuracy", "loss", "val_accuracy", "val_loss"]),
    ]
    assert len(trainer.epoch_seconds) == 2 and all(s > 0 for s in trainer.epoch_seconds)
    probabilities = trainer.predict(x, batch_size=100)
    assert probabilities.dtype == np.float32 and probabilities.shape == (240, 10)
    loss, accuracy = trainer.evaluate(x[:40], y[:40])
    assert (loss, accuracy) == pytest.approx(
        (runs[1]["val_loss"][-1], runs[1]["val_accuracy"][-1]), abs=1e-6
    )
    engine = trainer.to_engine()
    assert engine is trainer.engine_model and engine.optimizer is not None
    assert max_diff(engine.predict(x), probabilities) < FORWARD_TOLERANCE
    other = trainer.to_engine(Sequential.from_config(config, seed=0))
    assert all(
        np.array_equal(a, b) for a, b in zip(other.get_weights(), engine.get_weights(), strict=True)
    )
