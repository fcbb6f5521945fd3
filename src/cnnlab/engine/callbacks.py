"""Callbacks: hooks into ``fit`` (Keras's keras.callbacks), and the text progress bar.

The engine prints with plain text only (it imports NumPy and nothing else); the command
line passes its own richer progress callback and ``verbose=0``.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path
from typing import Any, TextIO

import numpy as np


class Callback:
    """Base class; every hook does nothing. ``self.model`` is set by ``fit``."""

    model: Any = None

    def set_model(self, model: Any) -> None:
        self.model = model

    def on_train_begin(self, logs: dict | None = None) -> None: ...
    def on_train_end(self, logs: dict | None = None) -> None: ...
    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None: ...
    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None: ...


class CallbackList(Callback):
    """Calls each hook on every callback, in order."""

    def __init__(self, callbacks: list[Callback], model: Any) -> None:
        self.callbacks = list(callbacks)
        for callback in self.callbacks:
            callback.set_model(model)

    def __getattribute__(self, name: str) -> Any:
        if name.startswith("on_"):
            return lambda *args, **kwargs: [getattr(c, name)(*args, **kwargs) for c in self.callbacks]
        return super().__getattribute__(name)


class History(Callback):
    """Records the logs of every epoch: ``history.history["val_accuracy"]`` is a list."""

    def __init__(self) -> None:
        self.history: dict[str, list[float]] = {}
        self.epoch: list[int] = []
        self.epoch_seconds: list[float] = []  # training time of each epoch, validation excluded

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch.append(epoch)
        self.epoch_seconds.append(getattr(self.model, "last_epoch_seconds", float("nan")))
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(value)


def format_logs(logs: dict[str, float]) -> str:
    """ - accuracy: 0.9891 - loss: 0.0322, in Keras's order (alphabetical, val_ last)."""
    keys = sorted((k for k in logs if not k.startswith("val_")), key=str) + sorted(k for k in logs if k.startswith("val_"))
    return "".join(f" - {key}: {logs[key]:.4f}" for key in keys)


class ProgbarLogger(Callback):
    """Keras-like lines: ``422/422 ━━━━━━━━━━━━━━━━━━━━ 7s 16ms/step - accuracy: ... - loss: ...``.

    On a terminal the bar is redrawn during the epoch; elsewhere one line per epoch.
    """

    def __init__(self, steps: int, epochs: int, stream: TextIO | None = None) -> None:
        self.steps, self.epochs = steps, epochs
        self.stream = stream or sys.stdout
        self.live = hasattr(self.stream, "isatty") and self.stream.isatty()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = self.last_draw = time.perf_counter()
        print(f"Epoch {epoch + 1}/{self.epochs}", file=self.stream, flush=True)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        now = time.perf_counter()
        if self.live and (now - self.last_draw > 0.1 or batch + 1 == self.steps):
            self.last_draw = now
            print("\r" + self.line(batch + 1, logs or {}), end="", file=self.stream, flush=True)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        prefix = "\r" if self.live else ""
        print(prefix + self.line(self.steps, logs or {}), file=self.stream, flush=True)

    def line(self, done: int, logs: dict[str, float]) -> str:
        elapsed = time.perf_counter() - self.start
        filled = int(20 * done / self.steps)
        bar = "━" * filled + " " * (20 - filled)
        per_step = 1000 * elapsed / max(done, 1)
        return f"{done}/{self.steps} {bar} {elapsed:.0f}s {per_step:.0f}ms/step{format_logs(logs)}"


class EarlyStopping(Callback):
    """Stop when ``monitor`` has not improved by min_delta for ``patience`` epochs."""

    def __init__(self, monitor: str = "val_loss", min_delta: float = 0.0, patience: int = 0,
                 mode: str = "auto", restore_best_weights: bool = False) -> None:
        self.monitor, self.min_delta, self.patience = monitor, abs(min_delta), patience
        self.restore_best_weights = restore_best_weights
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.sign = 1 if mode == "min" else -1
        self.stopped_epoch = None

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.best, self.wait, self.best_weights = math.inf, 0, None

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if value is None:
            return
        if self.sign * value < self.best - self.min_delta:
            self.best, self.wait = self.sign * value, 0
            if self.restore_best_weights:
                self.best_weights = [w.copy() for w in self.model.get_weights()]
            return
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            self.model.stop_training = True
            if self.best_weights is not None:
                self.model.set_weights(self.best_weights)


class ModelCheckpoint(Callback):
    """Save the model after every epoch, or only when ``monitor`` improved."""

    def __init__(self, filepath: str, monitor: str = "val_loss", save_best_only: bool = False, mode: str = "auto") -> None:
        self.filepath, self.monitor, self.save_best_only = filepath, monitor, save_best_only
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.sign = 1 if mode == "min" else -1
        self.best = math.inf

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        value = (logs or {}).get(self.monitor)
        if self.save_best_only:
            if value is None or not np.isfinite(value) or self.sign * value >= self.best:
                return
            self.best = self.sign * value
        self.model.save(self.filepath.format(epoch=epoch + 1, **(logs or {})))


class LambdaCallback(Callback):
    """Callbacks from plain functions: ``LambdaCallback(on_epoch_end=lambda epoch, logs: ...)``."""

    def __init__(self, **hooks: Any) -> None:
        for name, function in hooks.items():
            if not name.startswith("on_"):
                raise ValueError(f"LambdaCallback: unknown hook {name!r}")
            setattr(self, name, function)


class BackupAndRestore(Callback):
    """Checkpoint after every epoch; on the next ``fit`` with the same directory, continue
    from the last finished epoch with the same weights, optimizer state, random states and
    history, so the result is bit for bit that of an uninterrupted run
    (keras.callbacks.BackupAndRestore). The checkpoint is deleted when training finishes,
    unless ``delete_checkpoint=False``.
    """

    FILE = "checkpoint.cnnlab"

    def __init__(self, backup_dir: str | Path, delete_checkpoint: bool = True) -> None:
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
        self.model.save_checkpoint(self.path, epoch + 1, self.model.history)

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.delete_checkpoint:
            self.path.unlink(missing_ok=True)
