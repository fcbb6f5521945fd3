"""Function approximation (seed 000): a network learns a function of ``(x, y)``.

``cnnlab approx`` samples a built-in function (:mod:`cnnlab.datasets.function2d`) or a safe
expression, trains a network on the points and shows the original beside the prediction.
Boolean or integer results are a classification (softmax output, categorical
cross-entropy, accuracy); real results are a regression (one linear output, mean squared
error, R^2). The defaults are the seed's: ``ring-band`` on [0, 1]^2, 50,000 uniform points,
a tenth for testing, a tenth of the rest for validation, the ``seed-dense`` network
(Dense64-Dense64-Flatten-Dropout-Dense), Adam, batch 128, 15 epochs.

The network sees the points scaled to the unit square, ``u = (x - x_low) / (x_high - x_low)``
(and ``v`` likewise): the identity on the seed's domain, and a sane input range on any
other. The saved model takes these scaled coordinates; ``config.json["inputs"]`` records
the scaling.

Models: ``seed-dense``; any model file (its input is the 2 scaled coordinates); and
``patch-cnn``, a small CNN whose input is a ``k x k`` patch of the *coordinate* grid around
each point: channel 0 holds ``u`` and channel 1 holds ``v`` at the grid points
``(u + i * h, v + j * h)``, ``i, j = -k//2 .. k//2``, with spacing ``h = 1 / PATCH_RESOLUTION``
of the domain. The patch holds the coordinates, never the function's values, which would
give the answer away. Conv2D(16, 3x3) - Conv2D(32, 3x3, same) - Flatten - Dense(64) - Dense(K).

A run directory holds what ``cnnlab train`` writes (config.json, model.cnnlab, history.csv,
metrics.json, summary.txt, figures/, report.html) and ``approx.npz``, the arrays behind
the figures (grid, true and predicted fields, snapshots, test points), from which
:func:`write_figures` and :func:`render_report` redraw without retraining.
"""

from __future__ import annotations

import html
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import models, plots, runs
from .datasets import function2d
from .datasets.function2d import Domain, Function2D
from .engine import Sequential, callbacks, limits, optimizers
from .engine.batches import training_count
from .engine.saving import atomic_write
from .errors import CnnlabError
from .evaluation import Evaluation, run_facts
from .report import ReportFigure, Section, build_report, format_value, html_table
from .utils import to_categorical

__all__ = [
    "ApproxProblem",
    "ApproxResult",
    "ApproxSettings",
    "BoundarySnapshots",
    "InputEncoder",
    "approx_model_config",
    "parse_domain",
    "prepare",
    "render_report",
    "run_approx",
    "snapshot_epochs",
    "write_figures",
]

BUILTIN_APPROX_MODELS = ("seed-dense", "patch-cnn")
GRID_RESOLUTION = 200  # the fine grid of the original, field and error figures
SNAPSHOT_RESOLUTION = 100  # the grid recorded at a few epochs during training
SNAPSHOT_COUNT = 6  # panels of the snapshot strip, "before training" included
PATCH_RESOLUTION = 50  # patch-cnn: the coordinate patch's spacing is 1/50 of the domain
PREDICT_BATCH = 4096
MAX_SAMPLES = 10_000_000
DATA_FILE = "approx.npz"

FIGURES: dict[str, str] = {
    "original.png": "The function on a {resolution} x {resolution} grid of its domain: the "
    "original.",
    "test_true.png": "The {n_test:,} test points coloured by the function's true {what}.",
    "test_predicted.png": "The same test points coloured by the network's predicted {what}.",
    "field.png": "The network's {field} on the grid, with the true {boundary} drawn in black.",
    "errors.png": "The error map: {errors}.",
    "snapshots.png": "The predicted {field} after a few epochs (the first panel: before training), "
    "with the true {boundary}: how the network found the shape.",
    "history.png": "Loss{accuracy} per epoch, training and validation.",
}
METRIC_LABELS: dict[str, str] = {
    "test_accuracy": "Test accuracy",
    "r2": "R^2 (test)",
    "test_loss": "Test loss",
    "mae": "Mean absolute error (test)",
    "f1_macro": "F1 (macro)",
    "roc_auc_ovr": "ROC-AUC",
    "grid_error": "Grid error (share wrong, or mean |error|)",
    "params": "Parameters",
    "n_train": "Training points (validation included)",
    "n_test": "Test points",
}


# --------------------------------------------------------------------------- settings


@dataclass
class ApproxSettings:
    """Everything that decides an approximation run; saved as config.json["training"]."""

    function: str = "ring-band"
    samples: int = 50_000
    domain: str | None = None  # "x_low,x_high,y_low,y_high"; None: the function's own
    sampling: str = "uniform"
    noise: float = 0.0
    test_fraction: float = 0.1
    validation_split: float = 0.1
    model: str = "seed-dense"
    patch_size: int = 5
    epochs: int = 15
    batch_size: int = 128
    optimizer: str = "adam"
    learning_rate: float | None = None
    seed: int = 0

    def validate(self) -> None:
        """Refuse settings that cannot work, before any point is sampled."""
        checks = [
            (
                2 <= self.samples <= MAX_SAMPLES,
                f"samples must be between 2 and {MAX_SAMPLES:,}, received {self.samples}",
            ),
            (self.epochs >= 1, f"epochs must be at least 1, received {self.epochs}"),
            (self.batch_size >= 1, f"batch size must be at least 1, received {self.batch_size}"),
            (
                0 < self.test_fraction < 1,
                f"test fraction must be in (0, 1), received {self.test_fraction}",
            ),
            (
                0 <= self.validation_split < 1,
                f"validation split must be in [0, 1), received {self.validation_split}",
            ),
            (
                self.sampling in function2d.SAMPLINGS,
                f"unknown sampling {self.sampling!r}: choose one of "
                f"{', '.join(function2d.SAMPLINGS)}",
            ),
            (
                self.optimizer in optimizers.OPTIMIZERS,
                f"unknown optimizer {self.optimizer!r}: choose one of "
                f"{', '.join(optimizers.OPTIMIZERS)}",
            ),
            (
                self.learning_rate is None
                or (self.learning_rate > 0 and math.isfinite(self.learning_rate)),
                f"learning rate must be a positive number, received {self.learning_rate}",
            ),
            (
                self.patch_size >= 3 and self.patch_size % 2 == 1,
                f"patch size must be odd and at least 3, received {self.patch_size}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise CnnlabError(message)


def parse_domain(text: str) -> Domain:
    """``"x_low,x_high,y_low,y_high"`` -> ``((x_low, x_high), (y_low, y_high))``; CnnlabError if
    malformed."""
    expected = "give four numbers x_low,x_high,y_low,y_high with low < high, e.g. 0,1,0,1"
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise CnnlabError(f"domain {text!r} is not valid: {expected}") from None
    if (
        len(values) != 4
        or not all(math.isfinite(v) for v in values)
        or values[0] >= values[1]
        or values[2] >= values[3]
    ):
        raise CnnlabError(f"domain {text!r} is not valid: {expected}")
    return (values[0], values[1]), (values[2], values[3])


# --------------------------------------------------------------------------- inputs and model


@dataclass(frozen=True)
class InputEncoder:
    """Points of the domain -> network inputs: scaled coordinates (n, 2), or coordinate patches
    (n, k, k, 2)."""

    domain: Domain
    patch_size: int | None = None

    @property
    def input_shape(self) -> tuple[int, ...]:
        k = self.patch_size
        return (2,) if k is None else (k, k, 2)

    def scale(self, points: np.ndarray) -> np.ndarray:
        """(n, 2) points -> (n, 2) float32 in the unit square (the domain's corners -> 0 and 1)."""
        (x_low, x_high), (y_low, y_high) = self.domain
        low, width = np.array([x_low, y_low]), np.array([x_high - x_low, y_high - y_low])
        return ((np.asarray(points, dtype=np.float64) - low) / width).astype(np.float32)

    def encode(self, points: np.ndarray) -> np.ndarray:
        """Network inputs for ``points`` (n, 2)."""
        scaled = self.scale(points)
        if self.patch_size is None:
            return scaled
        offsets = (np.arange(self.patch_size) - self.patch_size // 2) / PATCH_RESOLUTION
        patches = np.empty((len(scaled), self.patch_size, self.patch_size, 2), dtype=np.float32)
        patches[..., 0] = (
            scaled[:, None, None, 0] + offsets[None, None, :]
        )  # u varies along columns
        patches[..., 1] = scaled[:, None, None, 1] + offsets[None, :, None]  # v varies along rows
        return patches

    def describe(self) -> dict[str, Any]:
        """The encoding as JSON, for config.json["inputs"]."""
        (x_low, x_high), (y_low, y_high) = self.domain
        text = {
            "scaling": "u = (x - x_low) / (x_high - x_low), v = (y - y_low) / (y_high - y_low)",
            "domain": [[x_low, x_high], [y_low, y_high]],
        }
        if self.patch_size is not None:
            text["patch"] = {
                "size": self.patch_size,
                "spacing": 1 / PATCH_RESOLUTION,
                "channels": ["u", "v"],
            }
        return text


def patch_cnn_layers(outputs: int, activation: str) -> list[dict]:
    """patch-cnn: Conv2D(16, 3x3) - Conv2D(32, 3x3, same) - Flatten - Dense(64, relu) -
    Dense(outputs)."""
    return [
        models.conv("conv2d", 16),
        models.conv("conv2d_1", 32, "same"),
        models.layer("Flatten", "flatten"),
        models.dense("dense", 64, "relu"),
        models.dense("dense_1", outputs, activation),
    ]


def approx_model_config(
    spec: str, encoder: InputEncoder, outputs: int, regression: bool
) -> dict[str, Any]:
    """The config of ``spec`` with ``outputs`` units: softmax for classes, linear for regression.

    Built-ins get their last activation set; a model file is taken as it is (its last layer
    must already have ``outputs`` units).
    """
    if spec == "patch-cnn":
        input_layer = {
            "class_name": "InputLayer",
            "config": {"name": "input_layer", "batch_shape": [None, *encoder.input_shape]},
        }
        return {
            "name": spec,
            "layers": [
                input_layer,
                *patch_cnn_layers(outputs, "linear" if regression else "softmax"),
            ],
        }
    config = models.model_config(spec, encoder.input_shape, outputs)
    if regression and spec in models.BUILTIN_MODELS:
        config["layers"][-1]["config"]["activation"] = "linear"
    return config


def check_model_spec(spec: str) -> None:
    """Refuse the image-only built-ins and missing files with a list of what works."""
    if spec in BUILTIN_APPROX_MODELS or (
        spec not in models.BUILTIN_MODELS and Path(spec).is_file()
    ):
        return
    raise CnnlabError(
        f"unknown model {spec!r} for approx: use {', '.join(BUILTIN_APPROX_MODELS)} or a "
        "JSON/TOML model file"
    )


# --------------------------------------------------------------------------- the problem


@dataclass
class ApproxProblem:
    """A function, its sampled data and a compiled model, ready to train."""

    settings: ApproxSettings
    function: Function2D
    encoder: InputEncoder
    x_train: np.ndarray  # (n, 2) points of the domain
    y_train: np.ndarray  # int64 labels, or float32 values
    x_test: np.ndarray
    y_test: np.ndarray
    model: Sequential
    model_config: dict[str, Any]

    @property
    def regression(self) -> bool:
        return self.function.kind == "regression"

    @property
    def class_names(self) -> list[str]:
        return [f"{value:g}" for value in self.function.classes]

    def targets(self, y: np.ndarray) -> np.ndarray:
        """What the loss compares with: one-hot rows, or (n, 1) values."""
        return y.reshape(-1, 1) if self.regression else to_categorical(y, self.function.num_classes)


def prepare(settings: ApproxSettings) -> ApproxProblem:
    """Check the settings, choose the function, sample the points and build the compiled model."""
    settings.validate()
    check_model_spec(settings.model)
    domain = parse_domain(settings.domain) if settings.domain is not None else None
    function = function2d.get_function(settings.function, domain)
    (x_train, y_train), (x_test, y_test) = function2d.make_dataset(
        function,
        settings.samples,
        function.domain,
        settings.sampling,
        settings.noise,
        settings.test_fraction,
        settings.seed,
    )
    check_split(settings, len(x_train), len(x_test))
    encoder = InputEncoder(
        function.domain, settings.patch_size if settings.model == "patch-cnn" else None
    )
    regression = function.kind == "regression"
    outputs = 1 if regression else function.num_classes
    config = approx_model_config(settings.model, encoder, outputs, regression)
    model = models.build_model(config, outputs, settings.seed)
    model.compile(
        optimizer=optimizers.get(settings.optimizer, settings.learning_rate),
        loss="mse" if regression else "categorical_crossentropy",
        metrics=[] if regression else ["accuracy"],
    )
    return ApproxProblem(
        settings, function, encoder, x_train, y_train, x_test, y_test, model, config
    )


def check_split(settings: ApproxSettings, n_train: int, n_test: int) -> None:
    """At least one test point, a validation set when asked for, and a batch no larger than the
    training set."""
    if n_test < 1:
        raise CnnlabError(
            f"test fraction {settings.test_fraction} of {settings.samples} samples leaves no test "
            "point"
        )
    fitted = training_count(n_train, settings.validation_split)
    if settings.validation_split and fitted in (0, n_train):
        raise CnnlabError(
            f"{n_train} training points are too few for validation split "
            f"{settings.validation_split}"
        )
    if settings.batch_size > fitted:
        raise CnnlabError(
            f"batch size {settings.batch_size} is larger than the {fitted} training points"
        )


# --------------------------------------------------------------------------- training


def snapshot_epochs(epochs: int, count: int = SNAPSHOT_COUNT) -> list[int]:
    """About ``count`` epochs from 0 (before training) to ``epochs``, evenly spaced, both ends
    included."""
    return sorted({round(e) for e in np.linspace(0, epochs, max(count, 2))})


class BoundarySnapshots(callbacks.Callback):
    """Records the model's output on fixed inputs before training and after the chosen epochs.

    ``self.snapshots`` is a list of ``(epoch, outputs)``; epoch 0 is the untrained model.
    """

    def __init__(self, inputs: np.ndarray, epochs: list[int]) -> None:
        self.inputs, self.epochs = inputs, set(epochs)
        self.snapshots: list[tuple[int, np.ndarray]] = []

    def record(self, epoch: int) -> None:
        if epoch in self.epochs:
            self.snapshots.append(
                (epoch, self.model.predict(self.inputs, batch_size=PREDICT_BATCH, verbose=0))
            )

    def on_train_begin(self, logs: dict | None = None) -> None:
        self.record(0)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.record(epoch + 1)


@dataclass
class ApproxResult:
    """What a run produced: metrics, history and the arrays behind the figures."""

    metrics: dict[str, Any]
    history: dict[str, list[float]]
    epoch_seconds: list[float]
    arrays: dict[str, np.ndarray]
    run_dir: Path
    figures: list[Path] = field(default_factory=list)


def grid_points(domain: Domain, resolution: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(xx, yy, points)``: a grid of the domain and its points as (R*R, 2) rows."""
    xx, yy = function2d.grid(domain, resolution)
    return xx, yy, np.stack([xx.ravel(), yy.ravel()], axis=1)


def as_field(outputs: np.ndarray, shape: tuple[int, ...], regression: bool) -> np.ndarray:
    """Model outputs for grid points -> (R, R) values or (R, R, K) probabilities."""
    return outputs.reshape(shape) if regression else outputs.reshape(*shape, -1)


def run_approx(
    problem: ApproxProblem, run_dir: str | Path, progress: list[callbacks.Callback] | None = None
) -> ApproxResult:
    """Train, evaluate, and write the run directory (model, history, metrics, figures, report)."""
    run_dir = runs.prepare_run_dir(run_dir)
    function = problem.function
    _, _, snap_points = grid_points(function.domain, SNAPSHOT_RESOLUTION)
    snapshots = BoundarySnapshots(
        problem.encoder.encode(snap_points), snapshot_epochs(problem.settings.epochs)
    )
    history = problem.model.fit(
        problem.encoder.encode(problem.x_train),
        problem.targets(problem.y_train),
        batch_size=problem.settings.batch_size,
        epochs=problem.settings.epochs,
        validation_split=problem.settings.validation_split,
        verbose=0,
        callbacks=[*(progress or []), snapshots],
    )
    test_output = problem.model.predict(
        problem.encoder.encode(problem.x_test), batch_size=PREDICT_BATCH, verbose=0
    )
    metrics = test_metrics(problem, test_output, history.epoch_seconds)
    arrays = field_arrays(problem, test_output, snapshots.snapshots)
    metrics["grid_error"] = float(
        plots.approx_errors(
            arrays["grid_predicted"], arrays["grid_truth"], function.num_classes
        ).mean()
    )
    result = ApproxResult(metrics, history.history, list(history.epoch_seconds), arrays, run_dir)
    write_run(problem, result)
    return result


def test_metrics(
    problem: ApproxProblem, output: np.ndarray, epoch_seconds: list[float]
) -> dict[str, Any]:
    """metrics.json: the test set's Evaluation (classification or regression scores) and the
    run facts."""
    function = problem.function
    if problem.regression:
        evaluation = Evaluation.of_regressor(problem.y_test, output)
    else:
        evaluation = Evaluation.of_classifier(problem.y_test, output, problem.class_names)
    return evaluation.metrics(
        **run_facts(problem.model, epoch_seconds, "numpy", function.name),
        function=function.formula or function.name,
        kind=function.kind,
        n_train=len(problem.x_train),
        n_test=len(problem.x_test),
    )


def field_arrays(
    problem: ApproxProblem, test_output: np.ndarray, snapshots: list[tuple[int, np.ndarray]]
) -> dict[str, np.ndarray]:
    """The arrays behind the figures (saved as approx.npz): grids, true and predicted fields,
    snapshots, test points."""
    function, regression = problem.function, problem.regression
    xx, yy, points = grid_points(function.domain, GRID_RESOLUTION)
    snap_xx, snap_yy, snap_points = grid_points(function.domain, SNAPSHOT_RESOLUTION)
    predicted = problem.model.predict(
        problem.encoder.encode(points), batch_size=PREDICT_BATCH, verbose=0
    )
    test_predicted = test_output[:, 0] if regression else test_output
    return {
        "grid_x": xx,
        "grid_y": yy,
        "grid_truth": function.targets(points).reshape(xx.shape),
        "grid_predicted": as_field(predicted, xx.shape, regression),
        "snapshot_x": snap_xx,
        "snapshot_y": snap_yy,
        "snapshot_truth": function.targets(snap_points).reshape(snap_xx.shape),
        "snapshot_epochs": np.array([epoch for epoch, _ in snapshots], dtype=np.int64),
        "snapshot_predicted": np.stack(
            [as_field(out, snap_xx.shape, regression) for _, out in snapshots]
        ),
        "x_test": problem.x_test,
        "y_test": problem.y_test,
        "test_predicted": test_predicted,
    }


# --------------------------------------------------------------------------- the run directory


def write_run(problem: ApproxProblem, result: ApproxResult) -> None:
    """config.json, model.cnnlab, history.csv, metrics.json, summary.txt, approx.npz, figures,
    report.html."""
    run_dir, function = result.run_dir, problem.function
    (x_low, x_high), (y_low, y_high) = function.domain
    function_facts = {
        "name": function.name,
        "formula": function.formula,
        "description": function.description,
        "kind": function.kind,
        "domain": [[x_low, x_high], [y_low, y_high]],
        "classes": list(function.classes),
    }
    runs.write_json(
        run_dir / "config.json",
        {
            "kind": "approximation",
            "command": "approx",
            "function": function_facts,
            "model": problem.model_config,
            "training": asdict(problem.settings),
            "inputs": problem.encoder.describe(),
            "dataset": function.name,
            "engine": "numpy",
            "created": runs.now_iso(),
        },
    )
    runs.write_results(run_dir, problem.model, result.history, result.epoch_seconds, result.metrics)
    atomic_write(run_dir / DATA_FILE, lambda file: np.savez_compressed(file, **result.arrays))
    result.figures = write_figures(run_dir)
    render_report(run_dir)


def load_arrays(run_dir: Path) -> dict[str, np.ndarray]:
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        raise CnnlabError(f"{run_dir} is not a cnnlab approx run directory: {DATA_FILE} is missing")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def run_class_names(config: dict[str, Any]) -> list[str]:
    """Class names of an approx run ("0", "1", ...); empty for a regression."""
    return [f"{value:g}" for value in config["function"]["classes"]]


def write_figures(run_dir: str | Path) -> list[Path]:
    """Draw every figure of an approx run from its approx.npz, config.json and history.csv."""
    run_dir = Path(run_dir)
    config, arrays = runs.read_json(run_dir, "config.json"), load_arrays(run_dir)
    names, out = run_class_names(config), run_dir / "figures"
    text = config["function"]["formula"] or config["function"]["name"]
    written = [
        plots.plot_function_field(
            arrays["grid_x"],
            arrays["grid_y"],
            arrays["grid_truth"],
            names,
            out / "original.png",
            title=f"Original: {short(text)}",
        )
    ]
    written += write_test_point_figures(arrays, names, out)
    written += write_field_figures(arrays, names, out)
    history = runs.read_history(run_dir / "history.csv")
    if history and plots.history_metric_names(history):
        written.append(plots.plot_history(history, out / "history.png"))
    return written


def write_test_point_figures(
    arrays: dict[str, np.ndarray], names: list[str], out: Path
) -> list[Path]:
    """The seed's pictures: the test points coloured by the true and by the predicted class
    (or value)."""
    truth, xx, yy = arrays["grid_truth"], arrays["grid_x"], arrays["grid_y"]
    what = "class" if names else "value"
    value_range = None if names else (float(truth.min()), float(truth.max()))
    limits = (float(xx.min()), float(xx.max()), float(yy.min()), float(yy.max()))
    predicted = arrays["test_predicted"].argmax(axis=1) if names else arrays["test_predicted"]
    return [
        plots.plot_points(
            arrays["x_test"],
            arrays["y_test"],
            names,
            out / "test_true.png",
            title=f"Original {what} on the test points",
            value_range=value_range,
            limits=limits,
        ),
        plots.plot_points(
            arrays["x_test"],
            predicted,
            names,
            out / "test_predicted.png",
            title=f"Predicted {what} on the test points",
            value_range=value_range,
            limits=limits,
        ),
    ]


def write_field_figures(arrays: dict[str, np.ndarray], names: list[str], out: Path) -> list[Path]:
    """The predicted field with the true boundary, the error map and the snapshots during
    training."""
    grid, truth, predicted = (
        (arrays["grid_x"], arrays["grid_y"]),
        arrays["grid_truth"],
        arrays["grid_predicted"],
    )
    snapshots = list(zip(arrays["snapshot_epochs"].tolist(), arrays["snapshot_predicted"]))
    error_title = "Wrongly classified grid points" if names else "Absolute error on the grid"
    return [
        plots.plot_prediction_field(
            *grid, predicted, truth, names, out / "field.png", title=field_title(len(names))
        ),
        plots.plot_error_map(*grid, predicted, truth, names, out / "errors.png", title=error_title),
        plots.plot_boundary_snapshots(
            arrays["snapshot_x"],
            arrays["snapshot_y"],
            snapshots,
            arrays["snapshot_truth"],
            names,
            out / "snapshots.png",
            title="The prediction during training",
        ),
    ]


def field_title(n_classes: int) -> str:
    if n_classes == 2:
        return "Predicted probability and true boundary"
    return (
        "Predicted class (faded where unsure) and true boundary"
        if n_classes
        else "Predicted value and true contours"
    )


def short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- report


def figure_captions(config: dict[str, Any], metrics: dict[str, Any]) -> dict[str, str]:
    """The caption of each figure, with this run's numbers in it."""
    classification = config["function"]["kind"] == "classification"
    error = metrics.get("grid_error", float("nan"))
    values = {
        "resolution": GRID_RESOLUTION,
        "n_test": metrics.get("n_test", 0),
        "what": "class" if classification else "value",
        "field": "probability of the second class" if classification else "value",
        "boundary": "decision boundary"
        if classification
        else "contour lines (dashed where negative)",
        "errors": (
            f"red where the predicted class differs from the function ({error:.2%} of the grid)"
            if classification
            else f"|predicted - true| at each grid point (mean {error:.4f})"
        ),
        "accuracy": " and accuracy" if classification else "",
    }
    if classification and len(config["function"]["classes"]) > 2:
        values["field"] = "class (faded where unsure)"
    return {name: caption.format(**values) for name, caption in FIGURES.items()}


def overview_rows(config: dict[str, Any], metrics: dict[str, Any]) -> list[list[Any]]:
    function = config["function"]
    (x_low, x_high), (y_low, y_high) = function["domain"]
    domain = f"[{x_low:g}, {x_high:g}] x [{y_low:g}, {y_high:g}]"
    rows = [["Function", function["name"]], ["Kind", function["kind"]], ["Domain", domain]]
    if function["formula"] != function["name"]:
        rows.insert(1, ["Formula", function["formula"]])
    if function["classes"]:
        rows.append(["Classes", ", ".join(f"{c:g}" for c in function["classes"])])
    rows += [[label, metrics[key]] for key, label in METRIC_LABELS.items() if key in metrics]
    seconds = metrics.get("epoch_seconds") or []
    if seconds:
        rows += [["Epochs", len(seconds)], ["Total training seconds", float(np.sum(seconds))]]
    return rows


def render_report(run_dir: str | Path) -> Path:
    """(Re)build the run's report.html from its files: overview, figures with captions, history,
    model."""
    run_dir = Path(run_dir)
    config = runs.read_json(run_dir, "config.json")
    metrics = runs.read_json(run_dir, "metrics.json")
    sections = report_sections(run_dir, config, metrics)
    title = f"cnnlab approx run {run_dir.name} (function {short(config['function']['name'])})"
    return build_report(
        title, [s for s in sections if s.html or s.figures], run_dir / "report.html"
    )


def report_sections(
    run_dir: Path, config: dict[str, Any], metrics: dict[str, Any]
) -> list[Section]:
    """Overview, original and predicted, the learned field, test metrics, training, model."""
    captions = figure_captions(config, metrics)

    def figures(*names: str) -> list[ReportFigure]:
        paths = [run_dir / "figures" / name for name in names]
        return [ReportFigure(path, captions[path.name]) for path in paths if path.is_file()]

    history_rows = runs.history_rows(runs.read_history(run_dir / "history.csv"))
    sections = [
        Section("Overview", overview_fragments(config, metrics)),
        Section(
            "Original and predicted",
            [],
            figures("original.png", "test_true.png", "test_predicted.png"),
        ),
        Section("The learned field", [], figures("field.png", "errors.png")),
        Section(
            "Training",
            [html_table(history_rows)] if history_rows else [],
            figures("snapshots.png", "history.png"),
        ),
        Section("Model", summary_fragments(run_dir)),
    ]
    if metrics.get("confusion_matrix"):
        header = ["", *[f"pred {name}" for name in metrics["class_names"]]]
        tables = [html_table(metrics["per_class"]), html_table(confusion_rows(metrics), header)]
        sections.insert(3, Section("Test metrics", tables))
    return sections


def overview_fragments(config: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    return [
        html_table(overview_rows(config, metrics), ["Quantity", "Value"]),
        "<h3>Settings</h3>",
        html_table(list(config.get("training", {}).items()), ["Setting", "Value"]),
    ]


def summary_fragments(run_dir: Path) -> list[str]:
    """The model summary as preformatted text, when the run holds one."""
    path = run_dir / "summary.txt"
    if not path.is_file():
        return []
    return [f"<pre>{html.escape(limits.read_file(path).decode(errors='replace'))}</pre>"]


def confusion_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    return [
        [f"true {name}", *row]
        for name, row in zip(metrics["class_names"], metrics["confusion_matrix"])
    ]


def headline(metrics: dict[str, Any]) -> str:
    """ "test accuracy 0.9804 (test loss 0.0622)" or "R^2 0.9871 (test MSE 0.0031)"."""
    if "test_accuracy" in metrics:
        return (
            f"test accuracy {format_value(metrics['test_accuracy'])} (test loss "
            f"{format_value(metrics['test_loss'])})"
        )
    return f"R^2 {format_value(metrics['r2'])} (test MSE {format_value(metrics['test_loss'])})"
