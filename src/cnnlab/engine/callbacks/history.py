"""``History``: the logs of every epoch, the object ``fit`` returns (keras.callbacks.History)."""

from __future__ import annotations

from typing import Any

from .base import Callback


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
