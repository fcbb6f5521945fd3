"""The run directory of an approx run: files, figures and report, redrawn from its files."""

from __future__ import annotations

import html
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .. import plots, runs
from ..engine import limits
from ..engine.saving import atomic_write
from ..errors import CnnlabError
from ..report import ReportFigure, Section, build_report, format_value, html_table
from .problem import DATA_FILE, GRID_RESOLUTION

if TYPE_CHECKING:
    from .problem import ApproxProblem
    from .training import ApproxResult

FIGURES: dict[str, str] = {
    "original.png": "The function on a {resolution} x {resolution} grid of its domain: the "
    "original.",
    "test_true.png": "The {n_test:,} test points coloured by the function's true {what}.",
    "test_predicted.png": "The same test points coloured by the network's predicted {what}.",
    "field.png": "The network's {field} on the grid, with the true {boundary} drawn in black.",
    "errors.png": "The error map: {errors}.",
    "snapshots.png": "The predicted {field} after a few epochs (the first panel: before training), "
    "with the true {boundary}: how the network found the shape.",
    "history.png": "Loss{accuracy} per epoch, training and validation.",
}
METRIC_LABELS: dict[str, str] = {
    "test_accuracy": "Test accuracy",
    "r2": "R^2 (test)",
    "test_loss": "Test loss",
    "mae": "Mean absolute error (test)",
    "f1_macro": "F1 (macro)",
    "roc_auc_ovr": "ROC-AUC",
    "grid_error": "Grid error (share wrong, or mean |error|)",
    "params": "Parameters",
    "n_train": "Training points (validation included)",
    "n_test": "Test points",
}


# --------------------------------------------------------------------------- the run directory


def write_run(problem: ApproxProblem, result: ApproxResult) -> None:
    """config.json, model.cnnlab, history.csv, metrics.json, summary.txt, approx.npz, figures,
    report.html."""
    run_dir, function = result.run_dir, problem.function
    (x_low, x_high), (y_low, y_high) = function.domain
    function_facts = {
        "name": function.name,
        "formula": function.formula,
        "description": function.description,
        "kind": function.kind,
        "domain": [[x_low, x_high], [y_low, y_high]],
        "classes": list(function.classes),
    }
    runs.write_json(
        run_dir / "config.json",
        {
            "kind": "approximation",
            "command": "approx",
            "function": function_facts,
            "model": problem.model_config,
            "training": asdict(problem.settings),
            "inputs": problem.encoder.describe(),
            "dataset": function.name,
            "engine": "numpy",
            "created": runs.now_iso(),
        },
    )
    runs.write_results(run_dir, problem.model, result.history, result.epoch_seconds, result.metrics)
    atomic_write(run_dir / DATA_FILE, lambda file: np.savez_compressed(file, **result.arrays))
    result.figures = write_figures(run_dir)
    render_report(run_dir)


def load_arrays(run_dir: Path) -> dict[str, np.ndarray]:
    path = Path(run_dir) / DATA_FILE
    if not path.is_file():
        raise CnnlabError(f"{run_dir} is not a cnnlab approx run directory: {DATA_FILE} is missing")
    with np.load(path) as data:
        return {key: data[key] for key in data.files}


def run_class_names(config: dict[str, Any]) -> list[str]:
    """Class names of an approx run ("0", "1", ...); empty for a regression."""
    return [f"{value:g}" for value in config["function"]["classes"]]


def write_figures(run_dir: str | Path) -> list[Path]:
    """Draw every figure of an approx run from its approx.npz, config.json and history.csv."""
    run_dir = Path(run_dir)
    config, arrays = runs.read_json(run_dir, "config.json"), load_arrays(run_dir)
    names, out = run_class_names(config), run_dir / "figures"
    text = config["function"]["formula"] or config["function"]["name"]
    written = [
        plots.plot_function_field(
            arrays["grid_x"],
            arrays["grid_y"],
            arrays["grid_truth"],
            names,
            out / "original.png",
            title=f"Original: {short(text)}",
        )
    ]
    written += write_test_point_figures(arrays, names, out)
    written += write_field_figures(arrays, names, out)
    history = runs.read_history(run_dir / "history.csv")
    if history and plots.history_metric_names(history):
        written.append(plots.plot_history(history, out / "history.png"))
    return written


def write_test_point_figures(
    arrays: dict[str, np.ndarray], names: list[str], out: Path
) -> list[Path]:
    """The seed's pictures: the test points coloured by the true and by the predicted class
    (or value)."""
    truth, xx, yy = arrays["grid_truth"], arrays["grid_x"], arrays["grid_y"]
    what = "class" if names else "value"
    value_range = None if names else (float(truth.min()), float(truth.max()))
    limits = (float(xx.min()), float(xx.max()), float(yy.min()), float(yy.max()))
    predicted = arrays["test_predicted"].argmax(axis=1) if names else arrays["test_predicted"]
    return [
        plots.plot_points(
            arrays["x_test"],
            arrays["y_test"],
            names,
            out / "test_true.png",
            title=f"Original {what} on the test points",
            value_range=value_range,
            limits=limits,
        ),
        plots.plot_points(
            arrays["x_test"],
            predicted,
            names,
            out / "test_predicted.png",
            title=f"Predicted {what} on the test points",
            value_range=value_range,
            limits=limits,
        ),
    ]


def write_field_figures(arrays: dict[str, np.ndarray], names: list[str], out: Path) -> list[Path]:
    """The predicted field with the true boundary, the error map and the snapshots during
    training."""
    grid, truth, predicted = (
        (arrays["grid_x"], arrays["grid_y"]),
        arrays["grid_truth"],
        arrays["grid_predicted"],
    )
    snapshots = list(zip(arrays["snapshot_epochs"].tolist(), arrays["snapshot_predicted"]))
    error_title = "Wrongly classified grid points" if names else "Absolute error on the grid"
    return [
        plots.plot_prediction_field(
            *grid, predicted, truth, names, out / "field.png", title=field_title(len(names))
        ),
        plots.plot_error_map(*grid, predicted, truth, names, out / "errors.png", title=error_title),
        plots.plot_boundary_snapshots(
            arrays["snapshot_x"],
            arrays["snapshot_y"],
            snapshots,
            arrays["snapshot_truth"],
            names,
            out / "snapshots.png",
            title="The prediction during training",
        ),
    ]


def field_title(n_classes: int) -> str:
    if n_classes == 2:
        return "Predicted probability and true boundary"
    return (
        "Predicted class (faded where unsure) and true boundary"
        if n_classes
        else "Predicted value and true contours"
    )


def short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --------------------------------------------------------------------------- report


def figure_captions(config: dict[str, Any], metrics: dict[str, Any]) -> dict[str, str]:
    """The caption of each figure, with this run's numbers in it."""
    classification = config["function"]["kind"] == "classification"
    error = metrics.get("grid_error", float("nan"))
    values = {
        "resolution": GRID_RESOLUTION,
        "n_test": metrics.get("n_test", 0),
        "what": "class" if classification else "value",
        "field": "probability of the second class" if classification else "value",
        "boundary": "decision boundary"
        if classification
        else "contour lines (dashed where negative)",
        "errors": (
            f"red where the predicted class differs from the function ({error:.2%} of the grid)"
            if classification
            else f"|predicted - true| at each grid point (mean {error:.4f})"
        ),
        "accuracy": " and accuracy" if classification else "",
    }
    if classification and len(config["function"]["classes"]) > 2:
        values["field"] = "class (faded where unsure)"
    return {name: caption.format(**values) for name, caption in FIGURES.items()}


def overview_rows(config: dict[str, Any], metrics: dict[str, Any]) -> list[list[Any]]:
    function = config["function"]
    (x_low, x_high), (y_low, y_high) = function["domain"]
    domain = f"[{x_low:g}, {x_high:g}] x [{y_low:g}, {y_high:g}]"
    rows = [["Function", function["name"]], ["Kind", function["kind"]], ["Domain", domain]]
    if function["formula"] != function["name"]:
        rows.insert(1, ["Formula", function["formula"]])
    if function["classes"]:
        rows.append(["Classes", ", ".join(f"{c:g}" for c in function["classes"])])
    rows += [[label, metrics[key]] for key, label in METRIC_LABELS.items() if key in metrics]
    seconds = metrics.get("epoch_seconds") or []
    if seconds:
        rows += [["Epochs", len(seconds)], ["Total training seconds", float(np.sum(seconds))]]
    return rows


def render_report(run_dir: str | Path) -> Path:
    """(Re)build the run's report.html from its files: overview, figures with captions, history,
    model."""
    run_dir = Path(run_dir)
    config = runs.read_json(run_dir, "config.json")
    metrics = runs.read_json(run_dir, "metrics.json")
    sections = report_sections(run_dir, config, metrics)
    title = f"cnnlab approx run {run_dir.name} (function {short(config['function']['name'])})"
    return build_report(
        title, [s for s in sections if s.html or s.figures], run_dir / "report.html"
    )


def report_sections(
    run_dir: Path, config: dict[str, Any], metrics: dict[str, Any]
) -> list[Section]:
    """Overview, original and predicted, the learned field, test metrics, training, model."""
    captions = figure_captions(config, metrics)

    def figures(*names: str) -> list[ReportFigure]:
        paths = [run_dir / "figures" / name for name in names]
        return [ReportFigure(path, captions[path.name]) for path in paths if path.is_file()]

    history_rows = runs.history_rows(runs.read_history(run_dir / "history.csv"))
    sections = [
        Section("Overview", overview_fragments(config, metrics)),
        Section(
            "Original and predicted",
            [],
            figures("original.png", "test_true.png", "test_predicted.png"),
        ),
        Section("The learned field", [], figures("field.png", "errors.png")),
        Section(
            "Training",
            [html_table(history_rows)] if history_rows else [],
            figures("snapshots.png", "history.png"),
        ),
        Section("Model", summary_fragments(run_dir)),
    ]
    if metrics.get("confusion_matrix"):
        header = ["", *[f"pred {name}" for name in metrics["class_names"]]]
        tables = [html_table(metrics["per_class"]), html_table(confusion_rows(metrics), header)]
        sections.insert(3, Section("Test metrics", tables))
    return sections


def overview_fragments(config: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    return [
        html_table(overview_rows(config, metrics), ["Quantity", "Value"]),
        "<h3>Settings</h3>",
        html_table(list(config.get("training", {}).items()), ["Setting", "Value"]),
    ]


def summary_fragments(run_dir: Path) -> list[str]:
    """The model summary as preformatted text, when the run holds one."""
    path = run_dir / "summary.txt"
    if not path.is_file():
        return []
    return [f"<pre>{html.escape(limits.read_file(path).decode(errors='replace'))}</pre>"]


def confusion_rows(metrics: dict[str, Any]) -> list[list[Any]]:
    return [
        [f"true {name}", *row]
        for name, row in zip(metrics["class_names"], metrics["confusion_matrix"])
    ]


def headline(metrics: dict[str, Any]) -> str:
    """ "test accuracy 0.9804 (test loss 0.0622)" or "R^2 0.9871 (test MSE 0.0031)"."""
    if "test_accuracy" in metrics:
        return (
            f"test accuracy {format_value(metrics['test_accuracy'])} (test loss "
            f"{format_value(metrics['test_loss'])})"
        )
    return f"R^2 {format_value(metrics['r2'])} (test MSE {format_value(metrics['test_loss'])})"
