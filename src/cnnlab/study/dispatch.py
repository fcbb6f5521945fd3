"""What both runners share: the driver's two callbacks (a trial started, a result came back) and
the failed result of a trial that ended outside ``run_trial`` (a worker that died, a lost Ray
task)."""

from __future__ import annotations

from collections.abc import Callable

from .. import runs
from .trial import TrialResult, TrialTask

Started = Callable[[str], None]
Finished = Callable[[TrialResult], None]


def failed_result(task: TrialTask, error: str) -> TrialResult:
    """A failure that happened outside run_trial (a worker that died, a lost Ray task)."""
    now = runs.now_iso()
    return TrialResult(task.key, "failed", error=error, started=now, finished=now)
