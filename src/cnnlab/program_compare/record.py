"""Recording a program's training on the engine: what each ``fit`` of the first trained model
was given and did (``FitCall``), and the ``Recorder`` that watches ``Model.fit/evaluate/predict``
while the program runs."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ..compare import PeakMemory
from ..engine.callbacks import Callback
from ..engine.model import Model, split_validation, take


@dataclasses.dataclass
class FitCall:
    """One ``fit`` of the recorded model: what it was given and what it did."""

    x: Any
    y: np.ndarray
    batch_size: int
    epochs: int
    shuffle: bool
    validation_split: float
    validation_data: tuple[Any, np.ndarray] | None
    shuffle_rng: np.random.Generator  # a copy, taken before the engine draws its first permutation
    learning_rates: list[float] = dataclasses.field(default_factory=list)
    history: dict[str, list[float]] = dataclasses.field(default_factory=dict)
    epoch_seconds: list[float] = dataclasses.field(default_factory=list)
    memory: int = 0
    stopped_inside_epoch: bool = False


class LearningRateLog(Callback):
    """Notes the optimizer's learning rate as each epoch begins, and whether training was
    stopped inside an epoch (a callback's on_batch_end), which a replay cannot repeat."""

    def __init__(self, record: FitCall) -> None:
        super().__init__()
        self.record = record

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.record.learning_rates.append(float(self.model.optimizer.learning_rate))

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        steps = self.params.get("steps") or 0
        if self.model.stop_training and batch + 1 < steps:
            self.record.stopped_inside_epoch = True


class Recorder:
    """Watches ``Model.fit/evaluate/predict`` while a program runs; keeps the first trained
    model."""

    def __init__(self, out_dir: Path, epochs: int | None = None) -> None:
        self.out_dir, self.epochs = out_dir, epochs
        self.model: Model | None = None
        self.fits: list[FitCall] = []
        self.evaluation: tuple[str, Any, np.ndarray | None] | None = None
        self.other_models: set[str] = set()

    @contextlib.contextmanager
    def watching(self) -> Iterator[Recorder]:
        originals = {name: getattr(Model, name) for name in ("fit", "evaluate", "predict")}
        recorder = self

        def fit(model: Model, *args: Any, **kwargs: Any) -> Any:
            return recorder.record_fit(originals["fit"], model, args, kwargs)

        def evaluate(model: Model, x: Any = None, y: Any = None, *args: Any, **kwargs: Any) -> Any:
            if model is recorder.model:
                recorder.evaluation = ("evaluate", x, y)
            return originals["evaluate"](model, x, y, *args, **kwargs)

        def predict(model: Model, x: Any, *args: Any, **kwargs: Any) -> Any:
            if model is recorder.model and (
                recorder.evaluation is None or recorder.evaluation[0] == "predict"
            ):
                recorder.evaluation = ("predict", x, None)
            return originals["predict"](model, x, *args, **kwargs)

        Model.fit, Model.evaluate, Model.predict = fit, evaluate, predict
        try:
            yield self
        finally:
            for name, method in originals.items():
                setattr(Model, name, method)

    def record_fit(self, fit: Any, model: Model, args: tuple, kwargs: dict[str, Any]) -> Any:
        """Run the program's fit; for the recorded model, note everything a replay needs."""
        if self.model is not None and model is not self.model:
            self.other_models.add(model.name)
            return fit(model, *args, **kwargs)
        arguments = bind_fit_arguments(args, kwargs)
        if self.epochs is not None:
            arguments["epochs"] = arguments.get("initial_epoch", 0) + self.epochs
        first = self.model is None
        self.model = model
        record = self.start_record(model, arguments, first)
        callbacks = list(arguments.pop("callbacks", None) or []) + [LearningRateLog(record)]
        with PeakMemory() as memory:
            history = fit(model, callbacks=callbacks, **arguments)
        record.memory = memory.growth
        record.history = {key: list(values) for key, values in history.history.items()}
        record.epoch_seconds = list(history.epoch_seconds)
        return history

    def start_record(self, model: Model, arguments: dict[str, Any], first: bool) -> FitCall:
        model.require_compiled("fit")
        if first:  # the model as it starts: weights, optimizer, loss, metrics
            from ..keras_format import save_keras

            save_keras(model, self.out_dir / "initial.keras")
        x, y = model.standardize(arguments.get("x"), arguments.get("y"), "fit")
        validation = arguments.get("validation_data")
        record = FitCall(
            x=x,
            y=y,
            batch_size=arguments.get("batch_size") or 32,
            epochs=arguments.get("epochs", 1),
            shuffle=arguments.get("shuffle", True),
            validation_split=arguments.get("validation_split", 0.0),
            validation_data=model.standardize(*validation[:2], "fit")
            if validation is not None
            else None,
            shuffle_rng=copy.deepcopy(model.shuffle_rng),
        )
        self.fits.append(record)
        return record


FIT_PARAMETERS = (
    "x",
    "y",
    "batch_size",
    "epochs",
    "verbose",
    "callbacks",
    "validation_split",
    "validation_data",
    "shuffle",
)


def bind_fit_arguments(args: tuple, kwargs: dict[str, Any]) -> dict[str, Any]:
    """fit's arguments by name, as Keras's signature orders them."""
    arguments = dict(zip(FIT_PARAMETERS, args))
    arguments.update(kwargs)
    return arguments


def first_batch(record: FitCall) -> tuple[Any, np.ndarray]:
    """The first batch the engine trained on: the first `batch_size` samples of epoch 1's order."""
    rng = copy.deepcopy(record.shuffle_rng)
    x, y = record.x, record.y
    if record.validation_data is None and record.validation_split:
        x, y, _ = split_validation(x, y, record.validation_split)
    order = (
        rng.permutation(len(y))[: record.batch_size]
        if record.shuffle
        else np.arange(min(len(y), record.batch_size))
    )
    return take(x, order), y[order]
