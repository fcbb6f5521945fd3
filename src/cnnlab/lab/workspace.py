"""The lab's folder (``DIR``, default ``runs/``): paths confined to it, and the runs and studies it
holds."""

from __future__ import annotations

import json
import os
import sqlite3
import zipfile
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

from .. import runs
from ..errors import CnnlabError

MAX_DEPTH = 3  # runs and studies are looked for this many folders deep
STUDY_DB = "study.sqlite"
CHECKPOINT = "checkpoint.cnnlab"
SUMMARY_METRICS = (
    "test_accuracy",
    "test_loss",
    "r2",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc_ovr",
    "grid_error",
    "params",
    "n_train",
    "n_test",
    "dataset",
    "function",
    "engine",
)


class OutsideRoot(CnnlabError):
    """A path that leaves the lab's folder (the server answers 403)."""


class NotFound(CnnlabError):
    """A run, study or file that does not exist (the server answers 404)."""


def resolve_inside(root: Path, relative: str) -> Path:
    """``root / relative`` with links resolved; OutsideRoot for absolute paths, ``..`` or links that
    leave root."""
    text = relative.replace("\\", "/")
    if (
        PurePosixPath(text).is_absolute()
        or PureWindowsPath(relative).drive
        or PureWindowsPath(relative).is_absolute()
    ):
        raise OutsideRoot(f"path {relative!r} is absolute; give a path inside the lab's folder")
    if ".." in PurePosixPath(text).parts or "\x00" in text:
        raise OutsideRoot(f"path {relative!r} leaves the lab's folder")
    base = root.resolve()
    path = (base / text).resolve()
    if path != base and base not in path.parents:
        raise OutsideRoot(f"path {relative!r} leads outside the lab's folder")
    return path


def relative_name(root: Path, path: Path) -> str:
    return path.resolve().relative_to(root.resolve()).as_posix()


def list_entries(root: Path) -> list[dict[str, Any]]:
    """Runs (folders with config.json) and studies (folders with study.sqlite) under root, newest
    first."""
    found: list[dict[str, Any]] = []
    base = root.resolve()
    for folder, subfolders, files in os.walk(base):
        depth = len(Path(folder).relative_to(base).parts)
        subfolders[:] = (
            sorted(d for d in subfolders if d != "figures" and not d.startswith("."))
            if depth < MAX_DEPTH
            else []
        )
        path = Path(folder)
        if path.resolve() != path or (base not in path.resolve().parents and path != base):
            subfolders[:] = []
            continue
        if STUDY_DB in files:
            found.append(
                {
                    "kind": "study",
                    "path": relative_name(base, path),
                    "modified": path.stat().st_mtime,
                }
            )
            subfolders[:] = []
        elif "config.json" in files:
            found.append(run_entry(base, path))
            subfolders[:] = []
    return sorted(found, key=lambda entry: -entry["modified"])


def run_entry(root: Path, path: Path) -> dict[str, Any]:
    metrics = read_optional_json(path / "metrics.json")
    config = read_optional_json(path / "config.json")
    return {
        "kind": "run",
        "path": relative_name(root, path),
        "modified": path.stat().st_mtime,
        "command": config.get("command", "train"),
        "dataset": config.get("dataset"),
        "status": run_status(path),
        "test_accuracy": metrics.get("test_accuracy"),
        "r2": metrics.get("r2"),
    }


def read_optional_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def run_status(path: Path) -> str:
    if (path / "metrics.json").is_file():
        return "finished"
    return (
        "training"
        if (path / CHECKPOINT).is_file() or (path / "config.json").is_file()
        else "unknown"
    )


def run_dir(root: Path, relative: str) -> Path:
    path = resolve_inside(root, relative)
    if not (path / "config.json").is_file():
        raise NotFound(f"no run at {relative!r}: a run folder holds config.json")
    return path


def live_history(path: Path) -> dict[str, list[float]]:
    """history.csv of a finished run, else the history in the checkpoint ``cnnlab train`` writes
    every epoch."""
    if (path / "history.csv").is_file():
        return runs.read_history(path / "history.csv")
    try:
        with zipfile.ZipFile(path / CHECKPOINT) as archive:
            meta = json.loads(archive.read("meta.json"))
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return {}
    history = {key: list(values) for key, values in meta.get("history", {}).items()}
    count = len(next(iter(history.values()), []))
    return {"epoch": list(range(1, count + 1)), **history} if count else {}


def history_stamp(path: Path) -> tuple[float, ...]:
    """Changes when the run's history or metrics change (what the server watches to push curves)."""
    return tuple(
        (path / name).stat().st_mtime if (path / name).exists() else 0.0
        for name in ("history.csv", CHECKPOINT, "metrics.json")
    )


def run_details(root: Path, relative: str) -> dict[str, Any]:
    """Summary, curves, confusion matrix and per-class scores of one run, from its files."""
    path = run_dir(root, relative)
    config = runs.read_json(path, "config.json")
    metrics = read_optional_json(path / "metrics.json")
    summary = (path / "summary.txt").read_text() if (path / "summary.txt").is_file() else ""
    return {
        "path": relative_name(root, path),
        "status": run_status(path),
        "command": config.get("command", "train"),
        "config": config.get("training", {}),
        "dataset": config.get("dataset"),
        "summary_rows": [[key, metrics[key]] for key in SUMMARY_METRICS if key in metrics],
        "history": live_history(path),
        "class_names": metrics.get("class_names", []),
        "confusion_matrix": metrics.get("confusion_matrix"),
        "per_class": metrics.get("per_class"),
        "model_summary": summary,
        "has_model": (path / runs.MODEL_FILE).is_file(),
        "figures": [relative_name(root, f) for f in sorted((path / "figures").glob("*.png"))],
        "report": (path / "report.html").is_file(),
    }


# ----------------------------------------------------------------------------- studies
def study_path(root: Path, relative: str) -> Path:
    path = resolve_inside(root, relative)
    database = path if path.suffix == ".sqlite" else path / STUDY_DB
    if not database.is_file():
        raise NotFound(f"no study at {relative!r}: a study folder holds {STUDY_DB}")
    return database


def study_stamp(database: Path) -> tuple[float, ...]:
    wal = database.with_name(database.name + "-wal")
    return (
        database.stat().st_mtime,
        wal.stat().st_mtime if wal.exists() else 0.0,
        wal.stat().st_size if wal.exists() else 0,
    )


def study_details(root: Path, relative: str) -> dict[str, Any]:
    """A study's name, axes and trials (configuration, status, accuracy, params, seconds),
    read-only."""
    database = study_path(root, relative)
    try:
        connection = sqlite3.connect(f"file:{database}?mode=ro", uri=True, timeout=5)
        connection.row_factory = sqlite3.Row
        try:
            study = connection.execute("SELECT name, spec FROM study").fetchone()
            rows = connection.execute(
                "SELECT key, position, configuration, seed, repeat, status, metrics, history, "
                "params, "
                "seconds, error, finished FROM trials ORDER BY position"
            ).fetchall()
        finally:
            connection.close()
    except sqlite3.Error as err:
        raise CnnlabError(f"{relative}: cannot read the study database ({err})") from None
    try:
        trials = [trial_row(row) for row in rows]
        spec = json.loads(study["spec"]) if study else {}
    except (ValueError, TypeError, AttributeError) as err:
        raise CnnlabError(f"{relative}: a damaged row in the study database ({err})") from None
    axes = sorted({axis for trial in trials for axis in trial["configuration"]})
    return {
        "path": relative,
        "name": study["name"] if study else relative,
        "axes": axes,
        "trials": trials,
        "spec": spec,
        "finished": sum(t["status"] in ("done", "failed", "invalid") for t in trials),
    }


def trial_row(row: sqlite3.Row) -> dict[str, Any]:
    metrics = json.loads(row["metrics"]) if row["metrics"] else {}
    configuration = {
        key: value if isinstance(value, (int, float, str)) or value is None else json.dumps(value)
        for key, value in json.loads(row["configuration"]).items()
    }
    return {
        "key": row["key"],
        "position": row["position"],
        "seed": row["seed"],
        "repeat": row["repeat"],
        "status": row["status"],
        "configuration": configuration,
        "test_accuracy": metrics.get("test_accuracy"),
        "test_loss": metrics.get("test_loss"),
        "params": row["params"],
        "seconds": row["seconds"],
        "error": row["error"],
        "history": json.loads(row["history"]) if row["history"] else None,
    }
