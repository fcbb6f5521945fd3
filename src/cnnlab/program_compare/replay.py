"""Replaying the recorded fits on a reference engine: real Keras 3 loads ``initial.keras`` and
trains on the engine's batches at the engine's learning rates, or the PyTorch twin
(``reference.torch.TorchTrainer``) does the same for Sequential models."""

from __future__ import annotations

import copy
import dataclasses
import time
from pathlib import Path
from typing import Any

import numpy as np

from ..compare import PeakMemory
from ..engine.model import Model, split_validation, take
from ..errors import CnnlabError
from .parity import parity_at_start
from .record import FitCall, Recorder, first_batch


def replay_on_keras(recorder: Recorder, progress: Any = None) -> tuple[Any, list[dict[str, Any]]]:
    """Real Keras 3 loads initial.keras and trains on the recorded batches; returns
    (the Keras model, one {"history", "epoch_seconds", "memory"} per fit)."""
    from ..reference.keras import import_keras, quiet_keras

    keras = import_keras()
    with quiet_keras():
        keras_model = keras.models.load_model(recorder.out_dir / "initial.keras")
    results = []
    for record in recorder.fits:
        with PeakMemory() as memory:
            history, seconds = replay_fit(keras_model, record, progress)
        results.append({"history": history, "epoch_seconds": seconds, "memory": memory.growth})
    return keras_model, results


def replay_fit(
    keras_model: Any, record: FitCall, progress: Any
) -> tuple[dict[str, list[float]], list[float]]:
    """The epochs the engine ran, each on the engine's permutation, at the engine's learning
    rate."""
    x, y, validation = record.x, record.y, record.validation_data
    if validation is None and record.validation_split:
        x, y, validation = split_validation(x, y, record.validation_split)
    rng = copy.deepcopy(record.shuffle_rng)
    history: dict[str, list[float]] = {}
    seconds = []
    for epoch, rate in enumerate(record.learning_rates):
        keras_model.optimizer.learning_rate = rate
        order = rng.permutation(len(y)) if record.shuffle else np.arange(len(y))
        logs, took = keras_epoch(keras_model, x, y, order, validation, record)
        seconds.append(took)
        log_epoch(history, logs, progress, epoch, len(record.learning_rates))
    return history, seconds


def keras_epoch(
    keras_model: Any,
    x: Any,
    y: np.ndarray,
    order: np.ndarray,
    validation: tuple | None,
    record: FitCall,
) -> tuple[dict[str, float], float]:
    """One Keras epoch on the samples in the engine's ``order``, then the validation data; returns
    (that epoch's logs, the seconds of its training alone)."""
    from ..reference.keras import quiet_keras

    start = time.perf_counter()
    with quiet_keras():
        logs = keras_model.fit(
            take(x, order),
            y[order],
            batch_size=record.batch_size,
            epochs=1,
            shuffle=False,
            verbose=0,
        ).history
    seconds = time.perf_counter() - start
    logs = {key: float(values[-1]) for key, values in logs.items()}
    if validation is not None:
        with quiet_keras():
            val = keras_model.evaluate(
                *validation, batch_size=record.batch_size, verbose=0, return_dict=True
            )
        logs.update({f"val_{key}": float(value) for key, value in val.items()})
    return logs, seconds


def log_epoch(
    history: dict[str, list[float]], logs: dict[str, float], progress: Any, epoch: int, epochs: int
) -> None:
    """Append one replayed epoch's logs to the history and tell ``progress`` (when given)."""
    for key, value in logs.items():
        history.setdefault(key, []).append(value)
    if progress is not None:
        progress(epoch, epochs, logs)


@dataclasses.dataclass
class Replay:
    """What a reference engine did with the recorded program: its fits, its outputs, its files."""

    key: str  # "keras" or "torch"
    name: str  # how the report names it
    fits: list[dict[str, Any]]
    predict: Any  # x -> the model's raw outputs
    save: Any  # folder -> None
    parity: list[dict[str, Any]]


def replay_keras(recorder: Recorder, progress: Any) -> Replay:
    from ..reference.keras import quiet_keras

    keras_model, fits = replay_on_keras(recorder, progress)

    def predict(x: Any) -> np.ndarray:
        with quiet_keras():
            return np.asarray(keras_model.predict(x, batch_size=256, verbose=0))

    def save(folder: Path) -> None:
        with quiet_keras():
            keras_model.save(folder / "keras.keras")

    return Replay(
        "keras", "Keras 3 (torch backend)", fits, predict, save, parity_at_start(recorder)
    )


def replay_torch(recorder: Recorder, progress: Any) -> Replay:
    """The PyTorch twin (reference.torch.TorchTrainer) from initial.keras's weights and settings,
    epoch by epoch on the recorded batches at the recorded learning rates (Sequential models)."""
    from ..compare import blas_threads
    from ..engine.sequential import Sequential
    from ..keras_format import load_keras
    from ..reference.torch import TorchTrainer

    initial = load_keras(recorder.out_dir / "initial.keras")
    if not isinstance(initial, Sequential):
        raise CnnlabError(
            "--reference torch replays Sequential models; this program builds a functional model: "
            "leave out --reference (Keras 3 replays any model)"
        )
    trainer = TorchTrainer(
        initial.get_config(),
        initial.optimizer.get_config(),
        initial.loss.get_config(),
        seed=0,
        threads=blas_threads(),
    )
    trainer.set_weights_from(initial)
    fits = []
    for record in recorder.fits:
        with PeakMemory() as memory:
            history, seconds = replay_torch_fit(trainer, record, progress)
        fits.append({"history": history, "epoch_seconds": seconds, "memory": memory.growth})
    return Replay(
        "torch",
        "PyTorch",
        fits,
        lambda x: trainer.predict(x, batch_size=256),
        lambda folder: trainer.to_engine().save(folder / "torch.cnnlab"),
        torch_parity(recorder, initial),
    )


def replay_torch_fit(
    trainer: Any, record: FitCall, progress: Any
) -> tuple[dict[str, list[float]], list[float]]:
    """The PyTorch twin's epochs: one ``TorchTrainer.fit`` per recorded epoch, at its learning
    rate, shuffled by a copy of the engine's generator."""
    rng = copy.deepcopy(record.shuffle_rng)
    history: dict[str, list[float]] = {}
    seconds = []
    for epoch, rate in enumerate(record.learning_rates):
        for group in trainer.optimizer.param_groups:
            group["lr"] = rate
        logs = trainer.fit(
            record.x,
            record.y,
            batch_size=record.batch_size,
            epochs=1,
            shuffle=record.shuffle,
            validation_split=record.validation_split,
            validation_data=record.validation_data,
            shuffle_rng=rng,
        )
        logs = {key: values[-1] for key, values in logs.items()}
        seconds.append(trainer.epoch_seconds[-1])  # that fit's one epoch, training only
        log_epoch(history, logs, progress, epoch, len(record.learning_rates))
    return history, seconds


def torch_parity(recorder: Recorder, initial: Model) -> list[dict[str, Any]]:
    """reference.torch.parity_report on the first batch, turned into one row per layer."""
    from ..reference.torch import parity_report

    x, y = first_batch(recorder.fits[0])
    rows = parity_report(initial, x, y, steps=0, batch_size=len(y))
    table: dict[str, dict[str, Any]] = {
        "loss": {"layer": "loss", "class": "", "grad_max_rel": None}
    }
    for layer in initial.layers:
        table[layer.name] = {
            "layer": layer.name,
            "class": type(layer).__name__,
            "grad_max_rel": None,
        }
    for row in rows:
        entry = table["loss"] if row["quantity"] == "loss" else table.get(row["layer"])
        if row["quantity"] in ("forward", "loss"):
            entry.update(output_max_abs=row["max_abs"], output_max_rel=row["max_rel"])
        elif row["quantity"] == "gradient":
            entry["grad_max_rel"] = max(entry["grad_max_rel"] or 0.0, row["max_rel"])
    return list(table.values())
