"""keras.optimizers: the engine's optimizers (``cnnlab.engine.optimizers``) under their Keras names.

``keras.optimizers.legacy`` (tf.keras 2.11+) offers the same classes.
"""

from __future__ import annotations

from typing import Any

from cnnlab.keras.namespace import keras_module, public_api


def resolve_optimizers() -> dict[str, Any]:
    """Every Optimizer class of the engine, and ``get``."""
    from cnnlab.engine import optimizers

    return public_api(optimizers, optimizers.Optimizer)


__getattr__, __dir__ = keras_module(__name__, "keras.optimizers", resolve_optimizers, "optimizers")
