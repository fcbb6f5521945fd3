"""A loaded model's compile settings: Keras's ``compile_config`` as ``model.compile``, and the
optimizer's saved variables (step count, learning rate, slots) restored when they fit."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnlab.engine import losses as engine_losses
from cnnlab.engine import optimizers as engine_optimizers
from cnnlab.engine.errors import UnsupportedKerasFeature

from .common import h5py_module
from .weights import read_dataset, slot_order, trainable_weights

if TYPE_CHECKING:
    import h5py


def compile_from_keras(path: Path, model: Any, settings: Any, optimizer_vars: Any = None) -> None:
    """model.compile with Keras's compile_config (optimizer, loss, metrics); its saved variables
    (step count, learning rate, slots) restored when they match the model."""
    if not settings:
        return
    try:
        optimizer = engine_optimizers.get(settings["optimizer"])
        optimizer.learning_rate = float32_value(optimizer.learning_rate)
        loss = engine_losses.get(settings.get("loss"))  # a name or Keras's serialized loss object
        model.compile(optimizer=optimizer, loss=loss, metrics=settings.get("metrics"))
    except UnsupportedKerasFeature as err:
        raise UnsupportedKerasFeature(f"{path}: {err}") from None
    except (KeyError, TypeError) as err:
        raise ValueError(f"{path}: the compile config is incomplete or damaged ({err!r})") from None
    if optimizer_vars is not None and not isinstance(optimizer_vars, h5py_module().Group):
        raise ValueError(f"{path}: optimizer/vars in the weights file is not a group")
    if optimizer_vars is not None:
        restore_optimizer(path, model, optimizer_vars)


def float32_value(value: Any) -> float:
    """The shortest float that is the same float32
    (Keras keeps rates in float32: 0.001, not 0.0010000000474974513)."""
    return float(str(np.float32(value)))


def restore_optimizer(path: Path, model: Any, stored: h5py.Group) -> None:
    """Set the optimizer's step count, learning rate and slots from Keras's variables; left as
    freshly compiled where their number does not match (a model saved before training)."""
    optimizer, groups = model.optimizer, slot_order(model.optimizer)
    weights = trainable_weights(model)
    if groups is None or len(stored) != 2 + sum(len(group) for group in groups) * len(weights):
        return
    optimizer.iterations = int(read_dataset(path, stored, "0", (), "optimizer iterations"))
    optimizer.learning_rate = float32_value(
        read_dataset(path, stored, "1", (), "optimizer learning rate")
    )
    index = 2
    for group in groups:
        for key, param in weights:
            for name in group:
                value = read_dataset(
                    path, stored, str(index), param.shape, f"optimizer slot {key}/{name}"
                )
                optimizer.slots.setdefault(key, {})[name] = value.astype(param.dtype)
                index += 1
