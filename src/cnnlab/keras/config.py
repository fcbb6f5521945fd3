"""keras.config (Keras 3): the same settings as keras.backend
(``floatx``, ``image_data_format``, ...)."""

from __future__ import annotations

from cnnlab.keras.backend import resolve_backend
from cnnlab.keras.namespace import keras_module

__getattr__, __dir__ = keras_module(__name__, "keras.config", resolve_backend, "config functions")
