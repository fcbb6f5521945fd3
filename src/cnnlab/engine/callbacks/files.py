"""Callbacks that write a file every epoch: CSVLogger (the logs as CSV rows) and
BackupAndRestore (a checkpoint to resume an interrupted fit from)."""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from .. import saving
from .base import Callback


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
