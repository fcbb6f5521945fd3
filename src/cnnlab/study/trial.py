"""One trial: a configuration trained with one seed. The same function runs everywhere.

``run_trial(task, data)`` is what a local worker process and a Ray task both call: it
builds the model, trains, predicts the test images and returns a ``TrialResult``; it never
raises. A model whose shapes cannot fit comes back ``invalid`` (with the reason,
untrained); any other error comes back ``failed`` (with the traceback), so the study goes on.

The driver turns the test probabilities into metrics (``score``) as each result arrives:
scikit-learn is then imported once, in the driver, instead of once in every worker (a
second of CPU each, which two workers on two cores pay on top of their trials).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .. import models, runs
from ..connect import blas_threads
from ..errors import CnnlabError
from ..evaluation import HEADLINE, PREDICT_BATCH, Evaluation
from ..training import PreparedData, TrainSettings, compile_as_seed, fit
from .spec import StudySpec, apply_configuration, configurations

STORED_METRICS = (*HEADLINE, "confusion_matrix")


def trial_key(configuration: dict[str, Any], seed: int) -> str:
    """A stable name of (configuration, seed): the same in every process and every run."""
    canonical = json.dumps({"configuration": configuration, "seed": seed}, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class TrialPlan:
    """A trial as the study lists it, before any data is read."""

    key: str
    position: int
    configuration: dict[str, Any]
    seed: int
    repeat: int


def plan_trials(spec: StudySpec) -> list[TrialPlan]:
    """Every (configuration, seed) of the study, in the order they are run."""
    plans = []
    for index, configuration in enumerate(configurations(spec)):
        for repeat in range(spec.repeats):
            seed = spec.seed + repeat
            position = index * spec.repeats + repeat
            plans.append(
                TrialPlan(trial_key(configuration, seed), position, configuration, seed, repeat)
            )
    return plans


@dataclass(frozen=True)
class TrialTask:
    """Everything a worker needs besides the data: picklable, small."""

    key: str
    model_config: dict[str, Any]
    training: dict[str, Any]
    seed: int


def make_task(spec: StudySpec, plan: TrialPlan, data: PreparedData) -> TrialTask:
    base = models.model_config(spec.model, data.input_shape, data.num_classes)
    config = apply_configuration(spec, base, plan.configuration)
    return TrialTask(plan.key, config, dict(spec.training), plan.seed)


@dataclass
class TrialResult:
    """What one trial produced; the store writes it in one transaction."""

    key: str
    status: str  # done | failed | invalid
    metrics: dict[str, Any] | None = None
    history: dict[str, list[float]] | None = None
    params: int | None = None
    seconds: float = 0.0
    error: str | None = None
    host: str = field(default_factory=socket.gethostname)
    pid: int = field(default_factory=os.getpid)
    blas_threads: int | None = None
    started: str = ""
    finished: str = ""
    y_prob: np.ndarray | None = (
        None  # test probabilities (N, K) on their way to ``score``; not stored
    )

    def to_dict(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if key != "y_prob"}


def run_trial(task: TrialTask, data: PreparedData) -> TrialResult:
    """Build, train and evaluate one trial; never raises (see the module docstring)."""
    result = TrialResult(task.key, "running", started=runs.now_iso(), blas_threads=blas_threads())
    start = time.perf_counter()
    settings = TrainSettings(seed=task.seed, **task.training)
    try:
        model = models.build_model(task.model_config, data.num_classes, task.seed)
    except CnnlabError as err:
        result.status, result.error = "invalid", str(err)
    else:
        try:
            train_and_evaluate(model, settings, data, result)
            result.status = "done"
        except Exception as err:  # a failing trial is recorded, the study goes on
            result.status = "failed"
            result.error = f"{type(err).__name__}: {err}\n{traceback.format_exc(limit=-8)}"
    result.seconds = time.perf_counter() - start
    result.finished = runs.now_iso()
    return result


def train_and_evaluate(
    model: Any, settings: TrainSettings, data: PreparedData, result: TrialResult
) -> None:
    """Compile as the seed program, fit, predict the test images; fills result's y_prob,
    history and params (``score`` makes the metrics)."""
    compile_as_seed(model, settings)
    history, epoch_seconds = fit(settings, model, data, [])
    result.y_prob = model.predict(data.x_test, batch_size=PREDICT_BATCH, verbose=0)
    result.history = {
        **{k: [float(v) for v in values] for k, values in history.items()},
        "seconds": [float(s) for s in epoch_seconds],
    }
    result.params = int(model.count_params())


def score(result: TrialResult, data: PreparedData) -> TrialResult:
    """The stored test metrics of a finished trial, from the probabilities it brought back
    (run in the driver); a result that cannot be scored becomes ``failed``."""
    if result.status != "done" or result.y_prob is None:
        result.y_prob = None
        return result
    try:
        scores = Evaluation.of_classifier(data.y_test, result.y_prob, data.class_names).scores
        result.metrics = {key: scores[key] for key in STORED_METRICS if key in scores}
    except Exception as err:  # e.g. NaN probabilities from a model that diverged unnoticed
        result.status = "failed"
        result.error = f"scoring the test predictions failed: {type(err).__name__}: {err}"
    result.y_prob = None
    return result
