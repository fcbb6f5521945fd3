"""keras.layers.convolutional (a Keras 2 path tutorials still import): every layer of
keras.layers."""

from __future__ import annotations

from cnnlab.keras.layers import resolve_layers
from cnnlab.keras.namespace import keras_module

__getattr__, __dir__ = keras_module(
    __name__, "keras.layers.convolutional", resolve_layers, "layers"
)
