"""Handwritten engine vs a framework (``cnnlab compare``): the same network, side by side.

The framework is PyTorch (``cnnlab.reference.torch``) or, where it is installed, Keras 3
(``cnnlab.reference.keras``). Both engines start from identical weights and see identical
batches in identical order (the framework's trainer shuffles with a copy of the engine
model's generator). Only the dropout
masks differ: each engine draws its own. The comparison directory holds both models,
``comparison.json`` (every metric of both and their agreement), figures and a report.

``parity`` (``cnnlab compare --parity``) switches dropout off and compares, layer by layer,
the forward outputs, the loss, every gradient and the weights after N optimizer steps.
"""

from __future__ import annotations

import copy
import html
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from . import plots, runs
from .connect import blas_threads
from .engine.batches import steps_per_epoch, training_count
from .engine.callbacks import CallbackList
from .evaluation import PREDICT_BATCH, Evaluation, run_facts
from .metrics import agreement
from .report import ReportFigure, Section, build_report, html_table
from .training import PreparedData, PreparedRun, TrainSettings, prepare, write_config
from .utils import to_categorical

REFERENCES = {
    "torch": ("cnnlab.reference.torch", "TorchTrainer", "PyTorch"),
    "keras": ("cnnlab.reference.keras", "KerasTrainer", "Keras 3"),
}
ROWS = [
    ("test_accuracy", "accuracy"),
    ("precision_macro", "precision (macro)"),
    ("recall_macro", "recall (macro)"),
    ("f1_macro", "F1 (macro)"),
    ("roc_auc_ovr", "ROC-AUC (one-vs-rest, macro)"),
    ("test_loss", "test loss"),
    ("params", "parameters"),
    ("seconds_per_epoch", "seconds per epoch (median)"),
    ("memory_growth_mb", "memory growth while training (MB)"),
]
DROPOUT_NOTE = (
    "Both engines started from the same weights and saw the same batches in the same order; "
    "their dropout masks differ (each draws its own), so their results differ a little by chance."
)


class PeakMemory:
    """How far the resident set size of this process rose above its starting value while the
    block ran (sampled every 20 ms): ``growth`` in bytes."""

    def __enter__(self) -> PeakMemory:
        self.start = self.peak = current_rss()
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()
        return self

    def sample(self) -> None:
        while self.running:
            self.peak = max(self.peak, current_rss())
            time.sleep(0.02)

    def __exit__(self, *exc: object) -> None:
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, current_rss())

    @property
    def growth(self) -> int:
        return self.peak - self.start


def current_rss() -> int:
    """Resident set size in bytes, from /proc (Linux); 0 where unavailable."""
    try:
        with open("/proc/self/statm") as file:
            return int(file.read().split()[1]) * 4096
    except OSError:
        return 0


def reference_trainer(reference: str, model: Any, seed: int) -> Any:
    """The framework twin of the engine model (TorchTrainer or KerasTrainer), same weights."""
    import importlib

    module, name, _ = REFERENCES[reference]
    trainer_class = getattr(importlib.import_module(module), name)
    trainer = trainer_class(
        model.get_config(),
        model.optimizer.get_config(),
        model.loss.get_config(),
        seed,
        threads=blas_threads(),
    )  # like with like: the same thread count as NumPy's BLAS
    trainer.set_weights_from(model)
    return trainer


def train_both(
    run: PreparedRun, progress: dict[str, list], reference: str = "torch"
) -> dict[str, dict[str, Any]]:
    """Train the engine and its framework twin from identical weights and batch order."""
    settings, data, model = run.settings, run.data, run.model
    shuffle_copy = copy.deepcopy(model.shuffle_rng)  # before the engine draws its first batches
    trainer = reference_trainer(reference, model, settings.seed)
    y = to_categorical(data.y_train, data.num_classes)
    fit = dict(
        batch_size=settings.batch_size,
        epochs=settings.epochs,
        validation_split=settings.validation_split,
    )
    with PeakMemory() as numpy_memory:
        history = model.fit(data.x_train, y, verbose=0, callbacks=progress["numpy"], **fit)
    hooks = (  # the PyTorch trainer takes the engine's callbacks; Keras 3's reports epochs
        {"callbacks": progress["reference"]}
        if reference == "torch"
        else {"on_epoch_end": epoch_hooks(progress["reference"], settings, len(data.x_train))}
    )
    with PeakMemory() as reference_memory:
        reference_history = trainer.fit(data.x_train, y, shuffle_rng=shuffle_copy, **hooks, **fit)
    numpy_result = {
        "model": model,
        "history": history.history,
        "epoch_seconds": history.epoch_seconds,
        "memory": numpy_memory.growth,
        "y_prob": model.predict(data.x_test, batch_size=PREDICT_BATCH, verbose=0),
    }
    reference_result = {
        "model": trainer.to_engine(),
        "history": reference_history,
        "epoch_seconds": list(trainer.epoch_seconds),
        "memory": reference_memory.growth,
        "y_prob": trainer.predict(data.x_test, batch_size=1000),
    }
    return {"numpy": numpy_result, reference: reference_result, "config": run.config}


def epoch_hooks(
    callbacks: list, settings: TrainSettings, samples: int
) -> Callable[[int, dict[str, float]], None]:
    """For a trainer that reports only finished epochs (the Keras 3 twin): the callbacks get
    Keras's ``params`` and their epoch hooks, as they would from a fit."""
    steps = steps_per_epoch(training_count(samples, settings.validation_split), settings.batch_size)
    hooks = CallbackList(callbacks, epochs=settings.epochs, steps=steps, verbose=0)
    hooks.on_epoch_begin(0)

    def on_epoch_end(epoch: int, logs: dict[str, float]) -> None:
        hooks.on_epoch_end(epoch, logs)
        if epoch + 1 < settings.epochs:
            hooks.on_epoch_begin(epoch + 1)

    return on_epoch_end


def engine_metrics(result: dict[str, Any], data: PreparedData, engine: str) -> dict[str, Any]:
    """metrics.json-style figures of one engine: its test Evaluation and the run facts."""
    evaluation = Evaluation.of_classifier(data.y_test, result["y_prob"], data.class_names)
    seconds = list(result["epoch_seconds"])
    return evaluation.metrics(
        **run_facts(result["model"], seconds, engine, data.name),
        seconds_per_epoch=float(np.median(seconds)),
        memory_growth_mb=result["memory"] / 2**20,
    )


def compare(
    settings: TrainSettings,
    out_dir: Path,
    progress: dict[str, list] | None = None,
    data: PreparedData | None = None,
    reference: str = "torch",
) -> dict[str, Any]:
    """Train both engines, measure both, write the comparison directory; returns comparison.json."""
    run = prepare(settings, data)  # checked and built as for cnnlab train
    data = run.data
    out_dir = runs.prepare_run_dir(out_dir)
    results = train_both(run, progress or {"numpy": [], "reference": []}, reference)
    write_config(out_dir, settings, results["config"], data)
    engines = ("numpy", reference)
    summary = {
        "kind": "comparison",
        "engines": {e: engine_metrics(results[e], data, e) for e in engines},
        "agreement": agreement(results["numpy"]["y_prob"], results[reference]["y_prob"]),
        "histories": {e: results[e]["history"] for e in engines},
        "note": DROPOUT_NOTE,
        "reference": reference,
        "reference_name": REFERENCES[reference][2],
        "dataset": data.name,
        "class_names": data.class_names,
    }
    for engine in engines:
        results[engine]["model"].save(out_dir / f"{engine}.cnnlab")
    runs.write_json(out_dir / "comparison.json", summary)
    write_figures(out_dir, summary, results, data)
    render_comparison_report(out_dir)
    return summary


def write_figures(out_dir: Path, summary: dict, results: dict, data: PreparedData) -> None:
    figures = out_dir / "figures"
    cms = {e: np.array(summary["engines"][e]["confusion_matrix"]) for e in summary["engines"]}
    plots.plot_confusion_matrices(cms, data.class_names, figures / "confusion_matrices.png")
    plots.plot_roc_compare(
        {e: (data.y_test, results[e]["y_prob"]) for e in summary["engines"]},
        figures / "roc_compare.png",
    )
    plots.plot_history_compare(summary["histories"], figures / "history_compare.png")


COMPARE_FIGURES = {
    "confusion_matrices.png": "Confusion matrices: the NumPy engine (left) and the framework "
    "(right)",
    "roc_compare.png": "ROC curves of both engines (micro and macro averages)",
    "history_compare.png": "Training and validation curves of both engines",
}


def metric_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """One row per metric: name, the engine's value, the framework's value."""
    return [
        [label, *(figures.get(key) for figures in summary["engines"].values())]
        for key, label in ROWS
    ]


def per_class_rows(summary: dict[str, Any]) -> list[list[Any]]:
    """Per class: precision, recall, F1 of the engine and of the framework."""
    tables = [figures["per_class"] for figures in summary["engines"].values()]
    return [
        [a["class"], a["precision"], b["precision"], a["recall"], b["recall"], a["f1"], b["f1"]]
        for a, b in zip(*tables)
    ]


def render_comparison_report(out_dir: Path) -> Path:
    """report.html of a comparison directory, from its files alone."""
    if not (out_dir / "comparison.json").exists() and (out_dir / "parity.json").exists():
        section = parity_section(runs.read_json(out_dir, "parity.json"))
        return build_report(
            "Parity of the NumPy engine and PyTorch", [section], out_dir / "report.html"
        )
    summary = runs.read_json(out_dir, "comparison.json")
    name = summary.get("reference_name", "PyTorch")
    sections = [
        Section(
            "Side by side",
            [
                f"<p>{html.escape(summary['note'])}</p>",
                html_table(metric_rows(summary), ["metric", "NumPy engine", name]),
            ],
        ),
        agreement_section(summary, "test images"),
        per_class_section(summary),
        figures_section(out_dir),
    ]
    parity = out_dir / "parity.json"
    if parity.exists():
        sections.append(parity_section(runs.read_json(out_dir, "parity.json")))
    return build_report(
        f"NumPy engine vs {name} on {summary['dataset']}", sections, out_dir / "report.html"
    )


def agreement_section(summary: dict[str, Any], what: str) -> Section:
    """How often the two engines predict the same class, and their largest probability gap."""
    agree = summary["agreement"]
    rows = [
        [f"{what} predicted the same", agree["same_prediction_share"]],
        ["largest difference of an output probability", agree["max_abs_prob_diff"]],
    ]
    return Section("Agreement", [html_table(rows, ["measure", "value"])])


def per_class_section(summary: dict[str, Any]) -> Section:
    """Precision, recall and F1 of each class, the engine beside the reference."""
    ref = summary.get("reference", "torch")
    columns = ["class", "precision numpy", f"precision {ref}", "recall numpy", f"recall {ref}"]
    columns += ["F1 numpy", f"F1 {ref}"]
    return Section("Per class", [html_table(per_class_rows(summary), columns)])


def figures_section(out_dir: Path) -> Section:
    """The comparison figures that exist in out_dir/figures."""
    figures = out_dir / "figures"
    return Section(
        "Figures",
        figures=[
            ReportFigure(figures / n, c)
            for n, c in COMPARE_FIGURES.items()
            if (figures / n).exists()
        ],
    )


def parity_section(parity: dict[str, Any]) -> Section:
    rows = [
        [
            r["quantity"],
            r["layer"] or "-",
            r["param"] or "-",
            r["steps"],
            r["max_abs"],
            r["max_rel"],
        ]
        for r in parity["rows"]
    ]
    text = (
        f"<p>Dropout off, identical weights, {parity['batch_size']} images per batch, float32. "
        f"Largest difference of any quantity: {parity['max_abs']:.3g}.</p>"
    )
    return Section(
        "Parity, layer by layer",
        [text, html_table(rows, ["quantity", "layer", "param", "steps", "max abs", "max rel"])],
    )


def parity(
    settings: TrainSettings,
    out_dir: Path,
    steps: int = 100,
    images: int = 256,
    data: PreparedData | None = None,
) -> dict[str, Any]:
    """Forward, loss, gradients and weights after ``steps`` steps of both engines, per layer."""
    from .reference.torch import parity_report

    run = prepare(settings, data)
    data = run.data
    rows = parity_report(
        run.model,
        data.x_train[:images],
        to_categorical(data.y_train[:images], data.num_classes),
        steps=steps,
        batch_size=settings.batch_size,
    )
    result = {
        "kind": "parity",
        "rows": rows,
        "steps": steps,
        "batch_size": settings.batch_size,
        "images": images,
        "max_abs": max(r["max_abs"] for r in rows),
    }
    out_dir = runs.prepare_run_dir(out_dir)
    runs.write_json(out_dir / "parity.json", result)
    render_comparison_report(out_dir)
    return result
