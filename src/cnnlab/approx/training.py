"""Training an approx run: the fit, boundary snapshots during it, the test Evaluation and
the arrays behind the figures."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .. import plots, runs
from ..datasets import function2d
from ..datasets.function2d import Domain
from ..engine import callbacks
from ..evaluation import Evaluation, run_facts
from .problem import (
    GRID_RESOLUTION,
    PREDICT_BATCH,
    SNAPSHOT_COUNT,
    SNAPSHOT_RESOLUTION,
    ApproxProblem,
)
from .rundir import write_run

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
