"""keras.initializers: the engine's initializers by their Keras function names
(``glorot_uniform``, ...).

Layers take them as strings (``kernel_initializer="he_normal"``), as most programs write them.
"""

from __future__ import annotations

from typing import Any

from cnnlab.keras.namespace import keras_module, public_api


def resolve_initializers() -> dict[str, Any]:
    """Every initializer in the engine's table, any Initializer class it defines, and ``get``."""
    from cnnlab.engine import initializers

    return public_api(initializers, getattr(initializers, "Initializer", None))


__getattr__, __dir__ = keras_module(
    __name__, "keras.initializers", resolve_initializers, "initializers"
)
