"""The run directory: what a training run leaves behind, and reading it back.

```
runs/<timestamp>-<name>/
  config.json     model config and training settings
  model.cnnlab    the trained model (cnnlab.load_model)
  history.csv     epoch, loss, accuracy, val_loss, val_accuracy, seconds
  metrics.json    test metrics (keys in design.md)
  summary.txt     the model summary table
  figures/*.png   evaluation figures
  report.html     everything above in one self-contained page
```
Comparisons, studies and reports read these files; they never retrain to report.
"""

from __future__ import annotations

import contextlib
import csv
import fcntl
import io
import json
import os
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .engine import limits, metadata
from .engine.saving import atomic_write
from .errors import CnnlabError

MODEL_FILE = "model.cnnlab"
HISTORY_COLUMNS = ("epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds")


def default_run_dir(name: str, root: str | Path = "runs") -> Path:
    """runs/20261122-031502-<name>, the default ``--out``."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    return (
        Path(root) / f"{stamp}-{re.sub(r'[^A-Za-z0-9_.-]+', '-', name)[:80]}"
    )  # a file name, whatever the name


def prepare_run_dir(path: str | Path) -> Path:
    """Create the run directory (and figures/); refuse a path that is a file or cannot be
    written."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise CnnlabError(f"output directory {path} is a file; choose another --out")
    if (path / "figures").is_symlink():
        raise CnnlabError(
            f"{path / 'figures'} is a symbolic link; cnnlab writes only inside the run directory"
        )
    try:
        (path / "figures").mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CnnlabError(f"cannot create output directory {path}: {err.strerror}") from None
    if not os.access(path, os.W_OK) or not os.access(path / "figures", os.W_OK):
        raise CnnlabError(f"output directory {path} is not writable; choose another --out")
    return path


LOCK_FILE = ".cnnlab.lock"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the run directory (fcntl.flock on .cnnlab.lock, released by the
    kernel when the process ends, even killed); a second writer gets one clear line."""
    try:
        fd = os.open(
            run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644
        )
    except OSError as err:
        raise CnnlabError(f"cannot lock {run_dir}: {err.strerror or err}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise CnnlabError(
                f"{run_dir} is being written by another cnnlab command right now; "
                "wait for it to finish or choose another --out"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


def is_finished_run(run_dir: Path) -> bool:
    """Whether run_dir already holds a trained model or its metrics."""
    return (run_dir / MODEL_FILE).exists() or (run_dir / "metrics.json").exists()


RESULT_FILES = (MODEL_FILE, "metrics.json", "history.csv", "summary.txt", "report.html")


def clear_results(run_dir: Path) -> None:
    """Remove what a finished run wrote (its results and figures/*.png), before a run replaces
    it."""
    for path in [*(run_dir / name for name in RESULT_FILES), *(run_dir / "figures").glob("*.png")]:
        path.unlink(missing_ok=True)


def write_text(path: Path, text: str) -> None:
    """Write a text file atomically."""
    atomic_write(path, lambda file: file.write(text.encode()))


def write_json(path: Path, data: Any) -> None:
    write_text(path, json.dumps(data, indent=2) + "\n")


def write_history(path: Path, history: dict[str, list[float]], epoch_seconds: list[float]) -> None:
    """history.csv: one row per epoch, the columns that exist."""
    columns = [
        c
        for c in HISTORY_COLUMNS
        if c == "epoch" or c in history or (c == "seconds" and epoch_seconds)
    ]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for i in range(len(epoch_seconds) or len(next(iter(history.values()), []))):
        values = {"epoch": i + 1, "seconds": epoch_seconds[i] if i < len(epoch_seconds) else ""}
        writer.writerow([values[c] if c in values else history[c][i] for c in columns])
    write_text(path, buffer.getvalue())


def write_results(
    run_dir: Path,
    model: Any,
    history: dict[str, list[float]],
    epoch_seconds: list[float],
    metrics: dict[str, Any],
) -> None:
    """The trained part of a run directory: model.cnnlab, history.csv, metrics.json, summary.txt."""
    model.save(run_dir / MODEL_FILE)
    write_history(run_dir / "history.csv", history, epoch_seconds)
    write_json(run_dir / "metrics.json", metrics)
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    write_text(run_dir / "summary.txt", "\n".join(lines) + "\n")


def read_history(path: Path) -> dict[str, list[float]]:
    """history.csv back as {"epoch": [...], "loss": [...], ..., "seconds": [...]}; empty when the
    file is absent. The one reader of a history: reports, the lab and approx all use it."""
    if not path.is_file():
        return {}
    try:
        rows = list(csv.DictReader(io.StringIO(limits.read_file(path).decode(), newline="")))
        return {
            key: [float(row[key]) for row in rows if row[key] != ""]
            for key in (rows[0] if rows else {})
        }
    except (csv.Error, ValueError, TypeError) as err:  # a NUL byte, text, not UTF-8, too long
        raise CnnlabError(f"{path}: not a readable history ({err})") from None


def history_rows(history: dict[str, list[float]]) -> list[dict[str, float | int]]:
    """A history as table rows, one per epoch (the epoch number as an int)."""
    rows = [dict(zip(history, values)) for values in zip(*history.values())]
    for row in rows:
        if "epoch" in row:
            row["epoch"] = int(row["epoch"])
    return rows


def read_json(run_dir: Path, name: str) -> dict[str, Any]:
    """config.json or metrics.json of a run; a clear error when it is missing or damaged."""
    path = Path(run_dir) / name
    if not path.is_file():
        raise CnnlabError(f"{run_dir} is not a cnnlab run directory: {name} is missing")
    try:
        return check_run_json(path, limits.loads_json(limits.read_file(path), str(path)))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CnnlabError(f"{path}: damaged JSON ({err})") from None
    except ValueError as err:  # nested too deep, a field of the wrong type
        raise CnnlabError(str(err)) from None


def check_run_json(path: Path, content: Any) -> dict[str, Any]:
    """A run file's JSON object, the fields cnnlab reads back checked (types and ranges)."""
    if not isinstance(content, dict):
        raise CnnlabError(f"{path}: expected a JSON object, received {type(content).__name__}")
    return metadata.check_fields(
        content, metadata.RUN_FILES.get(path.name, {}), str(path), report_unknown=False
    )


def model_path(run_or_model: str | Path) -> Path:
    """The model file of a run directory, or the path itself when it is a model file."""
    path = Path(run_or_model)
    if path.is_dir():
        if not (path / MODEL_FILE).is_file():
            raise CnnlabError(f"{path} is not a cnnlab run directory: {MODEL_FILE} is missing")
        return path / MODEL_FILE
    if not path.exists():
        raise CnnlabError(f"{path}: no such run directory or model file")
    return path


def load_run_model(run_or_model: str | Path) -> Any:
    """The trained model of a run directory or model file; a damaged file is the user's error."""
    from .engine import load_model

    path = model_path(run_or_model)
    try:
        return load_model(path)
    except (
        ValueError
    ) as err:  # not a model file, damaged, checksum mismatch, config and weights disagree
        raise CnnlabError(str(err)) from err
    except (KeyError, TypeError) as err:  # a zip whose metadata lacks or garbles an entry
        raise CnnlabError(
            f"{path}: not a usable cnnlab model file ({type(err).__name__}: {err})"
        ) from err


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")
