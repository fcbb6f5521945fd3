"""The loops of ``fit``, ``evaluate`` and ``predict`` around the model's own training step, and
their pieces: Keras's argument checks, the validation split, the plan of one fit's epochs, the
callback lists (History and the progress bar added as Keras adds them), the epoch and test loops,
running totals of the loss and metrics, the divergence guard and the batched predictions.

``Model`` (model.py) keeps Keras's methods and calls these; the loops call the model's methods
(``train_epoch``, ``train_step``, ``test_loop``, ``forward``), so a subclass still sees them.
The only random draw is ``train_epoch``'s shuffle, one permutation per epoch."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from . import metrics as metrics_module
from .batches import training_count
from .callbacks import Callback, CallbackList, TerminateOnNaN
from .config import floatx
from .errors import UnsupportedKerasFeature
from .model_inputs import Data, sample_count, take

if TYPE_CHECKING:
    from .model import Model


class TrainingDiverged(ValueError):
    """The loss or a gradient became NaN or infinite; the message names where and when."""


# ------------------------------------------------------------------------ compile
def check_compile_arguments(
    name: str,
    loss: Any,
    metrics: Any,
    loss_weights: Any,
    weighted_metrics: Any,
    steps_per_execution: int,
) -> None:
    """Refuse what compile() cannot honour: no loss, per-output losses, Keras-only settings."""
    if loss is None:
        raise ValueError(f"{name}: compile() needs a loss, e.g. loss='categorical_crossentropy'")
    for argument, value, default in (
        ("loss_weights", loss_weights, None),
        ("weighted_metrics", weighted_metrics, None),
        ("steps_per_execution", steps_per_execution, 1),
    ):
        if value != default:
            raise UnsupportedKerasFeature(
                f"{name}.compile: {argument}={value!r} is not supported by cnnlab"
            )
    if (
        isinstance(loss, (list, tuple))
        or isinstance(loss, dict)
        and "name" not in loss
        or isinstance(metrics, dict)
    ):
        raise UnsupportedKerasFeature(
            f"{name}.compile: one loss per output (a list or dict of losses) is not "
            "supported by cnnlab: models have one output"
        )


# ---------------------------------------------------------------------------- fit
@dataclass(frozen=True)
class EpochPlan:
    """What each epoch of one fit does (fit's arguments): batches of ``batch_size``, shuffled or
    not, then validation on ``validation_data`` every ``validation_freq`` epochs."""

    batch_size: int
    epochs: int
    shuffle: bool
    validation_data: tuple[Data, np.ndarray] | None
    validation_batch_size: int | None  # None: batch_size
    validation_freq: int


def check_batch_size(batch_size: int) -> int:
    if not isinstance(batch_size, (int, np.integer)) or batch_size <= 0:
        raise ValueError(f"batch_size must be a positive int, received {batch_size!r}")
    return int(batch_size)


def split_validation(
    x: Data, y: np.ndarray, fraction: float
) -> tuple[Data, np.ndarray, tuple[Data, np.ndarray]]:
    """Keras's rule: the last floor-complement fraction is validation, in the given order."""
    if not 0 < fraction < 1:
        raise ValueError(f"validation_split must be between 0 and 1, received {fraction!r}")
    split_at = training_count(len(y), fraction)
    if split_at in (0, len(y)):
        raise ValueError(f"{len(y)} samples are too few to split with validation_split={fraction}")
    return (
        take(x, slice(None, split_at)),
        y[:split_at],
        (take(x, slice(split_at, None)), y[split_at:]),
    )


def fit_validation(
    model: Model,
    x: Data,
    y: np.ndarray,
    validation_split: float,
    validation_data: tuple[Data, np.ndarray] | None,
) -> tuple[Data, np.ndarray, tuple[Data, np.ndarray] | None]:
    """(x, y, validation data) of a fit: the last fraction split off, or the given validation
    data checked like x and y."""
    if validation_data is None and validation_split:
        return split_validation(x, y, validation_split)
    if validation_data is not None:
        validation_data = model.standardize(*validation_data[:2], "fit validation_data")
    return x, y, validation_data


def fit_hooks(
    model: Model, callbacks: Any, verbose: int | str, epochs: int, steps: int
) -> CallbackList:
    """The CallbackList of one fit (the user's callbacks, then History and the progress bar);
    resets the model's stop flag and resume epoch and sets its divergence guard."""
    hooks = CallbackList(
        callbacks,
        add_history=True,
        add_progbar=verbose not in (0, False),
        model=model,
        verbose=verbose,
        epochs=epochs,
        steps=steps,
    )
    model.history = hooks.history
    model.stop_training, model.resume_epoch = False, 0
    # a TerminateOnNaN in the list takes over from the guard: Keras stops after the batch
    # instead
    model.divergence_guard = not any(isinstance(c, TerminateOnNaN) for c in hooks.callbacks)
    return hooks


def epochs_loop(
    model: Model, x: Data, y: np.ndarray, plan: EpochPlan, first: int, hooks: Callback
) -> dict[str, float]:
    """Epochs first..plan.epochs-1, each with its validation; stops early when a callback
    asks."""
    logs: dict[str, float] = {}
    for epoch in range(first, plan.epochs):
        model.epoch = epoch
        hooks.on_epoch_begin(epoch)
        logs = model.train_epoch(x, y, plan.batch_size, plan.shuffle, hooks)
        if plan.validation_data is not None and (epoch + 1) % plan.validation_freq == 0:
            val_batch_size = plan.validation_batch_size or plan.batch_size
            val_logs = model.test_loop(*plan.validation_data, val_batch_size, hooks)
            logs.update({f"val_{key}": value for key, value in val_logs.items()})
        hooks.on_epoch_end(epoch, logs)
        if model.stop_training:
            break
    return logs


def train_epoch(
    model: Model, x: Data, y: np.ndarray, batch_size: int, shuffle: bool, hooks: Callback
) -> dict[str, float]:
    """One pass over the data in mini-batches; the logs are sample-weighted means."""
    order = (
        model.shuffle_rng.permutation(sample_count(x)) if shuffle else np.arange(sample_count(x))
    )
    totals = Totals(model.metrics)
    start = time.perf_counter()
    for step, begin in enumerate(range(0, len(order), batch_size)):
        batch = order[begin : begin + batch_size]
        model.step = step
        hooks.on_train_batch_begin(step)
        with np.errstate(over="ignore", invalid="ignore"):  # the divergence guard reports these
            y_batch = y[batch]
            totals.add(
                model.train_step(take(x, batch), y_batch), y_batch, model.last_output, len(batch)
            )
        hooks.on_train_batch_end(step, totals.logs())
        model.thread_fitter.tick()
        if model.stop_training:
            break
    model.last_epoch_seconds = time.perf_counter() - start
    return totals.logs()


def check_finite(model: Model, loss: float, arrays: str) -> None:
    """The divergence guard: NaN or infinity in the loss, the gradients (checked before the
    update, so a bad gradient never reaches the weights) or the weights (after it)."""
    values = model.grads if arrays == "grads" else model.weights_dict()
    broken = next((key for key, value in values.items() if not np.isfinite(value).all()), None)
    if math.isfinite(loss) and broken is None:
        return
    layer = broken.rsplit("/", 1)[0] if broken else None
    where = (
        f"first in the {'gradient' if arrays == 'grads' else 'weights'} of layer '{layer}'"
        if broken
        else "in the loss"
    )
    raise TrainingDiverged(
        f"training diverged at epoch {getattr(model, 'epoch', 0) + 1}, batch "
        f"{getattr(model, 'step', 0) + 1}: "
        f"the loss is {loss:.4g} and NaN or infinity appeared {where}. "
        f"Lower the learning rate (now {model.optimizer.learning_rate:g})."
    )


# ------------------------------------------------------------- evaluate / predict
def progress_hooks(model: Model, callbacks: Any, verbose: int | str, steps: int) -> CallbackList:
    """The CallbackList of one evaluate or predict: the user's callbacks and the progress bar."""
    return CallbackList(
        callbacks,
        add_progbar=verbose not in (0, False),
        model=model,
        verbose=verbose,
        epochs=1,
        steps=steps,
    )


def test_loop(
    model: Model, x: Data, y: np.ndarray, batch_size: int, hooks: Callback
) -> dict[str, float]:
    """The loss and metrics over (x, y) in batches, at inference; calls the on_test_* hooks."""
    totals = Totals(model.metrics)
    hooks.on_test_begin()
    for step, begin in enumerate(range(0, len(y), batch_size)):
        hooks.on_test_batch_begin(step)
        y_pred = model.forward(take(x, slice(begin, begin + batch_size)))
        y_batch = y[begin : begin + batch_size]
        totals.add(model.loss(y_batch, y_pred), y_batch, y_pred, len(y_batch))
        hooks.on_test_batch_end(step, totals.logs())
        model.thread_fitter.tick()
    logs = totals.logs()
    hooks.on_test_end(logs)
    return logs


def predict_batches(
    model: Model, x: Data, count: int, batch_size: int, hooks: Callback
) -> list[Any]:
    """The model's outputs for x, one copy per batch, with the on_predict_batch_* hooks."""
    outputs = []
    for step, begin in enumerate(range(0, count, batch_size)):
        hooks.on_predict_batch_begin(step)
        outputs.append(copy_outputs(model.forward(take(x, slice(begin, begin + batch_size)))))
        hooks.on_predict_batch_end(step, {"outputs": outputs[-1]})
        model.thread_fitter.tick()
    return outputs


def join_outputs(model: Model, outputs: list[Any]) -> np.ndarray | list[np.ndarray]:
    """The batches' outputs as one array (one per output of a multi-output model)."""
    if outputs and isinstance(outputs[0], list):
        return [np.concatenate(parts) for parts in zip(*outputs)]
    return np.concatenate(outputs) if outputs else np.zeros((0, *model.output_shape), floatx())


def copy_outputs(y: np.ndarray | list[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    """Outputs the caller owns (a layer's output may be its reused scratch memory)."""
    return [part.copy() for part in y] if isinstance(y, list) else y.copy()


def loss_and_metrics(logs: dict[str, float]) -> float | list[float]:
    """Keras's return value: [loss, *metrics], or the loss alone without metrics."""
    values = list(logs.values())
    return values if len(values) > 1 else values[0]


class Totals:
    """Running sample-weighted sums of the loss and of each metric over batches."""

    def __init__(self, metrics: list[metrics_module.Metric] | None = None) -> None:
        self.metrics = list(metrics or [])
        self.loss = 0.0
        self.count = 0
        self.metric_totals = [0.0] * len(self.metrics)
        self.metric_counts = [0] * len(self.metrics)

    def add(self, loss: float, y_true: np.ndarray, y_pred: np.ndarray, count: int) -> None:
        self.loss += loss * count
        self.count += count
        for i, metric in enumerate(self.metrics):
            total, n = metric.batch_totals(y_true, y_pred)
            self.metric_totals[i] += total
            self.metric_counts[i] += n

    def logs(self) -> dict[str, float]:
        logs = {"loss": self.loss / max(self.count, 1)}
        for metric, total, n in zip(self.metrics, self.metric_totals, self.metric_counts):
            logs[metric.name] = total / max(n, 1)
        return logs

    def values(self) -> float | list[float]:
        return loss_and_metrics(self.logs())
