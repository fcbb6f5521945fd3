"""keras.losses: the engine's loss classes and loss functions (``cnnlab.engine.losses``)."""

from __future__ import annotations

from typing import Any

from cnnlab.keras.namespace import keras_module, public_api


def resolve_losses() -> dict[str, Any]:
    """Every Loss class, every loss function the engine's tables name, and ``get``."""
    from cnnlab.engine import losses

    return public_api(losses, losses.Loss)


__getattr__, __dir__ = keras_module(__name__, "keras.losses", resolve_losses, "losses")
