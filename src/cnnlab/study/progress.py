"""The study's progress bar: trials done / failed / invalid / left and the best accuracy so far
(one line per finished trial without a terminal)."""

from __future__ import annotations

from collections import Counter

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .trial import TrialResult


class StudyProgress:
    """One bar for the study: trials done / failed / invalid / left and the best accuracy so far.

    Without a terminal (a log file), one line per finished trial instead.
    """

    def __init__(
        self, console: Console, name: str, total: int, counts: Counter[str], best: float | None
    ) -> None:
        self.console, self.total, self.counts, self.best = console, total, counts, best
        self.progress = Progress(
            TextColumn(f"study {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("elapsed, to go"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task(
            "study", total=total, completed=self.finished(), status=self.status()
        )

    def finished(self) -> int:
        return sum(self.counts[s] for s in ("done", "failed", "invalid"))

    def status(self) -> str:
        best = "n/a" if self.best is None else f"{self.best:.4f}"
        return (
            f"done {self.counts['done']} · failed {self.counts['failed']} · invalid "
            f"{self.counts['invalid']} · "
            f"left {self.total - self.finished()} · best accuracy {best}"
        )

    def update(self, result: TrialResult) -> None:
        self.counts[result.status] += 1
        accuracy = (result.metrics or {}).get("test_accuracy")
        if accuracy is not None and (self.best is None or accuracy > self.best):
            self.best = accuracy
        self.progress.update(self.task, completed=self.finished(), status=self.status())
        if not self.console.is_terminal:
            self.console.print(
                f"trial {result.key} {result.status} in {result.seconds:.1f}s; {self.status()}",
                highlight=False,
            )

    def __enter__(self) -> StudyProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()
