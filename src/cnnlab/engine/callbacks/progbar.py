"""Keras's progress bar (keras.utils.Progbar), the callback that draws it
(keras.callbacks.ProgbarLogger), and the number formats both use."""

from __future__ import annotations

import math
import os
import re
import sys
import time
from collections.abc import Iterable
from typing import Any, TextIO

import numpy as np

from .base import Callback, print_msg

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
