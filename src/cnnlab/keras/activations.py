"""keras.activations: ``relu``, ``softmax``, ... for every activation in the engine's table.

Each is an :class:`ActivationFunction`: called on an array it computes the engine's forward
pass; given to a layer (``Dense(10, activation=keras.activations.softmax)``) it is also its
own name, so the engine's lookup by name accepts it and configs save it as that name.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnlab.keras.namespace import keras_module


class ActivationFunction(str):
    """An activation that is both a function of arrays and its Keras name ("relu")."""

    def __call__(self, x: Any) -> Any:
        from cnnlab.engine import activations
        from cnnlab.engine.config import floatx
        from cnnlab.engine.graph import eager

        return eager(activations.get(str(self)).forward(np.asarray(to_numpy(x), dtype=floatx())))

    def __repr__(self) -> str:
        return f"<function {self!s}>"

    @property
    def __name__(self) -> str:  # type: ignore[override]
        return str(self)


def to_numpy(x: Any) -> Any:
    """A NumPy array from an array, a list or another framework's tensor (``detach().numpy()``)."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def resolve_activations() -> dict[str, Any]:
    """``{name: ActivationFunction(name)}`` for every name in the engine's activation table."""
    from cnnlab.engine import activations

    return {name: ActivationFunction(name) for name in activations.ACTIVATIONS}


__getattr__, __dir__ = keras_module(
    __name__, "keras.activations", resolve_activations, "activations"
)
