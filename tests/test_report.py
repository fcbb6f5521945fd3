"""cnnlab.report: self-contained HTML from a run directory, checked as text and in Chromium."""

from __future__ import annotations

import base64
import html
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from cnnlab import report
from cnnlab.errors import CnnlabError
from cnnlab.evaluation import Evaluation
from cnnlab.plots import plot_class_distribution
from cnnlab.report import ReportFigure, Section, build_report, html_table, render_run_report

CHROMIUM = Path("/usr/bin/chromium")
NAMES = ["zero", "one", "two"]
HISTORY = {
    "loss": [1.1, 0.6],
    "accuracy": [0.5, 0.8],
    "val_loss": [0.9, 0.7],
    "val_accuracy": [0.6, 0.75],
}


def make_run_dir(run_dir: Path) -> dict:
    """A run directory as the CLI writes it, with real figures; returns its metrics."""
    rng = np.random.default_rng(0)
    labels = np.arange(30) % 3
    logits = 2.5 * np.eye(3)[labels] + rng.normal(size=(30, 3))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    evaluation = Evaluation.of_classifier(labels, probs, NAMES)
    report.write_figures_for_run(
        run_dir,
        evaluation,
        history=HISTORY,
        x_test=rng.random((30, 8, 8)),
        first_kernel=rng.normal(size=(3, 3, 1, 8)),
    )
    plot_class_distribution(labels, None, NAMES, run_dir / "figures" / "zz_extra.png")
    metrics = evaluation.metrics(
        params=34826, epoch_seconds=[1.5, 1.25], engine="numpy", dataset="digits"
    )
    config = {
        "model": [{"class_name": "Conv2D", "config": {"filters": 8}}],
        "training": {"batch_size": 16, "epochs": 2, "optimizer": "adam"},
        "dataset": "digits",
        "engine": "numpy",
        "created": "2025-05-01T10:00:00",
    }
    (run_dir / "metrics.json").write_text(json.dumps(metrics))
    (run_dir / "config.json").write_text(json.dumps(config))
    (run_dir / "history.csv").write_text(
        "epoch,loss,accuracy,val_loss,val_accuracy,seconds\n1,1.1,0.5,0.9,0.6,1.5\n"
        "2,0.6,0.8,0.7,0.75,1.25\n"
    )
    (run_dir / "summary.txt").write_text('Model: "sequential"\n conv2d (Conv2D) <None> 80\n')
    return metrics


@pytest.fixture(scope="module")
def run_report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict, str]:
    """A synthetic run directory, its metrics, and the text of its rendered report."""
    run_dir = tmp_path_factory.mktemp("runs") / "2025-05-01-digits"
    run_dir.mkdir()
    metrics = make_run_dir(run_dir)
    path = render_run_report(run_dir)
    assert path == run_dir / "report.html"
    return run_dir, metrics, path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- html_table


def test_html_table_escapes_every_text() -> None:
    table = html_table([{"name": "<b>bold</b>", "score": 0.5}], header=None)
    assert "<b>bold" not in table and "&lt;b&gt;bold&lt;/b&gt;" in table
    assert "<th>name</th><th>score</th>" in table
    assert '<td class="text">&lt;b&gt;bold&lt;/b&gt;</td><td>0.5000</td>' in table
    assert "<th>&lt;x&gt;</th>" in html_table([[1]], header=["<x>"])


def test_html_table_formats_values() -> None:
    table = html_table([["params", 34826], ["auc", None], ["ok", True]], ["k", "v"])
    assert "<td>34,826</td>" in table and ">n/a</td>" in table and ">True</td>" in table
    assert "<thead>" not in html_table([[1, 2]], header=None)


# --------------------------------------------------------------------------- build_report


def test_build_report_inlines_figures_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    figure = plot_class_distribution(np.array([0, 1, 1]), None, ["a", "b"], tmp_path / "d.png")
    section = Section("Data & <more>", ["<p>hello</p>"], [ReportFigure(figure, "Counts")])
    path = build_report("A <title>", [section], tmp_path / "out" / "report.html")
    text = path.read_text(encoding="utf-8")
    assert "<title>A &lt;title&gt;</title>" in text and "Data &amp; &lt;more&gt;" in text
    (source,) = re.findall(r'<img src="([^"]+)"', text)
    encoded = source.removeprefix("data:image/png;base64,")
    assert base64.b64decode(encoded) == figure.read_bytes()
    assert "<figcaption>Counts</figcaption>" in text
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.html"]


def test_failed_write_keeps_the_old_report_and_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    target.write_text("old report")

    def refuse(source: str, destination: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        build_report("t", [Section("s", ["<p>new</p>"])], target)
    assert target.read_text() == "old report"
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]


def test_missing_figure_is_a_clear_error(tmp_path: Path) -> None:
    section = Section("s", figures=[ReportFigure(tmp_path / "absent.png")])
    with pytest.raises(CnnlabError, match="absent.png"):
        build_report("t", [section], tmp_path / "report.html")


# --------------------------------------------------------------------------- render_run_report


def test_write_figures_for_run_writes_the_standard_figures(run_report: tuple) -> None:
    run_dir, _, _ = run_report
    names = {p.name for p in (run_dir / "figures").iterdir()}
    assert names == {
        "history.png",
        "confusion_matrix.png",
        "confusion_matrix_normalized.png",
        "roc.png",
        "per_class.png",
        "mistakes.png",
        "filters.png",
        "zz_extra.png",
    }


def test_run_report_is_self_contained(run_report: tuple) -> None:
    run_dir, _, text = run_report
    sources = re.findall(r'<img[^>]* src="([^"]*)"', text)
    assert len(sources) == len(list((run_dir / "figures").glob("*.png")))
    assert all(source.startswith("data:image/png;base64,") for source in sources)
    assert not re.search(r'(src|href)="(https?:)?//', text)
    assert "<link" not in text


def test_run_report_shows_metrics_settings_history_and_summary(run_report: tuple) -> None:
    _, metrics, text = run_report
    assert f"<td>{metrics['test_accuracy']:.4f}</td>" in text
    assert f"<td>{metrics['roc_auc_ovr']:.4f}</td>" in text
    assert f"<td>{metrics['test_loss']:.4f}</td>" in text and "<td>34,826</td>" in text
    assert "<td>2.7500</td>" in text  # total training seconds
    assert '>optimizer</td><td class="text">adam</td>' in text
    assert "<th>val_accuracy</th>" in text and "<td>0.7500</td>" in text
    assert "conv2d (Conv2D) &lt;None&gt; 80" in text
    assert "<th>pred two</th>" in text and ">true zero</td>" in text
    assert "cnnlab run 2025-05-01-digits (digits, numpy engine)" in text


def test_run_report_orders_known_figures_then_the_others(run_report: tuple) -> None:
    _, _, text = run_report
    captions = re.findall(r"<figcaption>([^<]*)</figcaption>", text)
    expected = [
        report.FIGURE_CAPTIONS[name]
        for name in (
            "history.png",
            "confusion_matrix.png",
            "confusion_matrix_normalized.png",
            "roc.png",
            "per_class.png",
            "mistakes.png",
            "filters.png",
        )
    ] + ["zz_extra.png"]
    assert captions == expected


def test_run_report_skips_missing_optional_files(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model": {"layers": []}}))
    (tmp_path / "metrics.json").write_text(json.dumps({"test_accuracy": 0.5}))
    text = render_run_report(tmp_path).read_text(encoding="utf-8")
    assert "<td>0.5000</td>" in text and "<img" not in text and "<pre>" not in text


@pytest.mark.parametrize("missing", ["metrics.json", "config.json"])
def test_run_report_needs_metrics_and_config(tmp_path: Path, missing: str) -> None:
    for name in {"metrics.json", "config.json"} - {missing}:
        (tmp_path / name).write_text("{}")
    with pytest.raises(CnnlabError, match=f"{re.escape(str(tmp_path))} has no {missing}"):
        render_run_report(tmp_path)
    assert not (tmp_path / "report.html").exists()


def test_unreadable_metrics_and_absent_run_dir_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "metrics.json").write_text("{not json")
    with pytest.raises(CnnlabError, match="cannot read metrics.json"):
        render_run_report(tmp_path)
    with pytest.raises(CnnlabError, match="does not exist"):
        render_run_report(tmp_path / "nowhere")


# --------------------------------------------------------------------------- in a browser


def dump_dom(page: Path, profile: Path) -> str:
    """The DOM of ``page`` after its load event, as headless Chromium serialises it."""
    command = [
        str(CHROMIUM),
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={profile}",
        "--virtual-time-budget=2000",
        "--dump-dom",
        page.resolve().as_uri(),
    ]
    completed = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert completed.returncode == 0, completed.stderr[-2000:]
    return completed.stdout


@pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="needs Chromium at /usr/bin/chromium (Debian: apt-get install -y chromium)",
)
def test_report_loads_every_image_in_chromium(run_report: tuple, tmp_path: Path) -> None:
    run_dir, metrics, _ = run_report
    copy = tmp_path / "report.html"  # a copy, so the browser cannot reach the figures folder
    shutil.copy(run_dir / "report.html", copy)
    dom = dump_dom(copy, tmp_path / "profile")
    n_figures = len(list((run_dir / "figures").glob("*.png")))
    assert f'data-images-loaded="{n_figures}/{n_figures}"' in dom
    assert f"{metrics['test_accuracy']:.4f}" in dom


def table_after(text: str, heading: str) -> list[list[str]]:
    """The cells of the first table after ``heading`` in a report, row by row (header too)."""
    table = text[text.index(heading) :].split("</table>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)
    return [[html.unescape(c) for c in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", r)] for r in rows]


def test_a_real_runs_report_shows_exactly_the_numbers_of_its_metrics_json(tmp_path: Path) -> None:
    from cnnlab.cli import main

    run_dir = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--epochs", "1", "--out", str(run_dir)]) == 0
    metrics = json.loads((run_dir / "metrics.json").read_text())
    text = (run_dir / "report.html").read_text(encoding="utf-8")
    overview = dict(row for row in table_after(text, "<h2") if len(row) == 2)
    for key, label in report.METRIC_LABELS.items():
        if key in metrics:
            assert overview[label] == report.format_value(metrics[key]), key
    per_class = table_after(text, "Per-class scores")[1:]
    assert per_class == [
        [report.format_value(v) for v in row.values()] for row in metrics["per_class"]
    ]
    confusion = table_after(text, "<h3>Confusion matrix")[1:]
    assert [[int(c.replace(",", "")) for c in row[1:]] for row in confusion] == metrics[
        "confusion_matrix"
    ]
    assert sum(map(sum, metrics["confusion_matrix"])) == metrics["n_samples"] == 450
