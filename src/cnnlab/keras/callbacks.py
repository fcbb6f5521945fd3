"""keras.callbacks: the engine's callbacks (``cnnlab.engine.callbacks``), ``Callback`` to
subclass."""

from __future__ import annotations

from typing import Any

from cnnlab.keras.namespace import keras_module, public_api


def resolve_callbacks() -> dict[str, Any]:
    """Every Callback class of the engine."""
    from cnnlab.engine import callbacks

    names = public_api(callbacks, callbacks.Callback)
    names.pop("get", None)
    return names


__getattr__, __dir__ = keras_module(__name__, "keras.callbacks", resolve_callbacks, "callbacks")
