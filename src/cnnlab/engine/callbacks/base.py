"""The base of every callback (keras.callbacks.Callback), the hooks' names, the logs as callbacks
receive them, LambdaCallback, and ``print_msg``, the one way callbacks write to the console."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, TextIO

import numpy as np

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
