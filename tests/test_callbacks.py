"""Callbacks as Keras 3 calls them, and Keras's progress bar (cnnlab.engine.callbacks).

A stub model is driven exactly as the engine's fit, evaluate and predict drive a
CallbackList. Where Keras 3 is installed it is the oracle: the same calls on Keras's own
CallbackList, ProgbarLogger, ReduceLROnPlateau, LearningRateScheduler, EarlyStopping and
CSVLogger must give the same hook sequence, the same bytes on the terminal, the same
learning rates, the same stopping epoch and the same file.
"""

from __future__ import annotations

import io
import math
import os
import types
from typing import Any

import numpy as np
import pytest

from cnnlab.engine import callbacks as cb
from cnnlab.engine.errors import UnsupportedKerasFeature

TRAIN_LOGS = [
    {"loss": np.float32(0.75), "accuracy": 0.25},
    {"loss": 0.5, "accuracy": np.float64(0.5)},
]
VAL_LOGS = {"loss": 0.4, "accuracy": 0.75}


class StubOptimizer:
    def __init__(self, learning_rate: float = 0.01) -> None:
        self.learning_rate = learning_rate


class StubModel:
    """What callbacks touch on a model: stop_training, history, optimizer, weights, saving."""

    def __init__(self) -> None:
        self.stop_training = False
        self.optimizer = StubOptimizer()
        self.weights = [np.zeros(2)]
        self.saved: list[tuple[str, str]] = []
        self.last_epoch_seconds = 1.5

    def get_weights(self) -> list[np.ndarray]:
        return [w.copy() for w in self.weights]

    def set_weights(self, weights: list[np.ndarray]) -> None:
        self.weights = [np.array(w) for w in weights]

    def save(self, path: str) -> None:
        self.saved.append(("save", path))

    def save_weights(self, path: str) -> None:
        self.saved.append(("save_weights", path))


def drive_fit(
    hooks: Any, model: Any, epochs: int = 2, steps: int = 2, validate: bool = True
) -> None:
    """The engine's fit loop, as far as callbacks see it."""
    model.stop_training = False
    hooks.on_train_begin()
    logs: dict = {}
    for epoch in range(epochs):
        hooks.on_epoch_begin(epoch)
        for step in range(steps):
            hooks.on_train_batch_begin(step)
            hooks.on_train_batch_end(step, TRAIN_LOGS[step % 2])
            if model.stop_training:
                break
        logs = dict(TRAIN_LOGS[1])
        if validate:
            hooks.on_test_begin()
            hooks.on_test_batch_begin(0)
            hooks.on_test_batch_end(0, VAL_LOGS)
            hooks.on_test_end(VAL_LOGS)
            logs.update({f"val_{key}": value for key, value in VAL_LOGS.items()})
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    hooks.on_train_end(logs)


def recorder_class(base: type) -> type:
    """A callback class that records every hook it receives, except on_train_batch_begin/_end:
    those are the base class's, which must call the on_batch_begin/_end aliases."""

    def hook(name: str) -> Any:
        def record(self: Any, *args: Any, **kwargs: Any) -> None:
            if "logs" in kwargs:  # Keras passes logs by keyword to the batch hooks
                self.calls.append((name, *args, dict(kwargs["logs"] or {})))
                self.by_keyword.append(name)
            else:
                self.calls.append((name, *args[:-1], dict(args[-1] or {})))

        return record

    names = [h for h in cb.HOOKS if h not in ("on_train_batch_begin", "on_train_batch_end")]
    return type("Recorder", (base,), {name: hook(name) for name in names})


def make_recorder(base: type) -> Any:
    callback = recorder_class(base)()
    callback.calls, callback.by_keyword = [], []
    return callback


def our_list(
    callbacks: list,
    model: Any,
    verbose: Any = 0,
    epochs: int = 2,
    steps: int = 2,
    history: bool = True,
) -> cb.CallbackList:
    return cb.CallbackList(
        callbacks,
        add_history=history,
        add_progbar=verbose != 0,
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )


@pytest.fixture(scope="module")
def keras() -> Any:
    pytest.importorskip("torch")
    from cnnlab.reference.keras import import_keras

    try:
        return import_keras()
    except ImportError as err:
        pytest.skip(str(err))


# ------------------------------------------------------------------------ hook calls
def test_fit_calls_every_hook_in_keras_order_with_keras_arguments():
    model = StubModel()
    recorder = make_recorder(cb.Callback)
    hooks = our_list([recorder], model)
    drive_fit(hooks, model, epochs=1)
    batch_logs = [{"accuracy": 0.25, "loss": 0.75}, {"accuracy": 0.5, "loss": 0.5}]
    assert recorder.calls == [
        ("on_train_begin", {}),
        ("on_epoch_begin", 0, {}),
        ("on_batch_begin", 0, {}),
        ("on_batch_end", 0, batch_logs[0]),
        ("on_batch_begin", 1, {}),
        ("on_batch_end", 1, batch_logs[1]),
        ("on_test_begin", {}),
        ("on_test_batch_begin", 0, {}),
        ("on_test_batch_end", 0, VAL_LOGS),
        ("on_test_end", VAL_LOGS),
        ("on_epoch_end", 0, {**batch_logs[1], "val_accuracy": 0.75, "val_loss": 0.4}),
        ("on_train_end", {**batch_logs[1], "val_accuracy": 0.75, "val_loss": 0.4}),
    ]
    assert recorder.params == {"verbose": 0, "epochs": 2, "steps": 2}
    assert recorder.model is model


@pytest.mark.torch
def test_hook_sequence_matches_keras_callback_list(keras):
    ours, theirs = make_recorder(cb.Callback), make_recorder(keras.callbacks.Callback)
    keras_model = StubModel()
    drive_fit(
        keras.callbacks.CallbackList(
            [theirs], add_history=True, model=keras_model, verbose=0, epochs=2, steps=2
        ),
        keras_model,
    )
    model = StubModel()
    drive_fit(our_list([ours], model), model)
    assert ours.calls == theirs.calls
    assert ours.by_keyword == theirs.by_keyword
    assert len(ours.calls) == 22 and len(ours.by_keyword) == 12
    assert ours.params == theirs.params
    assert model.history.history == keras_model.history.history


def test_callback_list_adds_history_then_progbar_after_the_users_callbacks_and_sets_model_history():
    model, user = StubModel(), cb.Callback()
    hooks = our_list([user], model, verbose=1)
    assert [type(c) for c in hooks.callbacks] == [cb.Callback, cb.History, cb.ProgbarLogger]
    assert model.history is hooks.history
    assert all(
        c.model is model and c.params == {"verbose": 1, "epochs": 2, "steps": 2}
        for c in hooks.callbacks
    )
    assert [type(c) for c in our_list([user], model, verbose=0).callbacks] == [
        cb.Callback,
        cb.History,
    ]
    mine = cb.ProgbarLogger()
    nested = our_list([[user], mine], model, verbose=1)
    assert nested.callbacks[:2] == [user, mine] and nested.progbar is mine
    assert [type(c) for c in nested.callbacks] == [
        cb.Callback,
        cb.ProgbarLogger,
        cb.History,
    ]  # no second bar


def test_history_records_logs_epochs_and_epoch_seconds():
    model = StubModel()
    hooks = our_list([], model)
    drive_fit(hooks, model, epochs=3)
    history = hooks.history
    assert history.epoch == [0, 1, 2]
    assert history.history == {
        "accuracy": [0.5] * 3,
        "loss": [0.5] * 3,
        "val_accuracy": [0.75] * 3,
        "val_loss": [0.4] * 3,
    }
    assert history.epoch_seconds == [1.5] * 3
    assert model.history is history


def test_on_batch_end_alias_stops_training_right_after_that_batch():
    model, batches = StubModel(), []

    class StopAtBatchOne(cb.Callback):
        def on_batch_end(self, batch, logs=None):
            batches.append(batch)
            if batch == 1:
                self.model.stop_training = True

    drive_fit(our_list([StopAtBatchOne()], model), model, epochs=3, steps=5)
    assert batches == [0, 1]
    assert model.stop_training
    assert model.history.epoch == [0]  # the epoch ends, the next never starts


def test_overriding_on_train_batch_end_replaces_the_alias_as_in_keras():
    seen = []

    class Both(cb.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append("train_batch_end")

        def on_batch_end(self, batch, logs=None):
            seen.append("batch_end")

    hooks = our_list([Both()], StubModel())
    hooks.on_train_batch_end(0, {})
    hooks.on_batch_end(0, {})
    assert seen == ["train_batch_end", "batch_end"]


def test_logs_reach_callbacks_sorted_flattened_and_as_floats():
    recorder = make_recorder(cb.Callback)
    hooks = our_list([recorder], StubModel())
    outputs = np.ones((3, 2), np.float32)
    hooks.on_epoch_end(
        0, {"val_loss": np.float32(0.5), "loss": np.array(0.25), "extra": {"b": 1, "a": "x"}}
    )
    hooks.on_predict_batch_end(0, {"outputs": outputs})
    (_, _, logs), (_, _, predicted) = recorder.calls
    assert list(logs) == ["a", "b", "loss", "val_loss"]
    assert logs == {"a": "x", "b": 1.0, "loss": 0.25, "val_loss": 0.5}
    assert all(type(logs[k]) is float for k in ("b", "loss", "val_loss"))
    assert predicted["outputs"] is outputs


def test_the_old_positional_call_still_sets_the_model():
    model, callback = StubModel(), cb.Callback()
    hooks = cb.CallbackList([callback], model)
    assert callback.model is model and hooks.history is None


# ---------------------------------------------------------------------- progress bar
class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch) -> Clock:
    """One fake clock for cnnlab's progress bar (and Keras's, once imported)."""
    fake = Clock()
    monkeypatch.setattr(cb.progbar, "time", types.SimpleNamespace(time=fake.time))
    return fake


def progress_run(hooks: Any, clock: Clock, kind: str, steps: int, seconds: float) -> None:
    """fit (2 epochs with validation), evaluate or predict, ``seconds`` per batch."""
    if kind == "fit":
        hooks.on_train_begin()
        for epoch in range(2):
            hooks.on_epoch_begin(epoch)
            for step in range(steps):
                clock.now += seconds
                hooks.on_train_batch_end(step, {"loss": 1.0 / (step + 1), "accuracy": step / steps})
            hooks.on_test_begin()
            hooks.on_test_batch_end(0, VAL_LOGS)
            hooks.on_test_end(VAL_LOGS)
            hooks.on_epoch_end(
                epoch,
                {
                    "accuracy": 0.98,
                    "loss": 0.0005,
                    "val_accuracy": 0.99,
                    "val_loss": 0.0827,
                    "val_r": -0.5,
                },
            )
        hooks.on_train_end({})
    else:
        hook = "test" if kind == "evaluate" else "predict"
        getattr(hooks, f"on_{hook}_begin")()
        for step in range(steps):
            clock.now += seconds
            logs = (
                {"outputs": np.zeros((2, 2))}
                if kind == "predict"
                else {"accuracy": 0.5, "loss": 0.25}
            )
            getattr(hooks, f"on_{hook}_batch_end")(step, logs)
        getattr(hooks, f"on_{hook}_end")(
            {} if kind == "predict" else {"accuracy": 0.9772, "loss": 0.0827}
        )


def our_progress(
    clock: Clock, kind: str, verbose: Any, steps: int, seconds: float, stream: io.StringIO
) -> str:
    clock.now = 1000.0
    epochs = 2 if kind == "fit" else 1
    hooks = cb.CallbackList(
        [cb.ProgbarLogger(stream=stream)],
        model=StubModel(),
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )
    progress_run(hooks, clock, kind, steps, seconds)
    return stream.getvalue()


def keras_progress(
    keras: Any, clock: Clock, kind: str, verbose: Any, steps: int, seconds: float, capsys
) -> str:
    capsys.readouterr()
    clock.now = 1000.0
    epochs = 2 if kind == "fit" else 1
    hooks = keras.callbacks.CallbackList(
        [keras.callbacks.ProgbarLogger()],
        model=StubModel(),
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )
    progress_run(hooks, clock, kind, steps, seconds)
    return capsys.readouterr().out


def final_lines(terminal_output: str) -> list[str]:
    """What a terminal shows once everything is drawn: each line's last redraw, without colours."""
    lines = [
        cb.ANSI_CODE.sub("", line.split("\r")[-1]).replace("\b", "")
        for line in terminal_output.split("\n")
    ]
    return [line.rstrip() for line in lines if line]


PROGRESS_CASES = [  # kind, verbose, steps, seconds per step
    ("fit", 1, 5, 0.03),
    ("fit", "auto", 12, 0.0004),
    ("fit", 1, 3, 2.5),
    ("fit", 2, 422, 0.016),
    ("evaluate", 1, 313, 0.002),
    ("evaluate", 2, 7, 0.2),
    ("predict", 1, 40, 1.7),
    ("predict", 2, 3, 0.01),
]


@pytest.mark.torch
@pytest.mark.parametrize(("kind", "verbose", "steps", "seconds"), PROGRESS_CASES)
def test_progress_bar_writes_kerass_bytes_on_a_terminal(
    keras, clock, monkeypatch, capsys, kind, verbose, steps, seconds
):
    import keras.src.utils.progbar as keras_progbar

    monkeypatch.setattr(keras_progbar, "time", types.SimpleNamespace(time=clock.time))
    expected = keras_progress(keras, clock, kind, verbose, steps, seconds, capsys)
    assert our_progress(clock, kind, verbose, steps, seconds, Terminal()) == expected
    plain = our_progress(clock, kind, verbose, steps, seconds, io.StringIO())
    assert plain.splitlines() == final_lines(
        expected
    )  # elsewhere: the finished lines only, no escapes


def test_progress_line_has_kerass_documented_format(clock):
    stream = io.StringIO()
    logger = cb.ProgbarLogger(stream=stream)
    cb.CallbackList([logger], model=StubModel(), verbose=1, epochs=15, steps=422)
    logger.on_train_begin()
    logger.on_epoch_begin(0)
    clock.now += 0.2
    logger.on_train_batch_end(0, {"accuracy": 0.1, "loss": 2.3})
    for step in range(1, 422):
        clock.now += 0.016
        logger.on_train_batch_end(step, {"accuracy": 0.7, "loss": 0.8})
    logger.on_epoch_end(
        0, {"accuracy": 0.7684, "loss": 0.7493, "val_accuracy": 0.9772, "val_loss": 0.0827}
    )
    assert stream.getvalue() == (
        "Epoch 1/15\n422/422 ━━━━━━━━━━━━━━━━━━━━ 7s 16ms/step - accuracy: 0.7684 - "
        "loss: 0.7493 - val_accuracy: 0.9772 - val_loss: 0.0827\n"
    )


@pytest.mark.parametrize(
    ("seconds", "shown"), [(0.0004, "400us/step"), (0.016, "16ms/step"), (2.5, "2s/step")]
)
def test_time_per_step_units(seconds, shown):
    assert cb.format_time_per_unit(seconds, "step") == f" {shown}"


def test_verbose_2_writes_one_line_per_epoch_and_no_epoch_line_for_a_single_epoch(clock):
    stream = Terminal()
    hooks = cb.CallbackList(
        [cb.ProgbarLogger(stream=stream)], model=StubModel(), verbose=2, epochs=1, steps=2
    )
    hooks.on_train_begin()
    hooks.on_epoch_begin(0)
    for step in range(2):
        clock.now += 0.5
        hooks.on_train_batch_end(step, {"loss": 0.5})
    hooks.on_epoch_end(0, {"loss": 0.25, "val_loss": 0.0001})
    assert stream.getvalue() == "2/2 - 1s - 500ms/step - loss: 0.2500 - val_loss: 1.0000e-04\n"


# --------------------------------------------------------------------- learning rate
VAL_LOSSES = [1.0, 0.9, 0.95, 0.9, 0.91, 0.92, 0.93, 0.8, 0.85, 0.86, 0.87, 0.88, 0.89, 0.9, 0.91]


def lr_sequence(
    callback: Any, model: StubModel, values: list[float], monitor: str = "val_loss"
) -> tuple[list, list]:
    """The learning rate after each epoch, and the logs each epoch ended with."""
    callback.set_model(model)
    callback.on_train_begin({})
    rates, seen = [], []
    for epoch, value in enumerate(values):
        callback.on_epoch_begin(epoch, {})
        logs = {monitor: value}
        callback.on_epoch_end(epoch, logs)
        rates.append(model.optimizer.learning_rate)
        seen.append(logs)
    return rates, seen


REDUCE_CASES = [
    {"factor": 0.5, "patience": 2},
    {"factor": 0.5, "patience": 1, "cooldown": 2, "min_lr": 0.002},
    {"factor": 0.2, "patience": 2, "min_delta": 0.05},
    {"monitor": "val_accuracy", "mode": "max", "factor": 0.5, "patience": 2},
    {"monitor": "val_loss", "mode": "max", "factor": 0.1, "patience": 3},
]


@pytest.mark.torch
@pytest.mark.parametrize("arguments", REDUCE_CASES)
def test_reduce_lr_on_plateau_matches_keras(keras, arguments):
    monitor = arguments.get("monitor", "val_loss")
    ours = lr_sequence(cb.ReduceLROnPlateau(**arguments), StubModel(), VAL_LOSSES, monitor)
    theirs = lr_sequence(
        keras.callbacks.ReduceLROnPlateau(**arguments), StubModel(), VAL_LOSSES, monitor
    )
    assert ours == theirs
    assert len(set(ours[0])) > 1  # the rate did change
    assert ours[1][0]["learning_rate"] == 0.01


def test_reduce_lr_on_plateau_schedule_by_hand():
    rates, _ = lr_sequence(
        cb.ReduceLROnPlateau(factor=0.5, patience=2, min_lr=0.003),
        StubModel(),
        [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0],
    )
    assert rates == [0.01, 0.01, 0.005, 0.005, 0.003, 0.003, 0.003]
    with pytest.raises(ValueError, match="factor >= 1.0"):
        cb.ReduceLROnPlateau(factor=1.5)


def test_unknown_monitor_direction_asks_for_a_mode():
    callback = cb.ReduceLROnPlateau(monitor="val_custom")
    callback.set_model(StubModel())
    with pytest.raises(ValueError, match=r"monitor=val_custom.*Pass `mode='max'`"):
        callback.on_epoch_end(0, {"val_custom": 1.0})


SCHEDULES = [
    lambda epoch, lr: lr if epoch < 2 else lr * 0.5,
    lambda epoch: 0.1 / (epoch + 1),  # the older one-argument form
    lambda epoch, lr: float(np.float32(lr * 0.9)),
]


@pytest.mark.torch
@pytest.mark.parametrize("schedule", SCHEDULES)
def test_learning_rate_scheduler_matches_keras(keras, schedule, capsys):
    ours = lr_sequence(cb.LearningRateScheduler(schedule, verbose=1), StubModel(), VAL_LOSSES[:6])
    printed = capsys.readouterr().out
    theirs = lr_sequence(
        keras.callbacks.LearningRateScheduler(schedule, verbose=1), StubModel(), VAL_LOSSES[:6]
    )
    assert ours == theirs
    assert printed == capsys.readouterr().out
    assert "Epoch 3: LearningRateScheduler setting learning rate to" in printed


def test_learning_rate_scheduler_by_hand():
    rates, logs = lr_sequence(
        cb.LearningRateScheduler(lambda epoch, lr: 0.1 * 0.5**epoch), StubModel(), [1.0] * 3
    )
    assert rates == [0.1, 0.05, 0.025]
    assert [entry["learning_rate"] for entry in logs] == rates
    callback = cb.LearningRateScheduler(lambda epoch, lr: 1)
    callback.set_model(StubModel())
    with pytest.raises(ValueError, match="should be a float. Got: 1"):
        callback.on_epoch_begin(0)


# --------------------------------------------------------------------- early stopping
def stopping_run(
    callback: Any, values: list[float], monitor: str = "val_loss"
) -> tuple[int | None, np.ndarray]:
    """(epoch at which training stopped or None, the weights at the end); weights = epoch number."""
    model = StubModel()
    callback.set_model(model)
    callback.on_train_begin({})
    stopped = None
    for epoch, value in enumerate(values):
        model.weights = [np.array([float(epoch)])]
        callback.on_epoch_end(epoch, {monitor: value})
        if model.stop_training:
            stopped = epoch
            break
    callback.on_train_end({})
    return stopped, model.weights[0]


EARLY_CASES = [
    {"patience": 0},
    {"patience": 2},
    {"patience": 2, "restore_best_weights": True},
    {"patience": 2, "min_delta": 0.06, "restore_best_weights": True},
    {"patience": 3, "baseline": 0.85},
    {"patience": 1, "start_from_epoch": 4, "restore_best_weights": True},
    {"monitor": "val_accuracy", "mode": "max", "patience": 2, "restore_best_weights": True},
    {
        "patience": 50,
        "restore_best_weights": True,
    },  # never stops: the best weights are restored at the end
]


@pytest.mark.torch
@pytest.mark.parametrize("arguments", EARLY_CASES)
def test_early_stopping_matches_keras(keras, arguments):
    monitor = arguments.get("monitor", "val_loss")
    ours = stopping_run(cb.EarlyStopping(**arguments), VAL_LOSSES, monitor)
    theirs = stopping_run(keras.callbacks.EarlyStopping(**arguments), VAL_LOSSES, monitor)
    assert ours[0] == theirs[0]
    np.testing.assert_array_equal(ours[1], theirs[1])


def test_early_stopping_by_hand(capsys):
    stopped, weights = stopping_run(
        cb.EarlyStopping(patience=2, restore_best_weights=True, verbose=1), VAL_LOSSES
    )
    assert (
        stopped == 3
    )  # best 0.9 at epoch 1; epochs 2 (0.95) and 3 (0.9 again, not better) make patience 2
    assert weights.tolist() == [1.0]
    assert capsys.readouterr().out == (
        "Epoch 4: early stopping\nRestoring model weights from the end of the best epoch: 2.\n"
    )
    accuracy = cb.EarlyStopping(monitor="val_accuracy", patience=1)
    stopped, _ = stopping_run(accuracy, [0.5, 0.6, 0.55], "val_accuracy")
    assert stopped == 2  # mode "auto": an accuracy goes up
    with pytest.warns(
        UserWarning, match="`val_loss` which is not available. Available metrics are: loss"
    ):
        cb.EarlyStopping().on_epoch_end(0, {"loss": 1.0})


# ------------------------------------------------------------------------- checkpoints
def test_model_checkpoint_formats_the_path_and_saves_the_best_only(tmp_path):
    model = StubModel()
    path = tmp_path / "runs" / "{epoch:02d}-{val_loss:.2f}.keras"
    callback = cb.ModelCheckpoint(path, save_best_only=True)
    callback.set_model(model)
    for epoch, value in enumerate([0.5, 0.6, 0.4]):
        callback.on_epoch_end(epoch, {"val_loss": value})
    assert model.saved == [
        ("save", str(tmp_path / "runs" / "01-0.50.keras")),
        ("save", str(tmp_path / "runs" / "03-0.40.keras")),
    ]
    assert (tmp_path / "runs").is_dir()


def test_model_checkpoint_weights_only_every_epoch_and_its_errors(tmp_path):
    model = StubModel()
    callback = cb.ModelCheckpoint(
        str(tmp_path / "w{epoch}.weights.h5"), monitor="accuracy", save_weights_only=True
    )
    callback.set_model(model)
    for epoch in range(2):
        callback.on_epoch_end(epoch, {"accuracy": 0.5})
    assert model.saved == [
        ("save_weights", str(tmp_path / "w1.weights.h5")),
        ("save_weights", str(tmp_path / "w2.weights.h5")),
    ]
    with pytest.raises(
        UnsupportedKerasFeature, match=r"save_freq=100 .* cnnlab saves with save_freq='epoch'"
    ):
        cb.ModelCheckpoint("m.keras", save_freq=100)
    with pytest.raises(ValueError, match="Unrecognized save_freq: batch"):
        cb.ModelCheckpoint("m.keras", save_freq="batch")
    missing = cb.ModelCheckpoint(str(tmp_path / "{val_acc:.2f}.keras"))
    missing.set_model(model)
    with pytest.raises(KeyError, match="Failed to format this callback filepath"):
        missing.on_epoch_end(0, {"val_loss": 1.0})


# ---------------------------------------------------------------------------- CSVLogger
CSV_EPOCHS = [
    {"loss": 0.5, "accuracy": 0.25, "val_loss": 0.625, "val_accuracy": 0.5},
    {"loss": 0.25, "accuracy": 0.75, "val_loss": 0.375, "val_accuracy": 0.875},
]


def csv_run(logger_class: type, path: str, epochs: list[dict], **arguments: Any) -> str:
    logger = logger_class(path, **arguments)
    logger.set_model(StubModel())
    logger.on_train_begin({})
    for epoch, logs in enumerate(epochs):
        logger.on_epoch_end(epoch, dict(logs))
    logger.on_train_end({})
    with open(path, newline="") as file:
        return file.read()


def test_csv_logger_writes_keras_columns(tmp_path):
    path = str(tmp_path / "log.csv")
    assert csv_run(cb.CSVLogger, path, CSV_EPOCHS) == (
        "epoch,accuracy,loss,val_accuracy,val_loss\r\n"
        "0,0.25,0.5,0.5,0.625\r\n1,0.75,0.25,0.875,0.375\r\n"
    )
    appended = csv_run(cb.CSVLogger, path, CSV_EPOCHS[:1], append=True)
    assert appended.count("epoch,") == 1 and appended.endswith("0,0.25,0.5,0.5,0.625\r\n")
    without_validation = csv_run(cb.CSVLogger, path, [{"loss": 0.5}], separator=";")
    assert without_validation == "epoch;loss;val_loss\r\n0;0.5;NA\r\n"


@pytest.mark.torch
@pytest.mark.parametrize("arguments", [{}, {"separator": ";"}, {"append": True}])
def test_csv_logger_file_equals_kerass(keras, tmp_path, arguments):
    epochs = [*CSV_EPOCHS, {"loss": 0.125, "accuracy": 1.0, "val_loss": 1 / 3, "val_accuracy": 0.9}]
    for logger_class, name in (
        (cb.CSVLogger, "ours.csv"),
        (keras.callbacks.CSVLogger, "keras.csv"),
    ):
        (tmp_path / name).write_text("epoch,loss\n0,9\n")
        csv_run(logger_class, str(tmp_path / name), epochs, **arguments)
    assert (tmp_path / "ours.csv").read_bytes() == (tmp_path / "keras.csv").read_bytes()
    nan_row = csv_run(cb.CSVLogger, str(tmp_path / "nan.csv"), [{"loss": math.nan}])
    assert nan_row == "epoch,loss,val_loss\r\n0,nan,NA\r\n"


def test_csv_logger_refuses_a_symbolic_link(tmp_path):
    target = tmp_path / "elsewhere.txt"
    target.write_text("keep me")
    link = tmp_path / "log.csv"
    os.symlink(target, link)
    with pytest.raises(
        ValueError, match="log.csv is a symbolic link; give the path of a regular file"
    ):
        csv_run(cb.CSVLogger, str(link), CSV_EPOCHS)
    with pytest.raises(ValueError, match="symbolic link"):
        csv_run(cb.CSVLogger, str(link), CSV_EPOCHS, append=True)
    assert target.read_text() == "keep me"


# --------------------------------------------------------------- TerminateOnNaN, Lambda
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_terminate_on_nan_stops_after_the_batch(bad, capsys):
    model = StubModel()
    hooks = our_list([cb.TerminateOnNaN()], model)
    hooks.on_train_batch_end(0, {"loss": 1.0})
    assert not model.stop_training
    hooks.on_train_batch_end(1, {"loss": bad})
    assert model.stop_training
    assert capsys.readouterr().out == "Batch 1: Invalid loss, terminating training\n"
    raising = our_list([cb.TerminateOnNaN(raise_error=True)], StubModel())
    with pytest.raises(RuntimeError, match="NaN or Inf loss encountered at batch 3"):
        raising.on_train_batch_end(3, {"loss": bad})


def test_lambda_callback_takes_any_hook():
    seen = []
    callback = cb.LambdaCallback(
        on_batch_end=lambda batch, logs: seen.append(("batch", batch)),
        on_test_end=lambda logs: seen.append(("test", logs["loss"])),
        on_predict_begin=lambda logs: seen.append(("predict",)),
    )
    model = StubModel()
    hooks = our_list([callback], model)
    drive_fit(hooks, model, epochs=1, steps=2)
    hooks.on_predict_begin()
    assert seen == [("batch", 0), ("batch", 1), ("test", 0.4), ("predict",)]
    with pytest.raises(ValueError, match="LambdaCallback: unknown hook 'on_epoch_ends'"):
        cb.LambdaCallback(on_epoch_ends=print)


@pytest.mark.parametrize("name", ["TensorBoard", "RemoteMonitor", "SwapEMAWeights"])
def test_unsupported_keras_callbacks_say_so_in_one_line(name):
    with pytest.raises(
        UnsupportedKerasFeature,
        match=rf"^keras.callbacks.{name} is not supported by cnnlab \(.*"
        r"supported callbacks: .*CSVLogger",
    ) as caught:
        getattr(cb, name)(log_dir="logs")
    assert "\n" not in str(caught.value)
