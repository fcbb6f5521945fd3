"""Progress bars for the command line (rich), as engine callbacks.

The engine prints plain Keras-like lines; the CLI uses these instead: one bar per epoch
with the running loss and accuracy, and a closing line per epoch with the validation
figures and the time, like Keras's.
"""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from .engine.callbacks import Callback, format_logs


class EpochProgress(Callback):
    """``Epoch 3/15 ━━━━━━━━━━ 422/422 0:00:14 - accuracy: 0.9863 - loss: 0.0451``.

    The number of epochs and of steps per epoch come from Keras's ``params``, which the
    trainer (the engine's or the PyTorch twin's) hands every callback before training."""

    def __init__(self, console: Console | None = None, label: str = "Epoch") -> None:
        self.console = console or Console(stderr=True)
        self.label = label  # e.g. "torch epoch" for the twin beside the engine
        self.progress: Progress | None = None
        self.params: dict = {}

    @property
    def epochs(self) -> int:
        return self.params["epochs"]

    @property
    def steps(self) -> int:
        return self.params["steps"]

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.start = time.perf_counter()
        if not self.console.is_terminal:
            return  # no live bar in a log file: one line per epoch only
        self.progress = Progress(
            TextColumn(f"{self.label} {{task.fields[epoch]}}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.fields[logs]}"),
            console=self.console,
            transient=True,
        )
        self.progress.start()
        self.task = self.progress.add_task(
            "train", total=self.steps, epoch=f"{epoch + 1}/{self.epochs}", logs=""
        )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.progress is not None:
            self.progress.update(self.task, completed=batch + 1, logs=format_logs(logs or {}))

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if self.progress is not None:
            self.progress.stop()
        seconds = time.perf_counter() - self.start
        self.console.print(
            f"{self.label} {epoch + 1}/{self.epochs}: {duration(seconds)}{format_logs(logs or {})}",
            highlight=False,
        )

    def on_train_end(self, logs: dict | None = None) -> None:
        if self.progress is not None:
            self.progress.stop()


def duration(seconds: float) -> str:
    """ "12.3s", or "45ms" under a second (a small run's epoch is not "0.0s")."""
    return f"{seconds:.1f}s" if seconds >= 1 else f"{seconds * 1000:.0f}ms"
