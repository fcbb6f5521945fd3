"""Running a study: local worker processes or Ray tasks; the driver alone writes SQLite.

Both runners call the same ``trial.run_trial`` and hand each result back to the driver,
which scores its test predictions (``trial.score``), records it (one transaction) and
advances one progress bar.

- ``LocalRunner(jobs, threads)``: ``jobs`` spawned worker processes. Each worker starts
  with ``OMP_NUM_THREADS`` (and the OpenBLAS/MKL equivalents) set to ``threads`` (default
  cores // jobs) before NumPy is imported in it, so the workers do not oversubscribe the
  cores. The driver's prepared arrays are put in shared memory once and every worker maps
  them read-only: no worker re-reads the dataset or holds a copy of it (unless /dev/shm
  has no room for them; see ``SharedData``). ``jobs=1`` runs the trials in this process,
  its BLAS limited to ``threads`` by threadpoolctl.
- ``RayRunner(address)``: ``ray.init(address=...)`` on an existing cluster (or ``local``
  for a throwaway one); the prepared data is put into the object store once and every task
  receives the same reference. Ray gives each one-CPU task one BLAS thread.

Both keep twice as many trials handed out as there are workers (CPUs), so a worker that
finishes goes straight on to its next trial while the driver scores and records.

The BLAS thread count changes floating-point sums in the last bits, so a trial gives the
same numbers under any runner with the same thread count (``--threads 1`` matches Ray).

Modules: ``pool.py`` (LocalRunner), ``worker.py`` (inside a worker process),
``shared_data.py`` (the arrays in shared memory), ``ray_runner.py`` (RayRunner),
``dispatch.py`` (what both runners hand back to the driver), ``progress.py`` (the bar); this
module holds the orchestration and re-exports their public names.
"""

from __future__ import annotations

import os
from collections import Counter

from rich.console import Console

from ..training import PreparedData, check_batch_fits, load_data
from .dispatch import Finished, Started, failed_result
from .pool import (
    THREAD_VARIABLES,
    WORKER_DIED,
    LocalRunner,
    available_cores,
    blas_thread_limit,
    thread_limits,
)
from .progress import StudyProgress
from .ray_runner import RayRunner, connect, import_ray
from .shared_data import ARRAY_FIELDS, SharedData, attach_data, shared_memory_room
from .spec import StudySpec
from .store import StudyStore
from .trial import TrialResult, make_task, plan_trials, score
from .worker import init_worker, run_in_worker

__all__ = [
    "ARRAY_FIELDS",
    "THREAD_VARIABLES",
    "WORKER_DIED",
    "Finished",
    "LocalRunner",
    "RayRunner",
    "SharedData",
    "Started",
    "StudyProgress",
    "attach_data",
    "available_cores",
    "blas_thread_limit",
    "connect",
    "failed_result",
    "import_ray",
    "init_worker",
    "open_store",
    "prepare_data",
    "run_in_worker",
    "run_study",
    "shared_memory_room",
    "thread_limits",
]


def prepare_data(spec: StudySpec, data_dir: str | None = None) -> PreparedData:
    """Read the study's data once in the driver and check the training settings fit it."""
    settings = spec.settings(data_dir=data_dir)
    settings.validate()
    data = load_data(settings)
    check_batch_fits(settings, data)
    return data


def open_store(spec: StudySpec, db_path: str | os.PathLike[str]) -> StudyStore:
    """The study's SQLite file with every planned trial in it (new ones pending)."""
    store = StudyStore(db_path)
    try:
        store.attach(spec.name, spec.fingerprint(), spec.summary(), spec.text)
        store.add_trials(plan_trials(spec))
    except BaseException:
        store.close()
        raise
    return store


def run_study(
    spec: StudySpec,
    store: StudyStore,
    runner: LocalRunner | RayRunner,
    data: PreparedData,
    console: Console | None = None,
) -> Counter[str]:
    """Run every unfinished trial of the study; returns the trial counts by status."""
    plans = {plan.key: plan for plan in plan_trials(spec)}
    tasks = [make_task(spec, plans[key], data) for key in store.unfinished() if key in plans]
    console = console or Console(stderr=True)
    bar = StudyProgress(console, spec.name, len(plans), store.counts(), store.best_accuracy())

    def finished(result: TrialResult) -> None:
        store.record(score(result, data))
        bar.update(result)

    if tasks:
        with bar:
            runner.execute(tasks, data, store.mark_running, finished)
    return store.counts()
