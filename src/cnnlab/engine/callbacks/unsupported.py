"""Keras callbacks that cnnlab does not implement: creating one raises UnsupportedKerasFeature,
naming the callbacks that are supported."""

from __future__ import annotations

from typing import Any

from ..errors import UnsupportedKerasFeature
from .base import Callback


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
