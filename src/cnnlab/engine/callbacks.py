"""Callbacks: hooks into ``fit``, ``evaluate`` and ``predict`` (keras.callbacks), and Keras's
progress bar.

The hooks, their arguments and their order are Keras 3's. ``fit`` drives a ``CallbackList`` so:

    hooks = CallbackList(callbacks, add_history=True, add_progbar=verbose != 0, model=model,
                         verbose=verbose, epochs=epochs, steps=steps)
    hooks.on_train_begin()
    for epoch in ...:
        hooks.on_epoch_begin(epoch)
        for step in ...:
            hooks.on_train_batch_begin(step); ...; hooks.on_train_batch_end(step, logs)
            if model.stop_training: break
        hooks.on_test_begin(); (on_test_batch_begin / on_test_batch_end per batch);
        hooks.on_test_end(val_logs) hooks.on_epoch_end(epoch, logs)          # logs hold the val_
        entries too if model.stop_training: break
    hooks.on_train_end(logs)                     # the last epoch's logs
    return hooks.history

The engine prints plain text only (it imports NumPy and the standard library); the command
line passes its own richer progress callback and ``verbose=0``.
"""

from __future__ import annotations

import csv
import io
import math
import operator
import os
import re
import sys
import time
import warnings
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from . import saving
from .errors import UnsupportedKerasFeature

HOOKS = (
    "on_train_begin",
    "on_train_end",
    "on_epoch_begin",
    "on_epoch_end",
    "on_train_batch_begin",
    "on_train_batch_end",
    "on_batch_begin",
    "on_batch_end",
    "on_test_begin",
    "on_test_end",
    "on_test_batch_begin",
    "on_test_batch_end",
    "on_predict_begin",
    "on_predict_end",
    "on_predict_batch_begin",
    "on_predict_batch_end",
)


def print_msg(message: str, stream: TextIO | None = None) -> None:
    """Write and flush (keras.utils.io_utils.print_msg, without its line break); on a stream
    that cannot encode the bar character, fall back to "=" as Keras does."""
    stream = stream or sys.stdout
    try:
        stream.write(message)
    except UnicodeEncodeError:
        encoding = getattr(stream, "encoding", None) or "utf-8"
        stream.write(message.replace("━", "=").encode(encoding, errors="ignore").decode(encoding))
    stream.flush()


# ------------------------------------------------------------------ Callback, CallbackList
class Callback:
    """Base class; every hook does nothing (keras.callbacks.Callback).

    ``self.model`` is the model being trained, ``self.params`` the dict
    ``{"verbose", "epochs", "steps"}``; both are set by the ``CallbackList`` that calls the
    hooks. As in Keras, ``on_train_batch_begin``/``_end`` call the older aliases
    ``on_batch_begin``/``_end`` unless a subclass overrides them.
    """

    model: Any = None
    params: dict[str, Any] | None = None

    def __init__(self) -> None:
        self.params = None
        self.model = None

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Keras's alias for on_train_batch_begin."""

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """Keras's alias for on_train_batch_end."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """Start of epoch ``epoch`` (0-based) in fit."""

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """End of an epoch in fit; logs hold the epoch's metrics and the val_ ones."""

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Start of a training batch; calls on_batch_begin, as Keras does."""
        self.on_batch_begin(batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """End of a training batch; logs are the running means of the epoch so far. Calls
        on_batch_end."""
        self.on_batch_end(batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Start of a batch in evaluate, or in fit's validation."""

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """End of a batch in evaluate, or in fit's validation."""

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        """Start of a batch in predict."""

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        """End of a batch in predict; logs are ``{"outputs": batch_outputs}``."""

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Start of fit."""

    def on_train_end(self, logs: dict | None = None) -> None:
        """End of fit; logs are the last epoch's."""

    def on_test_begin(self, logs: dict | None = None) -> None:
        """Start of evaluate, or of fit's validation."""

    def on_test_end(self, logs: dict | None = None) -> None:
        """End of evaluate or validation; logs are the results (without the val_ prefix)."""

    def on_predict_begin(self, logs: dict | None = None) -> None:
        """Start of predict."""

    def on_predict_end(self, logs: dict | None = None) -> None:
        """End of predict."""


def python_value(value: Any) -> Any:
    """A number (NumPy scalar, 0-d array, numeric string) as a float; anything else (arrays)
    unchanged."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return value
    try:
        return float(value)
    except (TypeError, ValueError):
        return value


def pythonify_logs(logs: dict | None) -> dict[str, Any]:
    """The logs as every callback receives them (keras.src.utils.python_utils.pythonify_logs):
    a new dict, keys sorted, nested dicts flattened, numbers as Python floats."""
    result: dict[str, Any] = {}
    for key, value in sorted((logs or {}).items()):
        if isinstance(value, dict):
            result.update(pythonify_logs(value))
        else:
            result[key] = python_value(value)
    return result


def flatten(callbacks: Any) -> list[Callback]:
    """Nested lists and tuples of callbacks, in order (Keras uses tree.flatten)."""
    if isinstance(callbacks, (list, tuple)):
        return [c for item in callbacks for c in flatten(item)]
    return [callbacks]


class CallbackList(Callback):
    """Calls each hook on every callback, in order (keras.callbacks.CallbackList).

    ``add_history`` / ``add_progbar`` append a History and then a ProgbarLogger, after the
    given callbacks (Keras's order), unless one is already in the list. The model and the
    params (``verbose``, ``epochs``, ``steps``) are handed to every callback, and
    ``model.history`` is set to the History. Every hook passes the logs through
    ``pythonify_logs`` once, so all callbacks of one call share the same dict (a callback
    that adds a key, as ReduceLROnPlateau adds ``learning_rate``, is seen by those after it).
    """

    def __init__(
        self,
        callbacks: Any = None,
        add_history: bool = False,
        add_progbar: bool = False,
        model: Any = None,
        **params: Any,
    ) -> None:
        super().__init__()
        if model is None and add_history is not None and not isinstance(add_history, int):
            add_history, model = (
                False,
                add_history,
            )  # the pre-Keras call CallbackList(callbacks, model)
        self.callbacks = flatten(callbacks) if callbacks else []
        self._history = next((c for c in self.callbacks if isinstance(c, History)), None)
        self._progbar = next((c for c in self.callbacks if isinstance(c, ProgbarLogger)), None)
        if self._history is None and add_history:
            self._history = History()
            self.callbacks.append(self._history)
        if self._progbar is None and add_progbar:
            self._progbar = ProgbarLogger()
            self.callbacks.append(self._progbar)
        self.set_model(model)
        self.set_params(params)

    @property
    def history(self) -> History | None:
        """The History of this list (the one fit returns), or None."""
        return self._history

    @property
    def progbar(self) -> ProgbarLogger | None:
        return self._progbar

    def set_params(self, params: dict[str, Any]) -> None:
        self.params = params
        if params:
            for callback in self.callbacks:
                callback.set_params(params)

    def set_model(self, model: Any) -> None:
        if model is None:
            return
        self.model = model
        if self._history is not None:
            model.history = self._history
        for callback in self.callbacks:
            callback.set_model(model)

    def _call(self, hook: str, *args: Any, logs: dict | None = None) -> None:
        """hook(*args, logs) on every callback; batch hooks get ``logs=`` by keyword, as in
        Keras."""
        logs = pythonify_logs(logs)
        for callback in self.callbacks:
            if args and "batch" in hook:
                getattr(callback, hook)(*args, logs=logs)
            else:
                getattr(callback, hook)(*args, logs)

    def on_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_batch_begin", batch, logs=logs)

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_batch_end", batch, logs=logs)

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._call("on_epoch_begin", epoch, logs=logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._call("on_epoch_end", epoch, logs=logs)

    def on_train_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_train_batch_begin", batch, logs=logs)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_train_batch_end", batch, logs=logs)

    def on_test_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_test_batch_begin", batch, logs=logs)

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_test_batch_end", batch, logs=logs)

    def on_predict_batch_begin(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_predict_batch_begin", batch, logs=logs)

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._call("on_predict_batch_end", batch, logs=logs)

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._call("on_train_begin", logs=logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        self._call("on_train_end", logs=logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        self._call("on_test_begin", logs=logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        self._call("on_test_end", logs=logs)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._call("on_predict_begin", logs=logs)

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._call("on_predict_end", logs=logs)


# ------------------------------------------------------------------------------ History
class History(Callback):
    """Records the logs of every epoch: ``history.history["val_accuracy"]`` is a list
    (keras.callbacks.History). ``epoch`` lists the epochs recorded; ``epoch_seconds`` (cnnlab's
    addition) the training time of each, read from ``model.last_epoch_seconds``.

    Keras's History empties ``epoch`` in on_train_begin; this one starts empty instead, which
    is the same for the History that fit creates, and lets BackupAndRestore (called before it)
    restore the epochs of an interrupted run.
    """

    def __init__(self) -> None:
        super().__init__()
        self.history: dict[str, list[Any]] = {}
        self.epoch: list[int] = []
        self.epoch_seconds: list[float] = []

    def record(self, epoch: int, logs: dict | None = None) -> None:
        """Append one epoch's logs and time."""
        self.epoch.append(epoch)
        self.epoch_seconds.append(getattr(self.model, "last_epoch_seconds", float("nan")))
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.record(epoch, logs)
        if self.model is not None:
            self.model.history = self

    def copy(self) -> History:
        """An independent copy of what was recorded (same model)."""
        other = History()
        other.model, other.params = self.model, self.params
        other.history = {key: list(values) for key, values in self.history.items()}
        other.epoch, other.epoch_seconds = list(self.epoch), list(self.epoch_seconds)
        return other


# ------------------------------------------------------------------------ progress bar
ANSI_CODE = re.compile(r"\x1b\[[0-9;]*m")


def format_logs(logs: dict[str, float]) -> str:
    """- accuracy: 0.9891 - loss: 0.0322, alphabetical with val_ last (used by the command line)."""
    keys = sorted(k for k in logs if not k.startswith("val_")) + sorted(
        k for k in logs if k.startswith("val_")
    )
    return "".join(f" - {key}: {logs[key]:.4f}" for key in keys)


def format_time_per_unit(seconds: float, unit_name: str) -> str:
    """' 16ms/step': seconds at 1 s and above (or 0), else ms, else us (Keras's Progbar)."""
    if seconds >= 1 or seconds == 0:
        return f" {seconds:.0f}s/{unit_name}"
    if seconds >= 1e-3:
        return f" {seconds * 1000.0:.0f}ms/{unit_name}"
    return f" {seconds * 1000000.0:.0f}us/{unit_name}"


def format_eta(eta: float) -> str:
    """'1:02:03', '2:03' or '45s'."""
    if eta > 3600:
        return f"{int(eta // 3600)}:{int(eta % 3600 // 60):02d}:{int(eta % 60):02d}"
    if eta > 60:
        return f"{int(eta // 60)}:{int(eta % 60):02d}"
    return f"{int(eta)}s"


def format_metric(value: float, signed: bool = True) -> str:
    """' 0.0322' (4 decimals) or ' 1.2345e-04' at 1e-3 and below. Keras compares abs(value) on
    verbose=1 lines and the value itself on verbose=2 lines; ``signed`` picks which."""
    return f" {value:.4f}" if (abs(value) if signed else value) > 1e-3 else f" {value:.4e}"


class Progbar:
    """Keras's progress bar (keras.utils.Progbar):
    ``422/422 ━━━━━━━━━━━━━━━━━━━━ 7s 16ms/step - accuracy: 0.9891 - loss: 0.0322``.

    verbose=1: on a terminal or in a Jupyter notebook (see ``dynamic``) the line is redrawn
    (with Keras's colours and escape sequences, at most every ``interval`` seconds); on any other
    stream only the finished line is written, as plain text. verbose=2: the finished line only,
    ``422/422 - 7s - 16ms/step - ...``.
    Values are averaged over the steps unless named in ``stateful_metrics`` (or, when
    ``stateless_metrics`` is given, unless not named there). Time is read from ``time.time``.
    """

    def __init__(
        self,
        target: int | None,
        width: int = 20,
        verbose: int = 1,
        interval: float = 0.05,
        stateful_metrics: Iterable[str] | None = None,
        stateless_metrics: Iterable[str] | None = None,
        unit_name: str = "step",
        stream: TextIO | None = None,
    ) -> None:
        if stateful_metrics is not None and stateless_metrics is not None:
            raise ValueError("Progbar: give stateful_metrics or stateless_metrics, not both")
        self.target, self.width, self.verbose, self.interval = target, width, verbose, interval
        self.unit_name, self.stream = unit_name, stream
        self.stateless_metrics = set(stateless_metrics) if stateless_metrics is not None else None
        self.stateful_metrics = set(stateful_metrics or ()) if stateless_metrics is None else None
        self._values: dict[str, list[Any]] = {}
        self._values_order: list[str] = []
        self._seen_so_far = 0
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step: float | None = None
        self._prev_total_width = 0

    @property
    def dynamic(self) -> bool:
        """True when the line is redrawn in place: Keras's rule (keras/src/utils/progbar.py), a
        terminal, or standard output inside Jupyter ("ipykernel" imported) or PyCharm
        (``PYCHARM_HOSTED``). Keras also redraws whenever "posix" is imported, i.e. always on
        Linux and macOS; cnnlab leaves that out so that a redirected log holds finished lines
        only."""
        stream = self.stream or sys.stdout
        if hasattr(stream, "isatty") and stream.isatty():
            return True
        to_stdout = stream is sys.stdout
        return to_stdout and ("ipykernel" in sys.modules or "PYCHARM_HOSTED" in os.environ)

    @property
    def known_target(self) -> bool:
        return self.target is not None and self.target > 0

    def update(
        self,
        current: int,
        values: list[tuple[str, Any]] | None = None,
        finalize: bool | None = None,
    ) -> None:
        """Show step ``current`` with ``values``, a list of (name, value); finalize ends the
        line."""
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._record(current, values or [], finalize)
        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            if now - self._last_update < self.interval and not finalize:
                return
            self._draw(
                self._bar(current) + self._info(current, now, time_per_unit, finalize), finalize
            )
        elif self.verbose == 2 and finalize and self.known_target:
            print_msg(self._summary(current, now, time_per_unit), self.stream)
        self._last_update = now

    def add(self, n: int, values: list[tuple[str, Any]] | None = None) -> None:
        self.update(self._seen_so_far + n, values)

    def _record(self, current: int, values: list[tuple[str, Any]], finalize: bool) -> None:
        for key, value in values:
            if key not in self._values_order:
                self._values_order.append(key)
            if finalize or not self._stateless(key):
                self._values[key] = [value, 1]
            else:  # a running mean weighted by the steps since the last update
                steps = max(current - self._seen_so_far, 1)
                total, count = self._values.get(key, [0, 0])
                self._values[key] = [total + value * steps, count + steps]
        self._seen_so_far = current

    def _stateless(self, key: str) -> bool:
        if self.stateful_metrics is not None:
            return key not in self.stateful_metrics
        return key in (self.stateless_metrics or ())

    def _average(self, key: str) -> float:
        total, count = self._values[key]
        if not isinstance(total, float):
            total = np.mean(total)
        return total / max(1, count)

    def _bar(self, current: int) -> str:
        """'\x1b[1m 7/422\x1b[0m ' then the bar: done part green, the rest grey."""
        if not self.known_target:
            return f"{current:7d}/Unknown"
        digits = int(math.log10(self.target)) + 1
        bar = f"\x1b[1m{current:{digits}d}/{self.target}\x1b[0m "
        filled = int(self.width * (float(current) / self.target))
        if filled > 0:
            bar += f"\x1b[32m{'━' * filled}\x1b[0m"
        return bar + f"\x1b[37m{'━' * (self.width - filled)}\x1b[0m"

    def _info(self, current: int, now: float, time_per_unit: float, finalize: bool) -> str:
        """The time to go (or, once finished, the time taken), the time per step and the values."""
        if self.known_target and not finalize:
            info = f" \x1b[1m{format_eta(time_per_unit * (self.target - current))}\x1b[0m"
        else:
            info = f" \x1b[1m{now - self._start:.0f}s\x1b[0m"
        info += format_time_per_unit(time_per_unit, self.unit_name)
        return info + "".join(
            f" - {key}:{format_metric(self._average(key))}" for key in self._values_order
        )

    def _draw(self, line: str, finalize: bool) -> None:
        width = len(ANSI_CODE.sub("", line))
        if not self.dynamic:
            if finalize:
                print_msg(ANSI_CODE.sub("", line) + "\n", self.stream)
            return
        message = (
            "\b" * self._prev_total_width
            + "\r"
            + line
            + " " * max(self._prev_total_width - width, 0)
        )
        print_msg(message + ("\n" if finalize else ""), self.stream)
        self._prev_total_width = width

    def _summary(self, current: int, now: float, time_per_unit: float) -> str:
        """The verbose=2 line: '422/422 - 7s - 16ms/step - accuracy: 0.9891 - loss: 0.0322'."""
        digits = int(math.log10(self.target)) + 1
        info = f"{current:{digits}d}/{self.target} - {now - self._start:.0f}s -"
        info += format_time_per_unit(time_per_unit, self.unit_name)
        values = "".join(
            f" - {key}:{format_metric(self._average(key), signed=False)}"
            for key in self._values_order
        )
        return info + values + "\n"

    def _estimate_step_duration(self, current: int, now: float) -> float:
        """Seconds per step, leaving out the first step (often slow) once there are others."""
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_step = (now - self._time_after_first_step) / (current - 1)
        else:
            per_step = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_step


class ProgbarLogger(Callback):
    """Prints Keras's progress lines (keras.callbacks.ProgbarLogger): ``Epoch 1/15`` (when
    there is more than one epoch), then per epoch
    ``422/422 ━━━━━━━━━━━━━━━━━━━━ 7s 16ms/step - accuracy: 0.7684 - loss: 0.7493 - val_accuracy:
    ...``.

    params: verbose 1 (or "auto") redraws the bar after each batch on a terminal and writes
    one line per epoch elsewhere; verbose 2 writes one line per epoch,
    ``422/422 - 7s - 16ms/step - ...``. Within fit, validation prints nothing; evaluate and
    predict print one bar of their own. Values are shown in the order of the logs. ``stream``
    defaults to sys.stdout at the time of writing. ``steps`` and ``epochs`` are for callers
    that do not pass params through a CallbackList.
    """

    def __init__(
        self, steps: int | None = None, epochs: int | None = None, stream: TextIO | None = None
    ) -> None:
        super().__init__()
        self.stream = stream
        self.progbar: Progbar | None = None
        self.seen = 0
        self.target, self.epochs, self.verbose = steps, epochs or 1, 1
        self._called_in_fit = False

    def set_params(self, params: dict[str, Any]) -> None:
        super().set_params(params)
        self.verbose = 1 if params["verbose"] == "auto" else params["verbose"]
        self.epochs = params["epochs"]
        self.target = params["steps"]

    def on_train_begin(self, logs: dict | None = None) -> None:
        self._called_in_fit = True  # validation inside fit is silent

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self._new_progbar()
        if self.verbose and self.epochs > 1:
            print_msg(f"Epoch {epoch + 1}/{self.epochs}\n", self.stream)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._update(batch, logs)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._finalize(logs)

    def on_test_begin(self, logs: dict | None = None) -> None:
        if not self._called_in_fit:
            self._new_progbar()

    def on_test_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if not self._called_in_fit:
            self._update(batch, logs)

    def on_test_end(self, logs: dict | None = None) -> None:
        if not self._called_in_fit:
            self._finalize(logs)

    def on_predict_begin(self, logs: dict | None = None) -> None:
        self._new_progbar()

    def on_predict_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self._update(batch, None)  # the outputs are not shown

    def on_predict_end(self, logs: dict | None = None) -> None:
        self._finalize(logs)

    def _new_progbar(self) -> None:
        self.seen = 0
        self.progbar = Progbar(
            self.target,
            verbose=self.verbose,
            unit_name="step",
            stateless_metrics=set(),
            stream=self.stream,
        )

    def _update(self, batch: int, logs: dict | None) -> None:
        if self.progbar is None:
            self._new_progbar()
        self.seen = batch + 1
        if self.verbose == 1:
            self.progbar.update(self.seen, list((logs or {}).items()), finalize=False)

    def _finalize(self, logs: dict | None) -> None:
        if self.progbar is None:
            self._new_progbar()
        if self.target is None:
            self.target = self.progbar.target = self.seen
        self.progbar.update(self.target, list((logs or {}).items()), finalize=True)


# -------------------------------------------------------------- monitored quantities
METRICS_UP = {
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
    "top_k_categorical_accuracy",
    "sparse_top_k_categorical_accuracy",
    "auc",
    "precision",
    "recall",
    "f1_score",
    "fbeta_score",
    "iou",
    "mean_iou",
    "one_hot_iou",
    "one_hot_mean_iou",
    "pearson_correlation",
    "concordance_correlation",
    "cosine_similarity",
    "r2_score",
}
METRICS_DOWN = {
    "loss",
    "mean_squared_error",
    "mse",
    "mean_absolute_error",
    "mae",
    "mean_absolute_percentage_error",
    "mape",
    "mean_squared_logarithmic_error",
    "msle",
    "root_mean_squared_error",
    "hinge",
    "squared_hinge",
    "categorical_hinge",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
    "kl_divergence",
    "poisson",
    "logcosh",
}


def metric_direction(model: Any, name: str) -> str | None:
    """ "up" or "down" for a metric name without its val_ prefix: from a metric object of the
    model that has Keras's ``_direction``, else from Keras's built-in metrics; None if unknown."""
    for metric in getattr(model, "metrics", None) or []:
        if getattr(metric, "name", None) == name and getattr(metric, "_direction", None) in (
            "up",
            "down",
        ):
            return metric._direction
    if name in METRICS_UP:
        return "up"
    return "down" if name in METRICS_DOWN else None


class MonitorCallback(Callback):
    """Base of the callbacks that watch one quantity of the logs (Keras's MonitorCallback).

    mode "min", "max" or "auto" (loss and errors go down, accuracies go up; otherwise a
    ValueError asks for a mode). An improvement beats the reference by more than min_delta.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        mode: str = "auto",
        baseline: float | None = None,
        min_delta: float = 0,
    ) -> None:
        super().__init__()
        if mode not in ("auto", "min", "max"):
            warnings.warn(
                f"{type(self).__name__} mode '{mode}' is unknown, fallback to auto mode.",
                stacklevel=2,
            )
            mode = "auto"
        self.monitor, self.mode, self.best, self.min_delta = monitor, mode, baseline, abs(min_delta)
        self.monitor_op: Callable[[Any, Any], bool] | None = None

    def _set_monitor_op(self) -> None:
        direction = {"min": "down", "max": "up"}.get(self.mode)
        direction = direction or metric_direction(self.model, self.monitor.removeprefix("val_"))
        if direction is None:
            raise ValueError(
                f"{type(self).__name__} callback received monitor={self.monitor}, but cnnlab "
                "isn't able to "
                "automatically determine whether that metric should be maximized or minimized. "
                "Pass `mode='max'` "
                "in order to monitor based on the highest metric value, or pass `mode='min'` in "
                "order to use the "
                "lowest value."
            )
        self.monitor_op = operator.gt if direction == "up" else operator.lt
        if direction == "down":
            self.min_delta *= -1

    def _is_improvement(self, monitor_value: float, reference_value: float | None) -> bool:
        if reference_value is None:
            return True
        return bool(self.monitor_op(monitor_value - self.min_delta, reference_value))


class EarlyStopping(MonitorCallback):
    """Stop training when ``monitor`` has stopped improving (keras.callbacks.EarlyStopping).

    Counting starts at ``start_from_epoch``. After ``patience`` epochs without an improvement
    greater than ``min_delta`` (and never at the first epoch) it sets
    ``model.stop_training``. With a ``baseline``, the wait restarts only on epochs that beat
    the baseline too. ``restore_best_weights`` restores, at the end of training (stopped or
    not), the weights of the best epoch.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        min_delta: float = 0,
        patience: int = 0,
        verbose: int = 0,
        mode: str = "auto",
        baseline: float | None = None,
        restore_best_weights: bool = False,
        start_from_epoch: int = 0,
    ) -> None:
        super().__init__(monitor, mode, min_delta=min_delta)
        self.patience, self.verbose, self.baseline = patience, verbose, baseline
        self.restore_best_weights, self.start_from_epoch = restore_best_weights, start_from_epoch
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.wait = self.stopped_epoch = self.best_epoch = 0
        self.best, self.best_weights = None, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        current = self.get_monitor_value(logs)
        if current is None or epoch < self.start_from_epoch:
            return
        if self.restore_best_weights and self.best_weights is None:
            self.best_weights, self.best_epoch = self._weights(), epoch
        self.wait += 1
        if self._is_improvement(current, self.best):
            self.best, self.best_epoch = current, epoch
            if self.restore_best_weights:
                self.best_weights = self._weights()
            if self.baseline is None or self._is_improvement(current, self.baseline):
                self.wait = 0
            return
        if self.wait >= self.patience and epoch > 0:
            self.stopped_epoch = epoch
            self.model.stop_training = True

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.stopped_epoch > 0 and self.verbose > 0:
            print_msg(f"Epoch {self.stopped_epoch + 1}: early stopping\n")
        if self.restore_best_weights and self.best_weights is not None:
            if self.verbose > 0:
                print_msg(
                    "Restoring model weights from the end of the best epoch: "
                    f"{self.best_epoch + 1}.\n"
                )
            self.model.set_weights(self.best_weights)

    def get_monitor_value(self, logs: dict | None) -> float | None:
        logs = logs or {}
        value = logs.get(self.monitor)
        if value is None:
            warnings.warn(
                f"Early stopping conditioned on metric `{self.monitor}` which is not available. "
                f"Available metrics are: {','.join(logs)}",
                stacklevel=2,
            )
        return value

    def _weights(self) -> list[np.ndarray]:
        return [np.array(w, copy=True) for w in self.model.get_weights()]


# ------------------------------------------------------------------- learning rate
class ReduceLROnPlateau(MonitorCallback):
    """Multiply ``model.optimizer.learning_rate`` by ``factor`` when ``monitor`` has not
    improved by more than ``min_delta`` for ``patience`` epochs, then wait ``cooldown``
    epochs; never below ``min_lr`` (keras.callbacks.ReduceLROnPlateau). Adds
    ``learning_rate`` to each epoch's logs.
    """

    def __init__(
        self,
        monitor: str = "val_loss",
        factor: float = 0.1,
        patience: int = 10,
        verbose: int = 0,
        mode: str = "auto",
        min_delta: float = 1e-4,
        cooldown: int = 0,
        min_lr: float = 0.0,
        **kwargs: Any,
    ) -> None:
        super().__init__(monitor, mode, min_delta=min_delta)
        if factor >= 1.0:
            raise ValueError(
                f"ReduceLROnPlateau does not support a factor >= 1.0. Received factor={factor}"
            )
        self.factor, self.min_lr, self.patience = factor, min_lr, patience
        self.verbose, self.cooldown = verbose, cooldown
        self.cooldown_counter = self.wait = 0

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best, self.cooldown_counter, self.wait = None, 0, 0

    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs or {}  # as Keras: an empty dict is replaced, so the others do not see the rate
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(
                f"Learning rate reduction is conditioned on metric `{self.monitor}` which is not "
                f"available. Available metrics are: {','.join(logs)}.",
                stacklevel=2,
            )
            return
        if self.in_cooldown():
            self.cooldown_counter -= 1
            self.wait = 0
        if self._is_improvement(current, self.best):
            self.best, self.wait = current, 0
        elif not self.in_cooldown():
            self.wait += 1
            if self.wait >= self.patience and self._reduce(epoch):
                self.cooldown_counter, self.wait = self.cooldown, 0

    def _reduce(self, epoch: int) -> bool:
        """Lower the learning rate unless it is at min_lr already; True if lowered."""
        old_lr = float(self.model.optimizer.learning_rate)
        if not old_lr > float(np.float32(self.min_lr)):
            return False
        new_lr = max(old_lr * self.factor, self.min_lr)
        self.model.optimizer.learning_rate = new_lr
        if self.verbose > 0:
            print_msg(
                f"\nEpoch {epoch + 1}: ReduceLROnPlateau reducing learning rate to {new_lr}.\n"
            )
        return True


class LearningRateScheduler(Callback):
    """Set ``model.optimizer.learning_rate = schedule(epoch, lr)`` at the start of every epoch
    (``schedule(epoch)`` also accepted); the result must be a float
    (keras.callbacks.LearningRateScheduler). Adds ``learning_rate`` to each epoch's logs.
    """

    def __init__(self, schedule: Callable[..., float], verbose: int = 0) -> None:
        super().__init__()
        self.schedule, self.verbose = schedule, verbose

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        optimizer = self.model.optimizer
        if not hasattr(optimizer, "learning_rate"):
            raise ValueError('Optimizer must have a "learning_rate" attribute.')
        try:
            learning_rate = self.schedule(epoch, float(optimizer.learning_rate))
        except TypeError:  # the older one-argument schedule, as Keras allows
            learning_rate = self.schedule(epoch)
        if not isinstance(learning_rate, (float, np.float32, np.float64)):
            raise ValueError(
                f"The output of the `schedule` function should be a float. Got: {learning_rate}"
            )
        optimizer.learning_rate = learning_rate
        if self.verbose > 0:
            print_msg(
                f"\nEpoch {epoch + 1}: LearningRateScheduler setting learning rate to "
                f"{learning_rate}.\n"
            )

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        logs["learning_rate"] = float(self.model.optimizer.learning_rate)


# ---------------------------------------------------------------------- saving, logging
class ModelCheckpoint(MonitorCallback):
    """Save the model (or its weights) after every epoch, or only when ``monitor`` improved
    (keras.callbacks.ModelCheckpoint).

    ``filepath`` may hold ``{epoch:02d}`` (1-based) and any log, e.g. ``{val_loss:.2f}``;
    missing folders are created. ``save_weights_only`` calls ``model.save_weights``,
    otherwise ``model.save``; the model picks the file format. With ``save_best_only`` and
    no ``monitor`` in the logs it warns and saves, as Keras does. ``initial_value_threshold``
    is the value to beat first. Only ``save_freq="epoch"`` is supported.
    """

    def __init__(
        self,
        filepath: str | os.PathLike,
        monitor: str = "val_loss",
        verbose: int = 0,
        save_best_only: bool = False,
        save_weights_only: bool = False,
        mode: str = "auto",
        save_freq: str | int = "epoch",
        initial_value_threshold: float | None = None,
    ) -> None:
        super().__init__(monitor, mode, initial_value_threshold)
        if isinstance(save_freq, int) and not isinstance(save_freq, bool):
            raise UnsupportedKerasFeature(
                f"ModelCheckpoint: save_freq={save_freq} (every N batches) is not "
                "supported; cnnlab saves with save_freq='epoch'"
            )
        if save_freq != "epoch":
            raise ValueError(
                f"Unrecognized save_freq: {save_freq}. Expected save_freq are 'epoch' or integer "
                "values"
            )
        self.filepath, self.verbose, self.save_freq = os.fspath(filepath), verbose, save_freq
        self.save_best_only, self.save_weights_only = save_best_only, save_weights_only

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.monitor_op is None:
            self._set_monitor_op()
        logs = logs or {}
        filepath = self._file_path(epoch, logs)
        if not self._should_save(epoch, logs, filepath):
            return
        Path(filepath).parent.mkdir(parents=True, exist_ok=True)
        if self.save_weights_only:
            self.model.save_weights(filepath)
        else:
            self.model.save(filepath)
        if self.verbose > 0:
            print_msg(f"\nEpoch {epoch + 1}: finished saving model to {filepath}\n")

    def _file_path(self, epoch: int, logs: dict) -> str:
        try:
            return self.filepath.format(epoch=epoch + 1, **logs)
        except KeyError as err:
            raise KeyError(
                f'Failed to format this callback filepath: "{self.filepath}". Reason: {err}'
            ) from None

    def _should_save(self, epoch: int, logs: dict, filepath: str) -> bool:
        if not self.save_best_only:
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: saving model to {filepath}\n")
            return True
        current = logs.get(self.monitor)
        if current is None:
            warnings.warn(f"Can save best model only with {self.monitor} available.", stacklevel=3)
            return True
        best = "None" if self.best is None else f"{self.best:.5f}"
        if not self._is_improvement(current, self.best):
            if self.verbose > 0:
                print_msg(f"\nEpoch {epoch + 1}: {self.monitor} did not improve from {best}\n")
            return False
        if self.verbose > 0:
            print_msg(
                f"\nEpoch {epoch + 1}: {self.monitor} improved from {best} to {current:.5f}, "
                f"saving model to {filepath}\n"
            )
        self.best = current
        return True


def refuse_csv_link(path: str) -> None:
    """CSVLogger never writes through (or replaces) a symbolic link."""
    if os.path.islink(path):
        raise ValueError(f"CSVLogger: {path} is a symbolic link; give the path of a regular file")


def csv_value(value: Any) -> Any:
    """A log value as Keras's CSVLogger writes it: a sequence as "[a, b]"."""
    if isinstance(value, str) or (isinstance(value, np.ndarray) and value.ndim == 0):
        return value
    if isinstance(value, Iterable):
        return f'"[{", ".join(map(str, value))}]"'
    return value


class CSVLogger(Callback):
    """Write each epoch's logs as a row of a CSV file (keras.callbacks.CSVLogger).

    Columns: ``epoch`` (0-based), then the first epoch's log keys sorted (plus a val_ column
    for each when there is no validation, filled with NA, as Keras does). ``append`` adds to
    an existing file (its header is kept). A path that is a symbolic link is refused. Each
    epoch rewrites the whole file atomically (``saving.atomic_write``): never a partial row.
    """

    def __init__(
        self, filename: str | os.PathLike, separator: str = ",", append: bool = False
    ) -> None:
        super().__init__()
        self.sep, self.filename, self.append = separator, os.fspath(filename), append
        self.keys: list[str] | None = None
        self.writer: csv.DictWriter | None = None
        self.csv_file: io.StringIO | None = None  # the whole file's text, rewritten each epoch
        self.append_header = True

    def on_train_begin(self, logs: dict | None = None) -> None:
        refuse_csv_link(self.filename)
        existing = ""
        if self.append and os.path.isfile(self.filename):
            with open(self.filename, encoding="utf-8", newline="") as file:
                existing = file.read()
        self.append_header = not existing
        self.csv_file = io.StringIO(newline="")
        self.csv_file.write(existing)
        self.write_file()
        self.writer, self.keys = None, None

    def write_file(self) -> None:
        saving.write_bytes(self.filename, self.csv_file.getvalue().encode("utf-8"))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs or {}
        if self.keys is None:
            self.keys = sorted(logs)
            if self.keys and not any(key.startswith("val_") for key in self.keys):
                self.keys += [f"val_{key}" for key in self.keys]
        if self.writer is None:
            self.writer = csv.DictWriter(
                self.csv_file, fieldnames=["epoch", *self.keys], delimiter=self.sep
            )
            if self.append_header:
                self.writer.writeheader()
        self.writer.writerow(
            {"epoch": epoch, **{key: csv_value(logs.get(key, "NA")) for key in self.keys}}
        )
        self.write_file()

    def on_train_end(self, logs: dict | None = None) -> None:
        self.writer = None


class TerminateOnNaN(Callback):
    """Stop training after a batch whose loss is NaN or infinite (keras.callbacks.TerminateOnNaN);
    with ``raise_error=True`` raise a RuntimeError instead."""

    def __init__(self, raise_error: bool = False) -> None:
        super().__init__()
        self.raise_error = raise_error

    def on_batch_end(self, batch: int, logs: dict | None = None) -> None:
        loss = (logs or {}).get("loss")
        if loss is None or not (np.isnan(loss) or np.isinf(loss)):
            return
        if self.raise_error:
            raise RuntimeError(
                f"NaN or Inf loss encountered at batch {batch}. Loss value: {loss}. "
                "Terminating training immediately."
            )
        print_msg(f"Batch {batch}: Invalid loss, terminating training\n")
        self.model.stop_training = True


class LambdaCallback(Callback):
    """Callbacks from plain functions (keras.callbacks.LambdaCallback), any hook:
    ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...,
    on_batch_end=lambda batch, logs: ...)``."""

    def __init__(self, **hooks: Callable[..., Any]) -> None:
        super().__init__()
        for name, function in hooks.items():
            if name not in HOOKS:
                raise ValueError(
                    f"LambdaCallback: unknown hook {name!r}; hooks are {', '.join(HOOKS)}"
                )
            if function is not None:
                setattr(self, name, function)


# ----------------------------------------------------------------------- resuming
class BackupAndRestore(Callback):
    """Checkpoint after every epoch; on the next ``fit`` with the same directory, continue
    from the last finished epoch with the same weights, optimizer state, random states and
    history, so the result is bit for bit that of an uninterrupted run
    (keras.callbacks.BackupAndRestore). The checkpoint is deleted when training finishes,
    unless ``delete_checkpoint=False``.
    """

    FILE = "checkpoint.cnnlab"

    def __init__(self, backup_dir: str | Path, delete_checkpoint: bool = True) -> None:
        super().__init__()
        self.path = Path(backup_dir) / self.FILE
        self.delete_checkpoint = delete_checkpoint

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self.path.is_file():
            return
        epoch, history, seconds = self.model.load_checkpoint(self.path)
        self.model.resume_epoch = epoch
        self.model.history.history = {key: list(values) for key, values in history.items()}
        self.model.history.epoch = list(range(epoch))
        self.model.history.epoch_seconds = list(seconds)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        history = self.model.history
        if (
            not history.epoch or history.epoch[-1] != epoch
        ):  # the History comes after this callback (Keras's order)
            history = history.copy()
            history.record(epoch, logs)
        self.model.save_checkpoint(self.path, epoch + 1, history)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.delete_checkpoint:
            self.path.unlink(missing_ok=True)


# ------------------------------------------------------------------- not supported
class UnsupportedCallback(Callback):
    """A Keras callback that cnnlab does not implement: creating one raises
    UnsupportedKerasFeature."""

    REASON = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        raise UnsupportedKerasFeature(
            f"keras.callbacks.{type(self).__name__} is not supported by cnnlab "
            f"({self.REASON}); supported callbacks: {', '.join(SUPPORTED)}"
        )


class TensorBoard(UnsupportedCallback):
    REASON = "it writes TensorFlow event files; CSVLogger and the History cover the same curves"


class RemoteMonitor(UnsupportedCallback):
    REASON = "it posts to a server over HTTP; use LambdaCallback or CSVLogger"


class SwapEMAWeights(UnsupportedCallback):
    REASON = "the optimizers keep no exponential moving average of the weights"


class OrbaxCheckpoint(UnsupportedCallback):
    REASON = "it needs Orbax and JAX; use ModelCheckpoint or BackupAndRestore"


SUPPORTED = (
    "BackupAndRestore",
    "CSVLogger",
    "Callback",
    "CallbackList",
    "EarlyStopping",
    "History",
    "LambdaCallback",
    "LearningRateScheduler",
    "ModelCheckpoint",
    "ProgbarLogger",
    "ReduceLROnPlateau",
    "TerminateOnNaN",
)
