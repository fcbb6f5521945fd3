"""The study's SQLite file: the spec and one row per trial, written as each trial ends.

```
study   one row: name, fingerprint (hash of what decides the results), spec JSON and text
trials  key, position, configuration JSON, seed, repeat, status, metrics JSON,
        history JSON, params, seconds, error, host, pid, blas_threads, attempts,
        started, finished
```
Status goes ``pending`` -> ``running`` (handed to a worker: running, or queued behind the
trial it runs; ``attempts`` counts the hand-outs) -> ``done`` | ``failed`` | ``invalid``.
Every change is one transaction, and the file is in WAL mode, so a process
killed at any moment leaves a consistent file: finished trials stay finished, and trials
left ``running`` are run again by the next ``cnnlab study`` with the same spec.
"""

from __future__ import annotations

import contextlib
import json
import re
import sqlite3
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .. import runs
from ..engine import limits, metadata
from ..errors import CnnlabError
from .trial import TrialPlan, TrialResult

DB_NAME = "study.sqlite"
FINISHED = ("done", "failed", "invalid")
STATUSES = ("pending", "running", *FINISHED)
SCHEMA = """
CREATE TABLE IF NOT EXISTS study (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    name TEXT NOT NULL, fingerprint TEXT NOT NULL, spec TEXT NOT NULL, spec_text TEXT NOT NULL,
    created TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS trials (
    key TEXT PRIMARY KEY, position INTEGER NOT NULL, configuration TEXT NOT NULL,
    seed INTEGER NOT NULL, repeat INTEGER NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed', 'invalid')),
    metrics TEXT, history TEXT, params INTEGER, seconds REAL, error TEXT,
    host TEXT, pid INTEGER, blas_threads INTEGER, attempts INTEGER NOT NULL DEFAULT 0,
    started TEXT, finished TEXT
);
"""
JSON_COLUMNS = ("configuration", "metrics", "history")
USER_VERSION = 0x636E6C62  # "cnlb" in SQLite's user_version: this file is a cnnlab study

_text, _count = (
    metadata.Field((str, type(None)), required=False),
    metadata.Field((int, type(None)), False, minimum=0),
)
STUDY_ROW = {
    "name": metadata.Field((str,)),
    "fingerprint": metadata.Field((str,)),
    "spec": metadata.Field((dict,)),
    "spec_text": metadata.Field((str,)),
    "created": metadata.Field((str,)),
}
TRIAL_ROW = {
    "key": metadata.Field((str,)),
    "position": metadata.Field((int,), minimum=0),
    "configuration": metadata.Field((dict,)),
    "seed": metadata.Field((int,), minimum=0),
    "repeat": metadata.Field((int,), minimum=0),
    "status": metadata.Field((str,)),
    "metrics": metadata.Field((dict, type(None))),
    "history": metadata.Field((dict, type(None)), items=metadata.NUMBERS),
    "params": _count,
    "seconds": metadata.Field((metadata.NUMBER, type(None)), False, minimum=0),
    "error": _text,
    "host": _text,
    "pid": _count,
    "blas_threads": _count,
    "attempts": metadata.Field((int,), minimum=0),
    "started": _text,
    "finished": _text,
}
DONE_METRICS = {
    "test_accuracy": metadata.Field((metadata.NUMBER,), minimum=0),
    "test_loss": metadata.Field((metadata.NUMBER, type(None)), required=False),
}


def default_study_dir(name: str, root: str | Path = "runs") -> Path:
    """runs/study-<name>: no timestamp, so that running the same command again resumes."""
    return (
        Path(root) / f"study-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)[:80]}"
    )  # a file name, whatever the name


class StudyStore:
    """One study's SQLite file. Only the driver process writes to it."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if self.path.is_symlink():
            raise CnnlabError(
                f"{self.path} is a symbolic link; give the path of the study database itself"
            )
        if not create and not self.path.is_file():
            raise CnnlabError(f"{self.path}: no such study database")
        try:
            check_is_study(self.path)  # before anything in the file is changed
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(self.path, timeout=30)
            self.connection.row_factory = sqlite3.Row
            self.connection.execute("PRAGMA journal_mode=WAL")
            with self.connection:
                self.connection.executescript(SCHEMA)
                self.connection.execute(f"PRAGMA user_version = {USER_VERSION}")
        except (sqlite3.Error, OSError) as err:
            raise CnnlabError(f"{self.path}: cannot open the study database ({err})") from None

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One transaction; a full disk or a locked file is one clear line
        (finished trials stay)."""
        try:
            with self.connection:
                yield self.connection
        except sqlite3.Error as err:
            raise CnnlabError(
                f"{self.path}: cannot write the study database ({err}); "
                "the trials recorded before are kept"
            ) from None

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> StudyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the study
    def attach(self, name: str, fingerprint: str, spec: dict[str, Any], spec_text: str) -> None:
        """Record the study, or check that the file holds the same study
        (then keep the newest spec text)."""
        row = self.connection.execute("SELECT name, fingerprint FROM study").fetchone()
        if row is not None and row["fingerprint"] != fingerprint:
            raise CnnlabError(
                f"{self.path} holds study {row['name']!r} made with different model or training "
                "settings or axes; give another --db/--out, or delete the file to start over"
            )
        with self.transaction():
            if row is None:
                self.connection.execute(
                    "INSERT INTO study VALUES (1, ?, ?, ?, ?, ?)",
                    (name, fingerprint, json.dumps(spec), spec_text, runs.now_iso()),
                )
            else:
                self.connection.execute(
                    "UPDATE study SET name = ?, spec = ?, spec_text = ?",
                    (name, json.dumps(spec), spec_text),
                )

    def study(self) -> dict[str, Any]:
        row = self.connection.execute("SELECT * FROM study").fetchone()
        if row is None:
            raise CnnlabError(f"{self.path} holds no study")
        study = {**dict(row), "spec": self.decode(row["spec"], "study", "spec")}
        return self.checked(study, STUDY_ROW, "study")

    # ------------------------------------------------------------------ trials
    def add_trials(self, plans: list[TrialPlan]) -> None:
        """Insert the planned trials as pending; trials already in the file are kept as they are."""
        rows = [(p.key, p.position, json.dumps(p.configuration), p.seed, p.repeat) for p in plans]
        with self.transaction():
            self.connection.executemany(
                "INSERT OR IGNORE INTO trials (key, position, configuration, seed, repeat, status) "
                "VALUES (?, ?, ?, ?, ?, 'pending')",
                rows,
            )

    def unfinished(self) -> list[str]:
        """Keys of the trials still to run (pending, or running when a process died), in order."""
        rows = self.connection.execute(
            "SELECT key FROM trials WHERE status IN ('pending', 'running') ORDER BY position"
        ).fetchall()
        return [row["key"] for row in rows]

    def mark_running(self, key: str) -> None:
        with self.transaction():
            self.connection.execute(
                "UPDATE trials SET status = 'running', attempts = attempts + 1, "
                "started = ? WHERE key = ?",
                (runs.now_iso(), key),
            )

    def record(self, result: TrialResult) -> None:
        """Store a finished trial, everything in one transaction."""
        if result.status not in FINISHED:
            raise ValueError(f"trial {result.key}: cannot record status {result.status!r}")
        values = (
            result.status,
            _json(result.metrics),
            _json(result.history),
            result.params,
            result.seconds,
            result.error,
            result.host,
            result.pid,
            result.blas_threads,
            result.started,
            result.finished,
            result.key,
        )
        with self.transaction():
            self.connection.execute(
                "UPDATE trials SET status = ?, metrics = ?, history = ?, params = ?, seconds = ?, "
                "error = ?, "
                "host = ?, pid = ?, blas_threads = ?, started = ?, finished = ? WHERE key = ?",
                values,
            )

    def trials(self) -> list[dict[str, Any]]:
        """Every trial as a dict, JSON columns decoded, in study order."""
        rows = self.connection.execute("SELECT * FROM trials ORDER BY position").fetchall()
        trials = [
            {
                k: (
                    self.decode(row[k], f"trial {row['key']!r}", k)
                    if k in JSON_COLUMNS and row[k] is not None
                    else row[k]
                )
                for k in row.keys()
            }
            for row in rows
        ]
        return [self.check_trial(trial) for trial in trials]

    def decode(self, text: Any, row: str, column: str) -> Any:
        """A JSON column, bounded in depth; a damaged one names the row and the column."""
        try:
            return limits.loads_json(text, f"{self.path}: {row}: column {column!r}")
        except (TypeError, ValueError) as err:
            raise CnnlabError(
                f"{self.path}: {row}: column {column!r} is not valid JSON ({err})"
            ) from None

    def checked(
        self, row: dict[str, Any], schema: dict[str, metadata.Field], name: str
    ) -> dict[str, Any]:
        try:
            return metadata.check_fields(row, schema, f"{self.path}: {name}", report_unknown=False)
        except ValueError as err:
            raise CnnlabError(str(err)) from None

    def check_trial(self, trial: dict[str, Any]) -> dict[str, Any]:
        """A trial row as the report reads it: types and ranges, a score for every finished
        trial."""
        name = f"trial {trial.get('key')!r}"
        self.checked(trial, TRIAL_ROW, name)
        if trial["status"] not in STATUSES:
            raise CnnlabError(
                f"{self.path}: {name}: status {trial['status']!r} is not one of "
                f"{', '.join(STATUSES)}"
            )
        if trial["status"] == "done":
            self.checked(trial["metrics"] or {}, DONE_METRICS, f"{name}: metrics")
        return trial

    def counts(self) -> Counter[str]:
        rows = self.connection.execute(
            "SELECT status, COUNT(*) AS n FROM trials GROUP BY status"
        ).fetchall()
        return Counter({row["status"]: row["n"] for row in rows})

    def best_accuracy(self) -> float | None:
        row = self.connection.execute(
            "SELECT MAX(json_extract(metrics, '$.test_accuracy')) AS best FROM trials WHERE "
            "status = 'done'"
        ).fetchone()
        return row["best"]


def check_is_study(path: Path) -> None:
    """Refuse an existing SQLite file that is not a cnnlab study (another application's), read-only:
    no table is added and its journal mode is left as it is."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        tables = {
            row[0]
            for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        }
        columns = {
            table: {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
            for table in tables & {"study", "trials"}
        }
        version = connection.execute("PRAGMA user_version").fetchone()[0]
    finally:
        connection.close()
    ours = (
        tables == {"study", "trials"}
        and {"fingerprint", "spec"} <= columns["study"]
        and {"key", "status"} <= columns["trials"]
    )
    if (tables and not ours) or version not in (0, USER_VERSION):
        found = ", ".join(sorted(tables)) or "no tables"
        raise CnnlabError(
            f"{path} is not a cnnlab study database (it holds {found}); give another --db"
        )


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)
