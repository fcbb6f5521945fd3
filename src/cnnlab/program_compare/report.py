"""The figures and report.html of a program comparison, from its files alone (``cnnlab report
DIR``): what ran, what was identical, per-layer parity, then the sections ``cnnlab compare``
shares with built-in comparisons."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .. import runs


def write_program_figures(out_dir: Path, summary: dict[str, Any]) -> None:
    """Confusion matrices and ROC curves of both engines (classifiers), and both runs' curves."""
    from .. import plots

    figures = out_dir / "figures"
    if "engines" in summary:
        cms = {
            engine: np.array(figures_["confusion_matrix"])
            for engine, figures_ in summary["engines"].items()
        }
        plots.plot_confusion_matrices(
            cms, summary["class_names"], figures / "confusion_matrices.png"
        )
        y_true = np.array(summary["y_true"])
        plots.plot_roc_compare(
            {engine: (y_true, np.array(prob)) for engine, prob in summary["y_prob"].items()},
            figures / "roc_compare.png",
        )
    if any(summary["histories"].values()):
        plots.plot_history_compare(summary["histories"], figures / "history_compare.png")


def parity_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """One row per layer; differences in scientific notation (they are near 1e-7)."""

    def sci(value: float | None) -> str:
        return "-" if value is None else f"{value:.2e}"

    return [
        [
            row["layer"],
            row["class"] or "-",
            sci(row["output_max_abs"]),
            sci(row["output_max_rel"]),
            sci(row["grad_max_rel"]),
        ]
        for row in summary.get("parity", [])
    ]


def program_sections(summary: dict[str, Any]) -> list[Any]:
    """The sections only a program comparison has: what ran, what was identical, per-layer
    parity."""
    import html

    from ..report import Section, html_table

    notes = "".join(f"<li>{html.escape(note)}</li>" for note in summary.get("notes", []))
    about = (
        f"<p>The program <code>{html.escape(summary['program'])}</code> ran unmodified on "
        "cnnlab's NumPy engine "
        f"and was replayed on {html.escape(summary['reference_name'])}. Evaluated on "
        f"{html.escape(summary['dataset'])}"
        f" ({summary['evaluation_images']:,} samples).</p><p>{html.escape(summary['note'])}</p>"
        + (f"<ul>{notes}</ul>" if notes else "")
    )
    parity = html_table(
        parity_rows(summary),
        [
            "layer",
            "class",
            "output max abs diff",
            "output max rel diff",
            "weight gradient max rel diff",
        ],
    )
    return [
        Section("The program", [about]),
        Section(
            "Parity at the initial weights (first batch, dropout off)",
            [
                f"<p>Each layer's output and the gradients of its weights, NumPy engine against "
                f"{html.escape(summary['reference_name'])}, before any training step. float32 in "
                "both: differences "
                "near 1e-6 relative are rounding.</p>",
                parity,
            ],
        ),
    ]


def render_program_report(out_dir: Path) -> Path:
    """report.html of a program comparison, from its files alone (``cnnlab report DIR``)."""
    from ..compare import agreement_section, figures_section, metric_rows, per_class_section
    from ..report import Section, build_report, html_table

    summary = runs.read_json(out_dir, "comparison.json")
    name = summary["reference_name"]
    sections = program_sections(summary)
    if "engines" in summary:
        table = html_table(metric_rows(summary), ["metric", "NumPy engine", name])
        sections += [Section("Side by side", [table]), per_class_section(summary)]
    sections += [agreement_section(summary, "evaluation samples"), figures_section(out_dir)]
    title = f"{summary['program']}: NumPy engine vs {name}"
    return build_report(title, sections, out_dir / "report.html")
