"""The pipeline of a run: settings -> prepare (data, checks, compiled model) -> fit -> Evaluation
-> run directory.

``prepare`` refuses what cannot work before anything is written and returns a ``PreparedRun``;
``train`` locks the run directory, fits with either engine (the NumPy engine by default;
``engine="torch"`` trains the same architecture from the same initial weights in PyTorch with
the same callbacks and copies the result back, so every run directory holds a model file the
engine can load), makes the test set's ``Evaluation`` and writes the directory from it.
``cnnlab compare`` prepares its runs here too, and study trials fit through ``fit``.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np

from . import models, runs
from .connect import connect_engine
from .datasets import Dataset, load_dataset, prepare_images
from .engine import Sequential, callbacks, metadata, optimizers, saving
from .engine.batches import training_count
from .engine.model import CHECKPOINT_FORMAT
from .errors import CnnlabError
from .evaluation import Evaluation, evaluate_model, run_facts
from .utils import to_categorical

ENGINES = ("numpy", "torch")


@dataclass
class TrainSettings:
    """Everything that decides a training run; saved as config.json["training"]."""

    dataset: str = "mnist"
    model: str | None = None  # a built-in name or a model file; None: the default for the data
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float | None = None  # None: the optimizer's Keras default
    validation_split: float = 0.1
    seed: int = 0
    engine: str = "numpy"
    train_size: int | None = None  # use only the first N training images
    test_size: int | None = None  # use only the first N test images
    data_dir: str | None = None

    def validate(self) -> None:
        """Refuse settings that cannot work, before any data is read."""
        refuse_failed(
            [
                *fitting_checks(self),
                (
                    self.engine in ENGINES,
                    f"unknown engine {self.engine!r}: choose one of {', '.join(ENGINES)}",
                ),
                (
                    self.train_size is None or self.train_size >= 2,
                    f"train size must be at least 2, received {self.train_size}",
                ),
                (
                    self.test_size is None or self.test_size >= 1,
                    f"test size must be at least 1, received {self.test_size}",
                ),
                (self.seed >= 0, f"seed must be a non-negative integer, received {self.seed}"),
            ]
        )


Check = tuple[bool, str]  # (the setting is fine, the message if it is not)


def fitting_checks(settings: Any) -> list[Check]:
    """The checks of what every training run has (cnnlab train and approx): epochs, batch size,
    validation split, optimizer and learning rate."""
    rate = settings.learning_rate
    return [
        (settings.epochs >= 1, f"epochs must be at least 1, received {settings.epochs}"),
        (
            settings.batch_size >= 1,
            f"batch size must be at least 1, received {settings.batch_size}",
        ),
        (
            0 <= settings.validation_split < 1,
            f"validation split must be in [0, 1), received {settings.validation_split}",
        ),
        (
            settings.optimizer in optimizers.OPTIMIZERS,
            f"unknown optimizer {settings.optimizer!r}: choose one of "
            f"{', '.join(optimizers.OPTIMIZERS)}",
        ),
        (
            rate is None or (rate > 0 and math.isfinite(rate)),
            f"learning rate must be a positive number, received {rate}",
        ),
    ]


def refuse_failed(checks: list[Check]) -> None:
    """Raise the message of the first check that failed (a CnnlabError: one line for the user)."""
    for ok, message in checks:
        if not ok:
            raise CnnlabError(message)


@dataclass
class PreparedData:
    """Network-ready arrays: x float32 (N, H, W, C) in [0, 1], y integer labels (N,)."""

    name: str
    class_names: list[str]
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    source: str = ""

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def prepare_data(
    dataset: Dataset, train_size: int | None = None, test_size: int | None = None
) -> PreparedData:
    """Scale and shape a dataset for the network, keeping the first N images where asked."""
    return PreparedData(
        name=dataset.name,
        class_names=list(dataset.class_names),
        source=dataset.source,
        x_train=prepare_images(dataset.x_train[:train_size]),
        y_train=np.asarray(dataset.y_train[:train_size]).astype(np.int64),
        x_test=prepare_images(dataset.x_test[:test_size]),
        y_test=np.asarray(dataset.y_test[:test_size]).astype(np.int64),
    )


def load_data(settings: TrainSettings) -> PreparedData:
    return prepare_data(
        load_dataset(settings.dataset, data_dir=settings.data_dir),
        settings.train_size,
        settings.test_size,
    )


@dataclass
class PreparedRun:
    """A run checked and ready to train: the settings, the data and the compiled model.

    ``prepare`` makes it: everything that can be refused (settings, labels, a batch larger
    than the training set, a model that does not fit the images) is refused there, once,
    before the run directory is touched."""

    settings: TrainSettings
    data: PreparedData
    model: Sequential
    config: dict[str, Any]


@dataclass
class TrainResult:
    """What a run produced, in memory (the run directory holds the same on disk)."""

    model: Sequential
    history: dict[str, list[float]]
    epoch_seconds: list[float]
    evaluation: Evaluation
    metrics: dict[str, Any]
    run_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def y_prob(self) -> np.ndarray:
        return self.evaluation.y_prob


def prepare(settings: TrainSettings, data: PreparedData | None = None) -> PreparedRun:
    """Validate the settings, load the data (unless given), build and compile the model."""
    settings.validate()
    data = data or load_data(settings)
    check_labels(data)
    settings.model = settings.model or models.default_model(data.input_shape)  # named in config
    model, config = build_compiled_model(settings, data)
    check_batch_fits(settings, data)
    return PreparedRun(settings, data, model, config)


def build_compiled_model(settings: TrainSettings, data: PreparedData) -> tuple[Sequential, dict]:
    """The model named by the settings, shaped for the data, compiled as the seed program."""
    spec = settings.model or models.default_model(data.input_shape)
    config = models.model_config(spec, data.input_shape, data.num_classes)
    model = models.build_model(config, data.num_classes, settings.seed)
    compile_as_seed(model, settings)
    return model, config


def compile_as_seed(model: Sequential, settings: TrainSettings) -> None:
    """Compile as the seed program: the chosen optimizer, categorical cross-entropy, accuracy."""
    model.compile(
        optimizer=optimizers.get(settings.optimizer, settings.learning_rate),
        loss="categorical_crossentropy",
        metrics=["accuracy"],
    )


def check_labels(data: PreparedData) -> None:
    """Refuse, before training, labels a classifier cannot learn from: one class only, or labels
    outside 0..K-1 (they would crash in the loss, or a negative one train the wrong class)."""
    for split, labels in (("training", data.y_train), ("test", data.y_test)):
        bad = (labels < 0) | (labels >= data.num_classes)
        if bad.any():
            raise CnnlabError(
                f"{data.name}: {split} label {labels[bad][0]} is not one of the {data.num_classes} "
                f"classes (expected 0 to {data.num_classes - 1})"
            )
    present = np.unique(data.y_train)
    if len(present) < 2:
        raise CnnlabError(
            f"{data.name}: the training labels hold only one class "
            f"({data.class_names[present[0]]!r}); "
            "a classifier needs at least two"
        )


def check_batch_fits(settings: TrainSettings, data: PreparedData) -> None:
    """Refuse a batch larger than the images left for training after the validation split."""
    train_count = training_count(len(data.x_train), settings.validation_split)
    if settings.batch_size > train_count:
        raise CnnlabError(
            f"batch size {settings.batch_size} is larger than the {train_count} training images"
        )
    if settings.validation_split and train_count == len(data.x_train):
        raise CnnlabError(
            f"{len(data.x_train)} training images are too few for validation split "
            f"{settings.validation_split}"
        )


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during training; the message says what was kept and how to continue."""


def fit(
    settings: TrainSettings,
    model: Sequential,
    data: PreparedData,
    progress: list[callbacks.Callback],
    checkpoint_dir: Path | None = None,
) -> tuple[dict, list[float]]:
    """Train with the chosen engine; returns (history, seconds per epoch).

    With checkpoint_dir, the NumPy engine checkpoints every finished epoch there and resumes
    from a checkpoint it finds (``BackupAndRestore``). The engine's BLAS threads follow the free
    cores (``connect_engine``: a study trial in this process gets that too, not only the CLI).
    """
    connect_engine()
    y_train = to_categorical(data.y_train, data.num_classes)
    if settings.engine == "torch":
        return fit_torch(settings, model, data.x_train, y_train, progress)
    # the checkpoint stays until the run directory is whole: train() deletes it after write_run
    backup = (
        [callbacks.BackupAndRestore(checkpoint_dir, delete_checkpoint=False)]
        if checkpoint_dir
        else []
    )
    history = model.fit(
        data.x_train,
        y_train,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validation_split=settings.validation_split,
        verbose=0,
        callbacks=[*progress, *backup],
    )
    return history.history, history.epoch_seconds


def fit_torch(
    settings: TrainSettings, model: Sequential, x: np.ndarray, y: np.ndarray, progress: list
) -> tuple[dict, list[float]]:
    """Train the same architecture from the same weights in PyTorch; weights come back into
    model."""
    try:
        from .reference.torch import TorchTrainer
    except ImportError as err:
        raise CnnlabError(
            f"--engine torch needs PyTorch: pip install 'cnnlab[torch]' ({err})"
        ) from None
    trainer = TorchTrainer(
        model.get_config(), model.optimizer.get_config(), model.loss.get_config(), settings.seed
    )
    trainer.set_weights_from(model)  # the same initial weights as the engine would start from
    history = trainer.fit(
        x,
        y,
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validation_split=settings.validation_split,
        shuffle_rng=model.shuffle_rng,
        callbacks=progress,
        engine_model=model,  # the callbacks' model, as in the engine's fit
    )
    trainer.to_engine(model)
    return history, list(trainer.epoch_seconds)


def evaluate(
    model: Sequential, data: PreparedData, settings: TrainSettings, epoch_seconds: list[float]
) -> tuple[Evaluation, dict[str, Any]]:
    """The test set's Evaluation and the run's ``metrics.json`` (its scores and the run facts)."""
    evaluation = evaluate_model(model, data.x_test, data.y_test, data.class_names)
    facts = run_facts(model, epoch_seconds, settings.engine, data.name)
    return evaluation, evaluation.metrics(**facts)


def write_run(run_dir: Path, result: TrainResult, data: PreparedData) -> None:
    """model, history.csv, metrics.json, summary.txt, figures and report.html (config.json is
    written when the run starts).

    ``result.extra["write_seconds"]``: this step's wall seconds, mostly the figures
    (matplotlib's import included)."""
    started = time.perf_counter()
    from .report import render_run_report, write_figures_for_run

    runs.write_results(run_dir, result.model, result.history, result.epoch_seconds, result.metrics)
    write_figures_for_run(
        run_dir,
        result.evaluation,
        history=result.history,
        x_test=data.x_test,
        first_kernel=first_conv_kernel(result.model),
    )
    render_run_report(run_dir)
    result.extra["write_seconds"] = time.perf_counter() - started


def first_conv_kernel(model: Sequential) -> np.ndarray | None:
    """The kernel (kh, kw, C_in, F) of the model's first convolution, if it has one."""
    kernels = (layer.params.get("kernel") for layer in model.layers if layer.params)
    return next((kernel for kernel in kernels if kernel is not None and kernel.ndim == 4), None)


def write_config(run_dir: Path, settings: TrainSettings, config: dict, data: PreparedData) -> None:
    """config.json, written before training so that an interrupted run can be resumed."""
    runs.write_json(
        run_dir / "config.json",
        {
            "kind": "run",
            "model": config,
            "training": asdict(settings),
            "dataset": data.name,
            "engine": settings.engine,
            "created": runs.now_iso(),
        },
    )


def train(
    run: TrainSettings | PreparedRun,
    run_dir: Path,
    progress: list[callbacks.Callback] | None = None,
    resume: bool = False,
    overwrite: bool = False,
) -> TrainResult:
    """The whole run: prepare (unless prepared), train (checkpointing every epoch), evaluate,
    write ``run_dir``.

    The run directory is locked for the whole run (a second ``train`` into it refuses), a finished
    run in it is replaced only with ``overwrite``, and the checkpoint goes only once it is whole."""
    prepared = run if isinstance(run, PreparedRun) else prepare(run)
    run_dir = runs.prepare_run_dir(run_dir)
    with runs.run_lock(run_dir):
        return train_locked(prepared, run_dir, progress or [], resume, overwrite)


def check_run_dir(run_dir: Path, resume: bool, overwrite: bool) -> None:
    """Refuse to start over an unfinished run (without resume) or a finished one
    (without overwrite)."""
    if (run_dir / callbacks.BackupAndRestore.FILE).exists() and not resume:
        raise CnnlabError(
            f"{run_dir} holds an unfinished run: continue it with --resume {run_dir}, or choose "
            "another --out"
        )
    if not resume and not overwrite and runs.is_finished_run(run_dir):
        raise CnnlabError(
            f"{run_dir} holds a finished run: choose another --out, or replace it with --overwrite"
        )


def train_locked(
    run: PreparedRun,
    run_dir: Path,
    progress: list[callbacks.Callback],
    resume: bool,
    overwrite: bool,
) -> TrainResult:
    """train() once the run directory is this process's alone."""
    check_run_dir(run_dir, resume, overwrite)
    if not resume:
        runs.clear_results(run_dir)  # with --overwrite: no file of the old run is left to mix in
        write_config(run_dir, run.settings, run.config, run.data)
    history, seconds = fit_interruptibly(run, progress, run_dir)
    evaluation, metrics = evaluate(run.model, run.data, run.settings, seconds)
    result = TrainResult(run.model, history, seconds, evaluation, metrics, run_dir)
    write_run(run_dir, result, run.data)
    (run_dir / callbacks.BackupAndRestore.FILE).unlink(missing_ok=True)  # only now: all written
    return result


def fit_interruptibly(
    run: PreparedRun, progress: list[callbacks.Callback], run_dir: Path
) -> tuple[dict, list[float]]:
    """fit() with its checkpoints in run_dir; Ctrl-C says what was kept and how to go on."""
    checkpoint = run_dir / callbacks.BackupAndRestore.FILE
    try:
        return fit(run.settings, run.model, run.data, progress, checkpoint_dir=run_dir)
    except KeyboardInterrupt:
        kept = (
            f"the finished epochs are saved in {checkpoint}"
            if checkpoint.exists()
            else "no epoch had finished"
        )
        raise Interrupted(
            f"interrupted: {kept}; continue with: cnnlab train --resume {run_dir}"
        ) from None


def resume_settings(run_dir: Path) -> TrainSettings:
    """The settings of an interrupted run, read from its config.json."""
    if not (run_dir / callbacks.BackupAndRestore.FILE).is_file():
        finished = (run_dir / runs.MODEL_FILE).is_file()
        raise CnnlabError(
            f"{run_dir} has no checkpoint to resume: "
            + ("the run finished" if finished else "no epoch had finished; start it again")
        )
    settings = settings_from_config(
        runs.read_json(run_dir, "config.json").get("training"), run_dir / "config.json"
    )
    try:  # every field of the checkpoint checked now, before any data is read
        saving.read_archive(run_dir / callbacks.BackupAndRestore.FILE, kind=CHECKPOINT_FORMAT)
    except ValueError as err:
        raise CnnlabError(str(err)) from None
    if settings.engine != "numpy":
        raise CnnlabError(
            f"--resume works with the numpy engine; {run_dir} was trained with {settings.engine}"
        )
    return settings


def settings_from_config(training: Any, path: Path) -> TrainSettings:
    """TrainSettings from config.json["training"], every field's type checked against the dataclass
    and its range by validate(); a setting this cnnlab does not know is refused by name."""
    kinds = {"int": int, "float": metadata.NUMBER, "str": str, "None": type(None)}
    schema = {
        f.name: metadata.Field(tuple(kinds[t.strip()] for t in f.type.split("|")), required=False)
        for f in fields(TrainSettings)
    }
    if not isinstance(training, dict):
        raise CnnlabError(
            f"{path}: field 'training' must be an object, received {type(training).__name__}"
        )
    unknown = sorted(set(training) - set(schema))
    if unknown:
        raise CnnlabError(
            f"{path}: unknown setting 'training.{unknown[0]}' (written by a newer cnnlab?); "
            "this cnnlab cannot resume the run"
        )
    try:
        settings = TrainSettings(**metadata.check_fields(training, schema, f"{path}: training"))
        settings.validate()
    except CnnlabError as err:
        raise CnnlabError(f"{path}: training: {err}") from None
    except ValueError as err:
        raise CnnlabError(str(err)) from None
    return settings
