"""keras.backend (and keras.config): the engine's global settings as Keras names them.

cnnlab computes images channels_last (N, H, W, C); ``set_image_data_format("channels_first")``
is refused with one line. ``backend()`` answers "numpy".
"""

from __future__ import annotations

from typing import Any

from cnnlab.engine.config import floatx, set_floatx
from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.engine.layers import clear_session as clear_layer_names
from cnnlab.keras.namespace import keras_module

EPSILON = 1e-7  # Keras's fuzz factor; the engine's losses and optimizers use this value


def image_data_format() -> str:
    """Always "channels_last" (keras.backend.image_data_format)."""
    return "channels_last"


def set_image_data_format(data_format: str) -> None:
    """Accept "channels_last"; refuse "channels_first", which the engine does not compute."""
    if data_format != "channels_last":
        raise UnsupportedKerasFeature(
            f"keras.backend.set_image_data_format({data_format!r}) is not supported; cnnlab "
            "computes "
            "channels_last (N, H, W, C) only"
        )


def epsilon() -> float:
    """1e-7, Keras's default fuzz factor (keras.backend.epsilon)."""
    return EPSILON


def set_epsilon(value: float) -> None:
    """Accept Keras's default only: the engine's formulas use 1e-7."""
    if value != EPSILON:
        raise UnsupportedKerasFeature(
            f"keras.backend.set_epsilon({value!r}) is not supported; cnnlab uses 1e-7"
        )


def clear_session(free_memory: bool = True) -> None:
    """Restart automatic layer names (conv2d, conv2d_1, ...) as Keras does."""
    clear_layer_names()


def backend() -> str:
    """The name of the engine: "numpy" (Keras answers "tensorflow", "torch", "jax")."""
    return "numpy"


def resolve_backend() -> dict[str, Any]:
    return {name: globals()[name] for name in __all__}


__all__ = [
    "backend",
    "clear_session",
    "epsilon",
    "floatx",
    "image_data_format",
    "set_epsilon",
    "set_floatx",
    "set_image_data_format",
]

__getattr__, __dir__ = keras_module(__name__, "keras.backend", resolve_backend, "backend functions")
