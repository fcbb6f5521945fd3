"""A model's files: the whole model (keras.Model.save, keras.models.load_model), its weights
alone (save_weights / load_weights) and training checkpoints (weights, optimizer state, random
states and history: what BackupAndRestore needs to resume bit for bit). All are cnnlab archives
(``saving``: a zip of meta.json and .npy arrays, checksummed, written atomically); a suffix
registered as another format (".keras") is handed to that format."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import limits, saving
from .layers import deserialize

if TYPE_CHECKING:
    from .callbacks import History
    from .model import Model

CHECKPOINT_FORMAT = "cnnlab-checkpoint"


def save_model(model: Model, path: str | Path) -> None:
    """Write config, compile settings and weights into one file (no pickle), atomically.
    A suffix registered as another format (".keras") is written in that format."""
    other = saving.other_format(path)
    if other is not None:
        other[0](model, path)
        return
    meta = {
        "model_class": type(model).__name__,
        "model_config": model.get_config(),
        "compile_config": model.compile_config(),
    }
    saving.write_archive(path, meta, model.weights_dict())


def save_weights(model: Model, path: str | Path) -> None:
    """Only the weights, in cnnlab's archive format (keras.Model.save_weights)."""
    saving.write_archive(
        path, {"model_class": type(model).__name__, "weights_only": True}, model.weights_dict()
    )


def load_weights(model: Model, path: str | Path) -> None:
    """Weights written by save_weights (or save) of a model of the same architecture."""
    _, arrays = saving.read_archive(path)
    load_weight_arrays(model, arrays, path)


def save_checkpoint(model: Model, path: str | Path, epoch: int, history: History) -> None:
    """Everything needed to continue training exactly: weights, optimizer state, random
    states, history so far and the number of finished epochs. Written atomically."""
    meta = {
        "model_config": model.get_config(),
        "compile_config": model.compile_config(),
        "epoch": epoch,
        "history": history.history,
        "epoch_seconds": history.epoch_seconds,
        "rng_states": {name: rng.bit_generator.state for name, rng in model.rngs().items()},
    }
    arrays = {f"weights/{k}": v for k, v in model.weights_dict().items()}
    arrays.update({f"optimizer/{k}": v for k, v in model.optimizer.get_state().items()})
    saving.write_archive(path, meta, arrays, kind=CHECKPOINT_FORMAT)


def load_checkpoint(
    model: Model, path: str | Path
) -> tuple[int, dict[str, list[float]], list[float]]:
    """Restore a checkpoint of this model; returns (finished epochs, history, epoch seconds)."""
    meta, arrays = saving.read_archive(path, kind=CHECKPOINT_FORMAT)
    weights = {k.removeprefix("weights/"): v for k, v in arrays.items() if k.startswith("weights/")}
    if (
        sorted(weights) != sorted(model.weights_dict())
        or meta["model_config"].get("layers") != model.get_config()["layers"]
    ):
        raise ValueError(f"{path}: the checkpoint belongs to a different model")
    load_weight_arrays(model, weights, path)
    model.optimizer.set_state(
        {k.removeprefix("optimizer/"): v for k, v in arrays.items() if k.startswith("optimizer/")}
    )
    restore_rngs(model, meta, path)
    return meta["epoch"], meta["history"], meta["epoch_seconds"]


def restore_rngs(model: Model, meta: dict[str, Any], path: str | Path) -> None:
    """Put every random generator of the model back in the state the checkpoint recorded."""
    try:
        for name, rng in model.rngs().items():
            rng.bit_generator.state = meta["rng_states"][name]
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(
            f"{path}: meta.json: field 'rng_states' does not fit this model ({err!r:.80})"
        ) from None


def load_model(path: str | Path, compile: bool = True, **kwargs: Any) -> Model:
    """A model saved by ``Model.save`` (keras.models.load_model); verifies the checksum.
    A suffix registered as another format (".keras") is read in that format."""
    other = saving.other_format(path)
    if other is not None:
        return other[1](path, compile=compile)
    meta, arrays = saving.read_archive(path)
    if meta.get("weights_only"):
        raise ValueError(
            f"{path}: holds only weights (save_weights); build the model, then "
            "model.load_weights(path)"
        )
    try:
        model = model_from_config(meta["model_config"], meta.get("model_class", "Sequential"))
    except (KeyError, TypeError, AttributeError) as err:
        raise ValueError(
            f"{path}: the model config in the file is incomplete or damaged ({err!r})"
        ) from None
    load_weight_arrays(model, arrays, path)
    settings = meta.get("compile_config")
    if compile and settings:
        compile_saved(model, settings, path)
    return model


def compile_saved(model: Model, settings: dict[str, Any], path: str | Path) -> None:
    """compile() with the settings a file holds; damaged settings become a ValueError."""
    try:
        model.compile_from_config(settings)
    except (KeyError, TypeError, AttributeError, ValueError) as err:
        raise ValueError(
            f"{path}: meta.json: field 'compile_config' is incomplete or damaged ({err})"
        ) from None


def model_from_config(
    config: dict[str, Any] | list[dict[str, Any]], class_name: str = "Sequential"
) -> Model:
    """A Sequential or functional model from its get_config()."""
    if class_name not in ("Sequential", "Functional"):
        raise ValueError(f"unknown model class {class_name!r}")
    spec = {"class_name": class_name, "config": config}
    limits.check_model_params(
        lambda: deserialize(spec), "the model"
    )  # counted before any weight is allocated
    return deserialize(spec)


def load_weight_arrays(model: Model, arrays: dict[str, np.ndarray], path: str | Path) -> None:
    """Copy arrays keyed "layer/param" into the model; names and shapes must match."""
    expected = model.weights_dict()
    if sorted(expected) != sorted(arrays):
        raise ValueError(f"{path}: the weights in the file do not match the model")
    for key, value in arrays.items():
        if value.shape != expected[key].shape:
            raise ValueError(
                f"{path}: weight {key!r} has shape {value.shape}, the model needs "
                f"{expected[key].shape}"
            )
        expected[key][...] = value
