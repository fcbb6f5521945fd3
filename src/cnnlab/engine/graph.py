"""The functional API: layers called on symbolic tensors, and eager calls on arrays."""

from __future__ import annotations

from typing import Any

import numpy as np


class EagerArray(np.ndarray):
    """A NumPy array that also answers ``.numpy()``, as an eager tensor does
    (tutorials write ``model(x[:1]).numpy()``)."""

    def numpy(self) -> np.ndarray:
        return np.asarray(self)


def eager(value: Any) -> Any:
    """An array (or list of arrays) as EagerArray, without copying."""
    if isinstance(value, (list, tuple)):
        return type(value)(eager(v) for v in value)
    return np.asarray(value).view(EagerArray)


def call_layer(layer: Any, inputs: Any, training: bool = False) -> Any:
    """Eager call of a layer on arrays: build it from their shape if needed, then forward."""
    from .config import floatx

    xs = [np.asarray(x, dtype=floatx()) for x in inputs] if layer.multi_input else np.asarray(inputs, dtype=floatx())
    if not layer.built:
        layer.build([x.shape[1:] for x in xs] if layer.multi_input else xs.shape[1:])
    return eager(layer.forward(xs, training=bool(training)).copy())
