"""keras.regularizers: cnnlab has none; every name fails with one line saying so.

Layers accept ``kernel_regularizer=None`` (the default) only.
"""

from __future__ import annotations

from typing import Any

from cnnlab.keras.namespace import keras_module


def resolve_regularizers() -> dict[str, Any]:
    return {}


__getattr__, __dir__ = keras_module(
    __name__, "keras.regularizers", resolve_regularizers, "regularizers"
)
