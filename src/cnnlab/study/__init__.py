"""Hyperparameter studies: a TOML spec, trials run locally or on Ray, SQLite, a report.

```
spec.py     the spec file: base model, training settings, axes ("layer.argument" = [values])
trial.py    one trial (configuration x seed): build, train, predict; never raises; the driver
            scores it
store.py    the SQLite file: one row per trial, written in a transaction as it finishes
runners.py  running a study: the driver scores and writes; re-exports the runners' names
pool.py     LocalRunner: spawned worker processes (worker.py runs inside each one)
shared_data.py  the prepared arrays in shared memory, mapped read-only by the workers
ray_runner.py   RayRunner: trials as Ray tasks
dispatch.py progress.py  what the runners hand back to the driver; the progress bar
report.py   the study report: trials table, effect of each axis, Pareto fronts
```
"""

from __future__ import annotations

from .spec import Axis, StudySpec, load_spec, parse_spec
from .store import StudyStore
from .trial import TrialPlan, TrialResult, TrialTask, plan_trials, run_trial

__all__ = [
    "Axis",
    "StudySpec",
    "StudyStore",
    "TrialPlan",
    "TrialResult",
    "TrialTask",
    "load_spec",
    "parse_spec",
    "plan_trials",
    "run_trial",
]
