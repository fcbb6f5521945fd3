"""keras.optimizers.legacy (tf.keras 2.11+): the same optimizers as keras.optimizers."""

from __future__ import annotations

from cnnlab.keras.namespace import keras_module
from cnnlab.keras.optimizers import resolve_optimizers

__getattr__, __dir__ = keras_module(
    __name__, "keras.optimizers.legacy", resolve_optimizers, "optimizers"
)
