"""Self-contained HTML reports: figures inlined as base64 PNG, CSS and a small script inline.

A report opens from disk with no network: ``build_report`` takes sections of HTML and
figures; ``render_run_report`` rebuilds ``report.html`` of a run directory from the files
already in it (``config.json``, ``metrics.json``, ``history.csv``, ``summary.txt``,
``figures/*.png``) without retraining; ``write_figures_for_run`` writes the standard
evaluation figures into ``figures/``.
"""

from __future__ import annotations

import base64
import html
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from cnnlab import __version__, plots
from cnnlab.engine import limits
from cnnlab.errors import CnnlabError
from cnnlab.evaluation import Evaluation
from cnnlab.runs import check_run_json, history_rows, read_history, write_text

FIGURE_CAPTIONS: dict[str, str] = {
    "history.png": "Loss and accuracy per epoch (training and validation)",
    "confusion_matrix.png": "Confusion matrix: true class on rows, predicted class on columns",
    "confusion_matrix_normalized.png": "Confusion matrix, each row as shares of its true class",
    "roc.png": "ROC curves, one class against the rest, with micro and macro averages",
    "per_class.png": "Precision, recall and F1 per class",
    "mistakes.png": "The test images the model got wrong with the highest confidence",
    "filters.png": "The learned filters of the first convolution layer",
    "feature_maps.png": "The output of each layer for one test image",
    "saliency.png": "Saliency: which pixels the predicted score is most sensitive to",
}

METRIC_LABELS: dict[str, str] = {
    "dataset": "Dataset",
    "engine": "Engine",
    "test_accuracy": "Test accuracy",
    "test_loss": "Test loss",
    "precision_macro": "Precision (macro)",
    "recall_macro": "Recall (macro)",
    "f1_macro": "F1 (macro)",
    "roc_auc_ovr": "ROC-AUC (one-vs-rest, macro)",
    "params": "Parameters",
}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #222;
       max-width: 1100px; margin: 0 auto; padding: 1rem 1.5rem 3rem; line-height: 1.45; }
h1 { border-bottom: 2px solid #4682b4; padding-bottom: .3rem; }
h2 { margin-top: 2.2rem; border-bottom: 1px solid #ddd; padding-bottom: .2rem; }
nav ul { display: flex; flex-wrap: wrap; gap: .3rem 1.2rem; padding: 0; list-style: none; }
table { border-collapse: collapse; margin: .8rem 0; font-size: .92rem; }
th, td { border: 1px solid #ccc; padding: .25rem .6rem; text-align: right; }
th { background: #eef3f8; cursor: pointer; user-select: none; }
td:first-child, th:first-child, td.text { text-align: left; }
tbody tr:nth-child(even) { background: #fafafa; }
figure { margin: 1.2rem 0; }
figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: .9rem; }
pre { background: #f6f8fa; padding: .8rem; overflow-x: auto; font-size: .82rem; }
footer { margin-top: 3rem; color: #777; font-size: .8rem; }
"""

# Records how many images decoded (checked by a headless-browser test) and sorts tables.
SCRIPT = """
window.addEventListener("load", function () {
  var images = Array.prototype.slice.call(document.images);
  var loaded = images.filter(function (img) { return img.complete && img.naturalWidth > 0; });
  document.body.dataset.imagesLoaded = loaded.length + "/" + images.length;
});
document.addEventListener("click", function (event) {
  var th = event.target.closest("table.sortable th");
  if (!th) { return; }
  var table = th.closest("table"), body = table.tBodies[0], column = th.cellIndex;
  var ascending = th.dataset.order !== "asc";
  th.dataset.order = ascending ? "asc" : "desc";
  var key = function (row) {
    var text = row.cells[column] ? row.cells[column].textContent.replace(/,/g, "") : "";
    var number = parseFloat(text);
    return isNaN(number) ? text : number;
  };
  Array.prototype.slice.call(body.rows).sort(function (a, b) {
    var x = key(a), y = key(b), order = x < y ? -1 : x > y ? 1 : 0;
    return ascending ? order : -order;
  }).forEach(function (row) { body.appendChild(row); });
});
"""


@dataclass
class ReportFigure:
    """A PNG file to inline in a report, with the caption shown under it."""

    path: Path
    caption: str = ""


@dataclass
class Section:
    """One titled part of a report: HTML fragments, then figures."""

    heading: str
    html: list[str] = field(default_factory=list)
    figures: list[ReportFigure] = field(default_factory=list)


# --------------------------------------------------------------------------- HTML pieces


def format_value(value: Any) -> str:
    """A value as report text: floats with 4 decimals, ints with thousands separators."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, (int, np.integer)):
        return f"{int(value):,}"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.4f}"
    if isinstance(value, (list, dict)):
        return json.dumps(value)
    return str(value)


def html_table(
    rows: Sequence[Mapping[str, Any]] | Sequence[Sequence[Any]],
    header: Sequence[str] | None = None,
) -> str:
    """An HTML ``<table class="sortable">`` of ``rows``, every text escaped.

    ``rows`` are dicts (the header defaults to their keys, in first-seen order) or
    sequences (the header is optional). Values go through ``format_value``.
    """
    if rows and isinstance(rows[0], Mapping):
        columns = list(header or dict.fromkeys(key for row in rows for key in row))
        cells = [[row.get(column) for column in columns] for row in rows]
    else:
        columns, cells = list(header or []), [list(row) for row in rows]
    head = "".join(f"<th>{html.escape(str(column))}</th>" for column in columns)
    body = "".join("<tr>" + "".join(_cell_html(value) for value in row) + "</tr>" for row in cells)
    thead = f"<thead><tr>{head}</tr></thead>" if columns else ""
    return f'<table class="sortable">{thead}<tbody>{body}</tbody></table>'


def _cell_html(value: Any) -> str:
    """A ``<td>``: numbers right-aligned (the default), text left-aligned."""
    is_number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    attribute = "" if is_number else ' class="text"'
    return f"<td{attribute}>{html.escape(format_value(value))}</td>"


def _figure_html(figure: ReportFigure) -> str:
    """A ``<figure>`` whose ``<img>`` carries the PNG as a base64 data URI."""
    path = Path(figure.path)
    if path.suffix.lower() != ".png":
        raise CnnlabError(f"report figures must be PNG files; received {path}.")
    try:
        encoded = base64.b64encode(limits.read_file(path, limits.MAX_FIGURE_BYTES)).decode("ascii")
    except OSError as error:
        raise CnnlabError(f"cannot read the figure {path}: {error.strerror}.") from error
    except ValueError as error:  # a link to a device, a file over the limit
        raise CnnlabError(f"cannot read the figure {error}") from None
    caption = html.escape(figure.caption or path.name)
    return (
        f'<figure><img src="data:image/png;base64,{encoded}" alt="{caption}">'
        f"<figcaption>{caption}</figcaption></figure>"
    )


def _anchor(index: int) -> str:
    """The id of the ``index``-th section, for the table of contents."""
    return f"section-{index + 1}"


def _section_html(index: int, section: Section) -> str:
    """A ``<section>``: heading, its HTML fragments, then its figures."""
    parts = [f'<h2 id="{_anchor(index)}">{html.escape(section.heading)}</h2>', *section.html]
    parts += [_figure_html(figure) for figure in section.figures]
    return "<section>\n" + "\n".join(parts) + "\n</section>"


def _page_html(title: str, sections: Sequence[Section]) -> str:
    """The whole document: head with inline CSS and script, contents, sections, footer."""
    links = "".join(
        f'<li><a href="#{_anchor(i)}">{html.escape(s.heading)}</a></li>'
        for i, s in enumerate(sections)
    )
    created = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = "\n".join(_section_html(i, section) for i, section in enumerate(sections))
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n"
        f"<script>{SCRIPT}</script>\n</head>\n<body>\n<h1>{html.escape(title)}</h1>\n"
        f"<nav><ul>{links}</ul></nav>\n{body}\n"
        f"<footer>Generated by cnnlab {html.escape(__version__)} on {created}.</footer>\n"
        "</body>\n</html>\n"
    )


def build_report(title: str, sections: Sequence[Section], path: str | Path) -> Path:
    """Write a self-contained HTML report (figures inlined) atomically and return its path."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_text(target, _page_html(title, sections))
    return target


# --------------------------------------------------------------------------- run directory


def _read_json(run_dir: Path, name: str) -> dict[str, Any]:
    """A required JSON file of the run directory; a missing or broken one is a CnnlabError."""
    path = run_dir / name
    if not path.is_file():
        raise CnnlabError(f"the run directory {run_dir} has no {name}; is it a cnnlab run?")
    try:
        content = limits.loads_json(limits.read_file(path), str(path))
    except (OSError, ValueError) as error:
        raise CnnlabError(f"cannot read {name} of the run directory {run_dir}: {error}") from None
    if not isinstance(content, dict):
        raise CnnlabError(f"{name} of the run directory {run_dir} must hold a JSON object.")
    try:
        return check_run_json(path, content)
    except ValueError as error:
        raise CnnlabError(str(error)) from None


def _overview_rows(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> list[list[Any]]:
    """Key facts of a run: dataset, engine, scores, parameters and training time."""
    merged = {"dataset": config.get("dataset"), "engine": config.get("engine"), **metrics}
    rows = [[label, merged[key]] for key, label in METRIC_LABELS.items() if key in merged]
    seconds = metrics.get("epoch_seconds") or []
    if seconds:
        rows.append(["Epochs", len(seconds)])
        rows.append(["Mean seconds per epoch", float(np.mean(seconds))])
        rows.append(["Total training seconds", float(np.sum(seconds))])
    if "created" in config:
        rows.append(["Created", config["created"]])
    return rows


def _overview_section(config: Mapping[str, Any], metrics: Mapping[str, Any]) -> Section:
    """The overview table and the training settings."""
    fragments = [html_table(_overview_rows(config, metrics), ["Quantity", "Value"])]
    training = config.get("training") or {}
    if training:
        fragments.append("<h3>Training settings</h3>")
        fragments.append(html_table(list(training.items()), ["Setting", "Value"]))
    return Section("Overview", fragments)


def _model_layers(model_config: Any) -> list[dict[str, Any]]:
    """The layer list of a model config: a list of layers, or a dict holding ``layers``."""
    if isinstance(model_config, Mapping):
        model_config = model_config.get("layers")
    if not isinstance(model_config, list):
        return []
    return [layer for layer in model_config if isinstance(layer, Mapping)]


def _model_section(run_dir: Path, config: Mapping[str, Any]) -> Section | None:
    """The model summary text, else a table of the layers in the config."""
    summary = run_dir / "summary.txt"
    if summary.is_file():
        try:
            text = limits.read_file(summary).decode("utf-8", errors="replace")
        except ValueError as error:
            raise CnnlabError(str(error)) from None
        return Section("Model", [f"<pre>{html.escape(text)}</pre>"])
    layers = _model_layers(config.get("model"))
    if not layers:
        return None
    rows = [[layer.get("class_name"), layer.get("config", {})] for layer in layers]
    return Section("Model", [html_table(rows, ["Layer", "Configuration"])])


def _class_names(metrics: Mapping[str, Any]) -> list[str]:
    """Class names from ``per_class``, else 0..K-1 from the confusion matrix."""
    per_class = metrics.get("per_class") or []
    if per_class:
        return [str(row.get("class", k)) for k, row in enumerate(per_class)]
    return [str(k) for k in range(len(metrics.get("confusion_matrix") or []))]


def _confusion_table(matrix: Sequence[Sequence[int]], names: Sequence[str]) -> str:
    """The confusion matrix as a table: a row per true class, a column per predicted class."""
    rows = [[f"true {name}", *counts] for name, counts in zip(names, matrix)]
    return html_table(rows, ["", *[f"pred {name}" for name in names]])


def _evaluation_fragments(metrics: Mapping[str, Any]) -> list[str]:
    """Per-class scores and the confusion matrix as tables, where the metrics hold them."""
    fragments = []
    if metrics.get("per_class"):
        fragments += ["<h3>Per-class scores</h3>", html_table(metrics["per_class"])]
    if metrics.get("confusion_matrix"):
        fragments += [
            "<h3>Confusion matrix</h3>",
            _confusion_table(metrics["confusion_matrix"], _class_names(metrics)),
        ]
    return fragments


def _ordered_figures(figures_dir: Path) -> list[ReportFigure]:
    """The run's PNG figures: known names first in a fixed order, the others by name."""
    found = {path.name: path for path in sorted(figures_dir.glob("*.png"))}
    known = [
        ReportFigure(found[name], caption)
        for name, caption in FIGURE_CAPTIONS.items()
        if name in found
    ]
    others = [
        ReportFigure(path, name) for name, path in found.items() if name not in FIGURE_CAPTIONS
    ]
    return known + others


def _history_section(history: list[dict[str, Any]], figures: list[ReportFigure]) -> Section | None:
    """Training history: the per-epoch table and the history figure."""
    if not history and not figures:
        return None
    return Section("Training history", [html_table(history)] if history else [], figures)


def _pick(figures: list[ReportFigure], names: Sequence[str]) -> list[ReportFigure]:
    """The figures whose file names are in ``names``, in the given order."""
    return [figure for figure in figures if figure.path.name in names]


def _run_sections(
    run_dir: Path, config: Mapping[str, Any], metrics: Mapping[str, Any]
) -> list[Section]:
    """All sections of a run report, from its config, metrics and the files of ``run_dir``."""
    figures = _ordered_figures(run_dir / "figures")
    evaluation_names = list(FIGURE_CAPTIONS)[1:6]
    inside_names = list(FIGURE_CAPTIONS)[6:]
    sections = [
        _overview_section(config, metrics),
        _model_section(run_dir, config),
        _history_section(
            history_rows(read_history(run_dir / "history.csv")), _pick(figures, ["history.png"])
        ),
        Section(
            "Evaluation on the test set",
            _evaluation_fragments(metrics),
            _pick(figures, evaluation_names),
        ),
        Section("Inside the network", [], _pick(figures, inside_names)),
        Section("More figures", [], [f for f in figures if f.path.name not in FIGURE_CAPTIONS]),
    ]
    return [s for s in sections if s is not None and (s.html or s.figures)]


def _run_title(run_dir: Path, config: Mapping[str, Any]) -> str:
    """ "cnnlab run <name>: <dataset>, <engine> engine"."""
    details = ", ".join(str(part) for part in (config.get("dataset"), config.get("engine")) if part)
    return f"cnnlab run {run_dir.name}" + (f" ({details} engine)" if details else "")


def render_run_report(run_dir: str | Path) -> Path:
    """Rebuild ``run_dir/report.html`` from the run directory alone (no retraining).

    Reads ``config.json`` and ``metrics.json`` (required: a missing one raises
    ``CnnlabError``), and ``history.csv``, ``summary.txt`` and ``figures/*.png`` when present.
    """
    directory = Path(run_dir)
    if not directory.is_dir():
        raise CnnlabError(f"the run directory {directory} does not exist.")
    config = _read_json(directory, "config.json")
    metrics = _read_json(directory, "metrics.json")
    sections = _run_sections(directory, config, metrics)
    return build_report(_run_title(directory, config), sections, directory / "report.html")


# --------------------------------------------------------------------------- figures of a run


def write_figures_for_run(
    run_dir: str | Path,
    evaluation: Evaluation,
    *,
    history: Mapping[str, Sequence[float]] | None,
    x_test: np.ndarray,
    first_kernel: np.ndarray | None = None,
) -> list[Path]:
    """Write the standard figures of a classifier's run into ``run_dir/figures/`` and return
    their paths, every number taken from its test ``evaluation`` (the one metrics.json holds).

    History (when given), confusion matrix (counts and row-normalised), ROC, per-class
    scores, most confident mistakes, and the first-layer filters when ``first_kernel``
    (``(kh, kw, C_in, F)``) is given. ROC is skipped when no class has both outcomes.
    """
    out, names = Path(run_dir) / "figures", list(evaluation.class_names)
    y_true, y_prob, cm = evaluation.y_true, evaluation.y_prob, evaluation.confusion_matrix
    written = []
    if history and plots.history_metric_names(history):
        written.append(plots.plot_history(history, out / "history.png"))
    written.append(plots.plot_confusion_matrix(cm, names, out / "confusion_matrix.png"))
    written.append(
        plots.plot_confusion_matrix(
            cm, names, out / "confusion_matrix_normalized.png", normalize=True
        )
    )
    if plots.one_vs_rest_curves(y_true, y_prob):
        written.append(plots.plot_roc(y_true, y_prob, names, out / "roc.png"))
    written.append(plots.plot_per_class(evaluation.scores["per_class"], out / "per_class.png"))
    written.append(
        plots.plot_confident_mistakes(x_test, y_true, y_prob, names, out / "mistakes.png")
    )
    if first_kernel is not None:
        written.append(plots.plot_filters(first_kernel, out / "filters.png"))
    return written


# ------------------------------------------------------------------ every kind of directory
# The kind a directory declares (the "kind" field of its main JSON file) -> the function that
# renders its report.html from its files alone. `cnnlab report DIR` goes through this one table.
REPORT_KINDS: dict[str, tuple[str, str]] = {
    "run": ("cnnlab.report", "render_run_report"),
    "approximation": ("cnnlab.approx", "render_report"),
    "comparison": ("cnnlab.compare", "render_comparison_report"),
    "parity": ("cnnlab.compare", "render_comparison_report"),
    "program-comparison": ("cnnlab.program_compare", "render_program_report"),
    "study": ("cnnlab.study.report", "render_study_report"),
}
KIND_FILES = ("comparison.json", "parity.json", "config.json")  # the main JSON file of each kind


def directory_kind(directory: str | Path) -> str:
    """What cnnlab wrote there: the "kind" of its main JSON file, a study's database, or (for
    directories written before kinds were recorded) what their files show."""
    from cnnlab.runs import read_json
    from cnnlab.study.report import is_study

    directory = Path(directory)
    if is_study(directory):
        return "study"
    name = next((name for name in KIND_FILES if (directory / name).is_file()), None)
    if name is None:
        raise CnnlabError(
            f"{directory}: not a directory cnnlab wrote (it has no config.json, comparison.json, "
            "parity.json or study.sqlite)"
        )
    data = read_json(directory, name)
    kind = data.get("kind") or legacy_kind(name, data)
    if kind not in REPORT_KINDS:
        raise CnnlabError(
            f"{directory / name}: unknown kind {kind!r}; known: {', '.join(REPORT_KINDS)}"
        )
    return kind


def legacy_kind(name: str, data: Mapping[str, Any]) -> str:
    if name == "comparison.json":
        return "program-comparison" if "program" in data else "comparison"
    if name == "parity.json":
        return "parity"
    return "approximation" if data.get("command") == "approx" else "run"


def render_report(directory: str | Path) -> Path:
    """(Re)build report.html of any directory cnnlab writes, from its files alone."""
    import importlib

    module, function = REPORT_KINDS[directory_kind(directory)]
    return getattr(importlib.import_module(module), function)(Path(directory))
