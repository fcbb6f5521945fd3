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

import json
import re
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from .. import runs
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


def default_study_dir(name: str, root: str | Path = "runs") -> Path:
    """runs/study-<name>: no timestamp, so that running the same command again resumes."""
    return Path(root) / f"study-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)}"


class StudyStore:
    """One study's SQLite file. Only the driver process writes to it."""

    def __init__(self, path: str | Path, create: bool = True) -> None:
        self.path = Path(path)
        if not create and not self.path.is_file():
            raise CnnlabError(f"{self.path}: no such study database")
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.connection = sqlite3.connect(self.path, timeout=30)
            self.connection.row_factory = sqlite3.Row
            self.connection.execute("PRAGMA journal_mode=WAL")
            with self.connection:
                self.connection.executescript(SCHEMA)
        except (sqlite3.Error, OSError) as err:
            raise CnnlabError(f"{self.path}: cannot open the study database ({err})") from None

    def close(self) -> None:
        self.connection.close()

    def __enter__(self) -> StudyStore:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the study
    def attach(self, name: str, fingerprint: str, spec: dict[str, Any], spec_text: str) -> None:
        """Record the study, or check that the file holds the same study (then keep the newest spec text)."""
        row = self.connection.execute("SELECT name, fingerprint FROM study").fetchone()
        if row is not None and row["fingerprint"] != fingerprint:
            raise CnnlabError(f"{self.path} holds study {row['name']!r} made with different model or training "
                              "settings or axes; give another --db/--out, or delete the file to start over")
        with self.connection:
            if row is None:
                self.connection.execute("INSERT INTO study VALUES (1, ?, ?, ?, ?, ?)",
                                        (name, fingerprint, json.dumps(spec), spec_text, runs.now_iso()))
            else:
                self.connection.execute("UPDATE study SET name = ?, spec = ?, spec_text = ?", (name, json.dumps(spec), spec_text))

    def study(self) -> dict[str, Any]:
        row = self.connection.execute("SELECT * FROM study").fetchone()
        if row is None:
            raise CnnlabError(f"{self.path} holds no study")
        return {**dict(row), "spec": json.loads(row["spec"])}

    # ------------------------------------------------------------------ trials
    def add_trials(self, plans: list[TrialPlan]) -> None:
        """Insert the planned trials as pending; trials already in the file are kept as they are."""
        rows = [(p.key, p.position, json.dumps(p.configuration), p.seed, p.repeat) for p in plans]
        with self.connection:
            self.connection.executemany(
                "INSERT OR IGNORE INTO trials (key, position, configuration, seed, repeat, status) "
                "VALUES (?, ?, ?, ?, ?, 'pending')", rows)

    def unfinished(self) -> list[str]:
        """Keys of the trials still to run (pending, or running when a process died), in order."""
        rows = self.connection.execute(
            "SELECT key FROM trials WHERE status IN ('pending', 'running') ORDER BY position").fetchall()
        return [row["key"] for row in rows]

    def mark_running(self, key: str) -> None:
        with self.connection:
            self.connection.execute("UPDATE trials SET status = 'running', attempts = attempts + 1, "
                                    "started = ? WHERE key = ?", (runs.now_iso(), key))

    def record(self, result: TrialResult) -> None:
        """Store a finished trial, everything in one transaction."""
        if result.status not in FINISHED:
            raise ValueError(f"trial {result.key}: cannot record status {result.status!r}")
        values = (result.status, _json(result.metrics), _json(result.history), result.params, result.seconds,
                  result.error, result.host, result.pid, result.blas_threads, result.started, result.finished,
                  result.key)
        with self.connection:
            self.connection.execute(
                "UPDATE trials SET status = ?, metrics = ?, history = ?, params = ?, seconds = ?, error = ?, "
                "host = ?, pid = ?, blas_threads = ?, started = ?, finished = ? WHERE key = ?", values)

    def trials(self) -> list[dict[str, Any]]:
        """Every trial as a dict, JSON columns decoded, in study order."""
        rows = self.connection.execute("SELECT * FROM trials ORDER BY position").fetchall()
        return [{k: (json.loads(row[k]) if k in JSON_COLUMNS and row[k] is not None else row[k])
                 for k in row.keys()} for row in rows]

    def counts(self) -> Counter[str]:
        rows = self.connection.execute("SELECT status, COUNT(*) AS n FROM trials GROUP BY status").fetchall()
        return Counter({row["status"]: row["n"] for row in rows})

    def best_accuracy(self) -> float | None:
        row = self.connection.execute(
            "SELECT MAX(json_extract(metrics, '$.test_accuracy')) AS best FROM trials WHERE status = 'done'").fetchone()
        return row["best"]


def _json(value: Any) -> str | None:
    return None if value is None else json.dumps(value)
