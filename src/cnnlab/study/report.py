"""The study report, built from the SQLite file alone (no retraining).

Sections: overview; what each axis does (one sentence computed from the data, a table and
a figure per axis: accuracy and parameters against the value); accuracy against
parameters and against time with the Pareto fronts; every trial in a sortable table; the
invalid and failed trials with their reasons.

The effect of an axis is its main effect: a least-squares fit of test accuracy on one
indicator per axis value (the first value of each axis is the reference) over all
finished trials, so each axis is compared with the others held fixed even when random
sampling or invalid configurations leave the design unbalanced. Where the fit is not well
determined (fewer than twice as many distinct configurations as coefficients), plain
differences of the means are used and the report says so; the tables show both.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CnnlabError
from ..plots import save_figure
from ..plots.study import accuracy_of, figure_axis, figure_pareto, pareto_front
from ..report import ReportFigure, Section, build_report, html_table
from .spec import value_label
from .store import DB_NAME, StudyStore

DB_SUFFIXES = (".sqlite", ".sqlite3", ".db")


# --------------------------------------------------------------------------- locating a study


def is_study(path: str | Path) -> bool:
    """A study database file, or a directory holding study.sqlite."""
    path = Path(path)
    return (path.is_file() and path.suffix in DB_SUFFIXES) or (path / DB_NAME).is_file()


def study_paths(path: str | Path, out_dir: str | Path | None = None) -> tuple[Path, Path, Path]:
    """(database, report.html, figures folder) of a study directory or database file.

    The report of ``DIR/study.sqlite`` is ``DIR/report.html`` (figures in ``DIR/figures``);
    of another file ``DIR/NAME.sqlite`` it is ``DIR/NAME-report.html`` (``DIR/NAME-figures``).
    """
    path = Path(path)
    db = path / DB_NAME if path.is_dir() else path
    if not db.is_file():
        raise CnnlabError(
            f"{path} is not a study: no {DB_NAME} in it"
            if path.is_dir()
            else f"{path}: no such study file"
        )
    folder = Path(out_dir) if out_dir else db.parent
    if out_dir or db.name == DB_NAME:
        return db, folder / "report.html", folder / "figures"
    return db, folder / f"{db.stem}-report.html", folder / f"{db.stem}-figures"


# --------------------------------------------------------------------------- the numbers


@dataclass
class Point:
    """One configuration: accuracy over its finished repeats, parameters, seconds."""

    configuration: dict[str, Any]
    accuracies: list[float]
    params: int
    seconds: float

    @property
    def accuracy(self) -> float:
        return float(np.mean(self.accuracies))

    @property
    def spread(self) -> float:
        return float(np.std(self.accuracies))


def configuration_points(trials: list[dict[str, Any]]) -> list[Point]:
    """Finished trials grouped by configuration (mean over seeds)."""
    groups: dict[str, list[dict]] = defaultdict(list)
    for trial in trials:
        groups[json.dumps(trial["configuration"], sort_keys=True)].append(trial)
    return [
        Point(
            group[0]["configuration"],
            [accuracy_of(t) for t in group],
            int(group[0]["params"]),
            float(np.mean([t["seconds"] for t in group])),
        )
        for group in groups.values()
    ]


def axis_table(
    address: str, labels: list[str], trials: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per value of one axis: finished/invalid/failed counts, accuracy mean, spread, range, params,
    time."""
    rows = []
    for label in labels:
        mine = [t for t in trials if value_label(t["configuration"][address]) == label]
        done = [t for t in mine if t["status"] == "done"]
        accuracies = [accuracy_of(t) for t in done]
        rows.append(
            {
                "value": label,
                "done": len(done),
                "invalid": sum(t["status"] == "invalid" for t in mine),
                "failed": sum(t["status"] == "failed" for t in mine),
                "mean accuracy": float(np.mean(accuracies)) if done else None,
                "std": float(np.std(accuracies)) if done else None,
                "min": min(accuracies) if done else None,
                "max": max(accuracies) if done else None,
                "mean params": int(np.mean([t["params"] for t in done])) if done else None,
                "mean seconds": float(np.mean([t["seconds"] for t in done])) if done else None,
            }
        )
    return rows


Effects = dict[
    str, dict[str, float]
]  # {axis address: {value label: accuracy points versus the reference}}


def label_of(trial: dict[str, Any], address: str) -> str:
    return value_label(trial["configuration"][address])


def axis_effects(
    axes: dict[str, list[str]], done: list[dict[str, Any]]
) -> tuple[Effects | None, Effects]:
    """(fitted main effects or None, raw differences of means), each value against its axis'
    reference: the first value with finished trials. Accuracy in points (percent).

    The least-squares fit is used only when it is well determined: full rank, and at least
    twice as many distinct configurations as fitted coefficients.
    """
    present = {
        a: [v for v in labels if any(label_of(t, a) == v for t in done)]
        for a, labels in axes.items()
    }
    columns = [(a, v) for a, labels in present.items() for v in labels[1:]]
    y = np.array([100 * accuracy_of(t) for t in done])
    means = {
        (a, v): float(np.mean([y[i] for i, t in enumerate(done) if label_of(t, a) == v]))
        for a, labels in present.items()
        for v in labels
    }
    raw = {
        (a, v): means[(a, v)] - means[(a, labels[0])]
        for a, labels in present.items()
        for v in labels[1:]
    }
    configurations = len({json.dumps(t["configuration"], sort_keys=True) for t in done})
    if not columns or configurations < 2 * (1 + len(columns)):
        return None, _by_axis(present, raw)
    x = np.array([[1.0] + [float(label_of(t, a) == v) for a, v in columns] for t in done])
    if np.linalg.matrix_rank(x) < x.shape[1]:
        return None, _by_axis(present, raw)
    coefficients = np.linalg.lstsq(x, y, rcond=None)[0][1:]
    return _by_axis(present, dict(zip(columns, coefficients))), _by_axis(present, raw)


def _by_axis(present: dict[str, list[str]], effects: dict[tuple[str, str], float]) -> Effects:
    return {a: {v: float(effects[(a, v)]) for v in labels[1:]} for a, labels in present.items()}


def effect_sentence(address: str, effects: dict[str, float], rows: list[dict[str, Any]]) -> str:
    """E.g. "max_pooling2d.pool_size: 3 lowers accuracy by 1.2 points and 4 raises it by 0.3
    points on average versus 2; 5 never fits (all 4 trials invalid)."."""
    finished = [r["value"] for r in rows if r["done"]]
    if len(rows) == 1:
        return f"{address}: {rows[0]['value']} in every trial (not varied)."
    if not finished:
        return f"{address}: no finished trial yet."
    parts = [f"{label} {_direction(points)}" for label, points in effects.items()]
    sentence = f"{address}: only {finished[0]} has finished trials"
    if parts:
        sentence = f"{address}: {_join(parts)} on average versus {finished[0]}"
    never = [
        f"{r['value']} never fits (all {r['invalid']} trials invalid)"
        for r in rows
        if not r["done"] and r["invalid"] and not r["failed"]
    ]
    return sentence + ("; " + _join(never) if never else "") + "."


def _direction(points: float) -> str:
    if abs(points) < 0.05:
        return "leaves accuracy unchanged (within 0.1 points)"
    return f"{'raises' if points > 0 else 'lowers'} accuracy by {abs(points):.1f} points"


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


# --------------------------------------------------------------------------- sections


def first_line(text: str | None, limit: int = 160) -> str:
    line = (text or "").strip().splitlines()[0] if (text or "").strip() else ""
    return line if len(line) <= limit else line[: limit - 1] + "…"


def trial_rows(axes: dict[str, list[str]], trials: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per trial for the sortable table."""
    rows = []
    for trial in trials:
        metrics = trial["metrics"] or {}
        row = {"trial": trial["key"], "status": trial["status"]}
        row.update({address: value_label(trial["configuration"][address]) for address in axes})
        row.update(
            {
                "seed": trial["seed"],
                "accuracy": metrics.get("test_accuracy"),
                "loss": metrics.get("test_loss"),
                "F1 (macro)": metrics.get("f1_macro"),
                "params": trial["params"],
                "seconds": trial["seconds"],
                "host": trial["host"],
                "error": first_line(trial["error"]),
            }
        )
        rows.append(row)
    return rows


def overview_section(
    study: dict[str, Any], trials: list[dict[str, Any]], points: list[Point]
) -> Section:
    spec = study["spec"]
    counts = {
        s: sum(t["status"] == s for t in trials)
        for s in ("done", "invalid", "failed", "running", "pending")
    }
    rows: list[list[Any]] = [
        ["Study", study["name"]],
        ["Description", spec.get("description") or ""],
        ["Model", Path(spec["model"]).name],
        ["Mode", spec["mode"]],
        ["Configurations", len({json.dumps(t["configuration"], sort_keys=True) for t in trials})],
        ["Seeds per configuration", spec["repeats"]],
        ["Trials", len(trials)],
    ]
    rows += [[f"Trials {status}", n] for status, n in counts.items() if n]
    rows += [
        ["Training settings", json.dumps(spec["training"])],
        ["Fixed changes", json.dumps(spec.get("fixed", {}))],
        ["Trial seconds (sum)", float(sum(t["seconds"] or 0 for t in trials))],
        ["Hosts", ", ".join(sorted({t["host"] for t in trials if t["host"]}))],
        ["Created", study["created"]],
    ]
    if points:
        rows.append(["Best configuration", best_configuration(points)])
    fragments = [
        html_table(rows, ["Quantity", "Value"]),
        "<h3>Spec file</h3>",
        f"<pre>{html.escape(study['spec_text'])}</pre>",
    ]
    return Section("Overview", fragments)


def best_configuration(points: list[Point]) -> str:
    """ "pool_size = 2, ...: accuracy 0.9812 (34,826 parameters)" of the most accurate point."""
    best = max(points, key=lambda p: p.accuracy)
    label = ", ".join(f"{a} = {value_label(v)}" for a, v in best.configuration.items())
    return f"{label}: accuracy {best.accuracy:.4f} ({best.params:,} parameters)"


def axes_section(
    axes: dict[str, list[str]], trials: list[dict[str, Any]], figures_dir: Path
) -> Section:
    done = [t for t in trials if t["status"] == "done"]
    fitted, raw = axis_effects(axes, done)
    method = (
        "main effects fitted by least squares over all finished trials (each axis with the others "
        "held "
        "fixed)"
        if fitted
        else "differences of plain means (too few distinct configurations for a "
        "well-determined main-effects fit, so other axes may be mixed in)"
    )
    tables, sentences, figures = [], [], []
    for index, (address, labels) in enumerate(axes.items()):
        rows = axis_table(address, labels, trials)
        for row in rows:
            row["effect (fit)"] = (fitted or {}).get(address, {}).get(row["value"])
            row["effect (raw)"] = raw.get(address, {}).get(row["value"])
        sentences.append(effect_sentence(address, (fitted or raw).get(address, {}), rows))
        tables += [f"<h3>{html.escape(address)}</h3>", html_table(rows)]
        path = save_figure(
            figure_axis(address, labels, done), figures_dir / f"study_axis_{index + 1}.png"
        )
        figures.append(
            ReportFigure(path, f"{address}: test accuracy and parameters against the value")
        )
    items = "".join(f"<li>{html.escape(s)}</li>" for s in sentences)
    note = (
        "<p>Accuracy points are percentage points of test accuracy; the effects are "
        f"{html.escape(method)}. "
        "In the tables, <em>effect (fit)</em> is the fitted main effect and <em>effect (raw)</em> "
        "the "
        "difference of plain means, both in points against the first value; std is the standard "
        "deviation "
        "over the trials with that value.</p>"
    )
    return Section("What each axis does", [f"<ul>{items}</ul>", note, *tables], figures)


def pareto_section(points: list[Point], figures_dir: Path) -> Section | None:
    if not points:
        return None
    figures = [
        ReportFigure(
            save_figure(figure_pareto(points, cost), figures_dir / f"study_pareto_{cost}.png"),
            caption,
        )
        for cost, caption in (
            ("params", "Test accuracy against parameters; red: the Pareto front"),
            ("seconds", "Test accuracy against seconds per trial; red: the Pareto front"),
        )
    ]
    front = pareto_front([p.params for p in points], [p.accuracy for p in points])
    rows = [
        {
            "configuration": ", ".join(
                f"{a}={value_label(v)}" for a, v in points[i].configuration.items()
            ),
            "accuracy": points[i].accuracy,
            "std": points[i].spread,
            "params": points[i].params,
            "seconds": points[i].seconds,
        }
        for i in front
    ]
    intro = (
        "<p>The smallest models for their accuracy (Pareto front of accuracy against "
        "parameters):</p>"
    )
    return Section("Accuracy, size and time", [intro, html_table(rows)], figures)


def problems_section(trials: list[dict[str, Any]]) -> Section | None:
    rows = [
        {
            "trial": t["key"],
            "status": t["status"],
            "configuration": ", ".join(
                f"{a}={value_label(v)}" for a, v in t["configuration"].items()
            ),
            "reason": first_line(t["error"], 400),
        }
        for t in trials
        if t["status"] in ("invalid", "failed")
    ]
    return Section("Invalid and failed trials", [html_table(rows)]) if rows else None


def render_study_report(path: str | Path, out_dir: str | Path | None = None) -> Path:
    """Write the study's report.html (and its figures) from its SQLite file; return the path."""
    db, report_path, figures_dir = study_paths(path, out_dir)
    with StudyStore(db, create=False) as store:
        study, trials = store.study(), store.trials()
    axes = {
        address: [value_label(v) for v in values]
        for address, values in study["spec"]["axes"].items()
    }
    points = configuration_points([t for t in trials if t["status"] == "done"])
    sections = [
        overview_section(study, trials, points),
        axes_section(axes, trials, figures_dir),
        pareto_section(points, figures_dir),
        Section(
            "Trials",
            ["<p>Click a column heading to sort.</p>", html_table(trial_rows(axes, trials))],
        ),
        problems_section(trials),
    ]
    return build_report(
        f"cnnlab study {study['name']}", [s for s in sections if s is not None], report_path
    )
