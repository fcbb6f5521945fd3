"""Figures for runs, comparisons and datasets, written as PNG files (matplotlib, "Agg").

Every public ``plot_*`` function takes plain arrays, writes one PNG at ``path`` (creating
its folder) and returns the ``Path``; without a ``path`` it writes nothing and returns the
figure, which a Jupyter notebook shows inline (``NotebookFigure``). Each is backed by a
``_figure_*`` helper that builds and returns the matplotlib ``Figure`` without saving it, so
tests can inspect the data behind a figure (bar heights, the heatmap array, legend labels).

Figures are built with the object-oriented ``matplotlib.figure.Figure`` API rather than
pyplot, so nothing accumulates in pyplot's global list of open figures.

Figures cost little (issue 16): a grid of images (filters, feature maps, mistakes, samples) is
one mosaic image on one axes, never one axes per tile; figures of a run are laid out once by
hand (``fixed_figure``) instead of by constrained layout, and ``save_figure``'s tight bounding
box takes in any label longer than its margin. Constrained layout is kept only where panels
must make room for labels of unknown length between them (confusion matrices side by side)
and for the function-approximation figures.
"""

from __future__ import annotations

import io
import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib

if (
    "ipykernel" not in sys.modules
):  # in Jupyter the notebook's inline backend stays, for the user's pyplot
    matplotlib.use("Agg")

import numpy as np  # noqa: E402
from matplotlib.axes import Axes  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage
from sklearn.metrics import auc, roc_curve  # noqa: E402

from cnnlab.engine.saving import write_bytes  # noqa: E402
from cnnlab.metrics import as_probability_matrix  # noqa: E402

DPI = 100
MAX_INCHES = (
    24.0  # per side: 2,400 pixels; matplotlib resamples an image into float64 RGBA of that size
)
NOT_CURVES = frozenset({"epoch", "seconds", "lr", "learning_rate"})

History = Mapping[str, Sequence[float]]
RocCurve = tuple[np.ndarray, np.ndarray, float]


# --------------------------------------------------------------------------- saving


def save_figure(fig: Figure, path: str | Path) -> Path:
    """Write ``fig`` as a PNG at ``path`` (folders created), release it and return the path.

    The PNG is rendered in memory and written by ``atomic_write``: no partial file, and a
    symbolic link at ``path`` is refused, never written through."""
    target = Path(path)
    if target.parent.is_symlink():  # a planted figures/ link would take every figure elsewhere
        raise ValueError(
            f"{target.parent} is a symbolic link; cnnlab writes figures only into a real folder"
        )
    target.parent.mkdir(parents=True, exist_ok=True)
    width, height = (
        fig.get_size_inches()
    )  # a figure grown per class stays within MAX_INCHES (memory)
    fig.set_size_inches(min(width, MAX_INCHES), min(height, MAX_INCHES))
    buffer = io.BytesIO()
    fig.savefig(buffer, dpi=DPI, bbox_inches="tight", format="png")
    fig.clear()
    write_bytes(target, buffer.getvalue())
    return target


class NotebookFigure(Figure):
    """A ``matplotlib.figure.Figure`` that Jupyter shows inline: IPython's display calls
    ``_repr_png_`` (a figure made outside pyplot has no backend to show it; matplotlib-inline's
    formatter, when active, takes precedence and draws the same PNG)."""

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        self.savefig(buffer, dpi=DPI, bbox_inches="tight", format="png")
        return buffer.getvalue()


def figure_or_saved(fig: Figure, path: str | Path | None) -> Figure | Path:
    """``fig`` written at ``path`` by ``save_figure`` (its path returned), or ``fig`` itself when
    ``path`` is None: the notebook form of every ``plot_*`` function."""
    return fig if path is None else save_figure(fig, path)


def _new_figure(width: float, height: float) -> Figure:
    """A figure of ``width`` x ``height`` inches with constrained layout (no overlaps)."""
    return NotebookFigure(figsize=(width, height), dpi=DPI, layout="constrained")


def fixed_figure(
    width: float,
    height: float,
    margins: tuple[float, float, float, float] = (0.8, 0.3, 0.6, 0.5),
    columns: int = 1,
    gap: float = 0.9,
) -> Figure:
    """A figure of ``width`` x ``height`` inches laid out once by hand: ``margins`` (left, right,
    bottom, top) and the ``gap`` between ``columns`` of subplots in inches, no layout engine pass.

    ``save_figure``'s tight bounding box still takes in any label longer than its margin."""
    left, right, bottom, top = margins
    panel = (width - left - right - (columns - 1) * gap) / columns
    fig = NotebookFigure(figsize=(width, height), dpi=DPI)
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        wspace=gap / panel,
    )
    return fig


def _side_colorbar(fig: Figure, image: AxesImage, ax: Axes, label: str = "") -> None:
    """A colour bar 0.15 inch right of ``ax`` in a fixed layout (0.12 inch wide, 80% of its height),
    ``ax`` keeping its size; the margin or gap on its right must hold the bar's ticks and label."""
    box = ax.get_position()
    width = fig.get_size_inches()[0]
    cax = fig.add_axes(
        (box.x1 + 0.15 / width, box.y0 + 0.1 * box.height, 0.12 / width, 0.8 * box.height)
    )
    fig.colorbar(image, cax=cax, label=label)


def display_text(value: object, limit: int = 40) -> str:
    """User text (a class name, a run name) as a figure shows it: literally ('$' escaped, so no
    mathtext is parsed), on one line, shortened to ``limit`` characters with an ellipsis."""
    text = " ".join(str(value).splitlines())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def _set_class_ticks(ax: Axes, names: Sequence[object], rotate_longer_than: int = 2) -> None:
    """Class names as x tick labels, slanted when any is longer than a few characters."""
    labels = [display_text(name) for name in names]
    slanted = max((len(label) for label in labels), default=0) > rotate_longer_than
    ax.set_xticks(
        np.arange(len(labels)),
        labels,
        rotation=45 if slanted else 0,
        ha="right" if slanted else "center",
    )


def _class_colors(n_classes: int) -> list[tuple[float, float, float, float]]:
    """Distinct colours for up to 20 classes (tab10 or tab20), cycling beyond."""
    cmap = matplotlib.colormaps["tab10" if n_classes <= 10 else "tab20"]
    return [cmap(k % cmap.N) for k in range(n_classes)]


# --------------------------------------------------------------------------- history


def history_metric_names(history: History) -> list[str]:
    """The metrics a history plot shows, ``loss`` first: non-empty keys without ``val_``."""
    names = [key for key in history if not key.startswith("val_") and key not in NOT_CURVES]
    names = [key for key in names if len(history[key]) > 0]
    return sorted(names, key=lambda key: (key != "loss", names.index(key)))


def _plot_metric(ax: Axes, history: History, metric: str, label: str = "", **style: object) -> None:
    """Draw ``metric`` (solid) and ``val_metric`` (dashed) against epochs numbered from 1."""
    for key, line_style, suffix in ((metric, "-", "train"), (f"val_{metric}", "--", "validation")):
        values = history.get(key)
        if values is None or len(values) == 0:
            continue
        epochs = np.arange(1, len(values) + 1)
        name = display_text(f"{label} {suffix}".strip(), 60)
        ax.plot(epochs, values, line_style, marker="o", markersize=3, label=name, **style)


def _style_history_axes(ax: Axes, metric: str) -> None:
    """Title, axis labels, integer epoch ticks and a legend for one history panel."""
    ax.set_title(display_text(metric.replace("_", " ").capitalize(), 60))
    ax.set_xlabel("Epoch")
    ax.set_ylabel(metric)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)


def _figure_history(history: History, title: str = "Training history") -> Figure:
    """One panel per metric (loss first), training and validation curves per epoch."""
    metrics = history_metric_names(history)
    if not metrics:
        raise ValueError(f"the history holds no per-epoch values to plot; keys: {sorted(history)}.")
    fig = fixed_figure(4.5 * len(metrics), 3.6, (0.8, 0.2, 0.6, 0.75), columns=len(metrics))
    for ax, metric in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        _plot_metric(ax, history, metric)
        _style_history_axes(ax, metric)
    fig.suptitle(display_text(title, 100))
    return fig


def plot_history(
    history: History, path: str | Path | None = None, title: str = "Training history"
) -> Figure | Path:
    """Loss and accuracy (and their ``val_`` versions when present) per epoch, from 1.

    ``history`` is Keras's ``history.history``: ``{"loss": [...], "val_loss": [...], ...}``.
    A history with only ``loss`` (regression) gives a single panel.
    """
    return figure_or_saved(_figure_history(history, title), path)


def _figure_history_compare(histories: Mapping[str, History], title: str) -> Figure:
    """The runs' curves on shared panels, one colour per run."""
    metrics = list(dict.fromkeys(m for h in histories.values() for m in history_metric_names(h)))
    if not metrics:
        raise ValueError("none of the histories holds per-epoch values to plot.")
    metrics.sort(key=lambda key: key != "loss")
    fig = fixed_figure(4.5 * len(metrics), 3.6, (0.8, 0.2, 0.6, 0.75), columns=len(metrics))
    colors = _class_colors(len(histories))
    for ax, metric in zip(fig.subplots(1, len(metrics), squeeze=False)[0], metrics):
        for color, (run, history) in zip(colors, histories.items()):
            _plot_metric(ax, history, metric, label=run, color=color)
        _style_history_axes(ax, metric)
    fig.suptitle(display_text(title, 100))
    return fig


def plot_history_compare(
    histories: Mapping[str, History],
    path: str | Path | None = None,
    title: str = "Training history by run",
) -> Figure | Path:
    """Several runs' histories on the same axes, e.g. ``{"numpy": h1, "torch": h2}``."""
    return figure_or_saved(_figure_history_compare(histories, title), path)


# --------------------------------------------------------------------------- confusion matrix


def _normalise_rows(cm: np.ndarray) -> np.ndarray:
    """Each row divided by its sum (the share of each true class); empty rows stay 0."""
    totals = cm.sum(axis=1, keepdims=True)
    return np.divide(cm, totals, out=np.zeros_like(cm, dtype=np.float64), where=totals > 0)


def _annotate_cells(ax: Axes, values: np.ndarray, normalize: bool) -> None:
    """Write each cell's count (or fraction) in it, white on dark cells."""
    n_classes = values.shape[0]
    if n_classes > 20:
        return
    threshold = values.max() / 2 if values.size and values.max() > 0 else 1
    fontsize = 9 if n_classes <= 10 else 6
    for (row, col), value in np.ndenumerate(values):
        text = f"{value:.2f}" if normalize else f"{int(value)}"
        color = "white" if value > threshold else "black"
        ax.text(col, row, text, ha="center", va="center", color=color, fontsize=fontsize)


def _colorbar_label(normalize: bool) -> str:
    return "share of true class" if normalize else "images"


def _draw_confusion(
    ax: Axes, cm: np.ndarray, class_names: Sequence[str], normalize: bool, title: str
) -> AxesImage:
    """An annotated heatmap: true classes on rows, predicted classes on columns; returns the image
    (its colour bar is the caller's: beside a fixed layout's axes, or placed by the layout
    engine)."""
    values = _normalise_rows(cm) if normalize else cm
    image = ax.imshow(values, cmap="Blues", vmin=0, vmax=1 if normalize else None)
    _annotate_cells(ax, values, normalize)
    _set_class_ticks(ax, class_names)
    ax.set_yticks(np.arange(len(class_names)), [display_text(name) for name in class_names])
    ax.set_xlabel("Predicted class")
    ax.set_ylabel("True class")
    ax.set_title(display_text(title, 100))
    return image


def _check_confusion(
    cm: np.ndarray | Sequence[Sequence[int]], class_names: Sequence[str]
) -> np.ndarray:
    """The matrix as an array, checked to be square with one row per class name."""
    matrix = np.asarray(cm)
    if matrix.ndim != 2 or matrix.shape != (len(class_names), len(class_names)):
        raise ValueError(
            f"the confusion matrix must be {len(class_names)} x {len(class_names)} "
            f"(one row per class name); received shape {matrix.shape}."
        )
    return matrix


def _figure_confusion_matrix(
    cm: np.ndarray, class_names: Sequence[str], normalize: bool = False, title: str | None = None
) -> Figure:
    """A single annotated confusion-matrix heatmap."""
    matrix = _check_confusion(cm, class_names)
    size = max(4.5, 0.45 * len(class_names) + 2.5)
    fig = fixed_figure(
        size + 0.7, size, (0.8, 1.0, 0.7, 0.4)
    )  # a square heatmap, its colour bar on the right
    default = "Confusion matrix (row-normalised)" if normalize else "Confusion matrix"
    ax = fig.subplots()
    image = _draw_confusion(ax, matrix, class_names, normalize, title or default)
    _side_colorbar(fig, image, ax, _colorbar_label(normalize))
    return fig


def plot_confusion_matrix(
    cm: np.ndarray | Sequence[Sequence[int]],
    class_names: Sequence[str],
    path: str | Path | None = None,
    normalize: bool = False,
    title: str | None = None,
) -> Figure | Path:
    """An annotated heatmap of a ``K x K`` confusion matrix (true rows, predicted columns).

    ``normalize=True`` shows each row as fractions of its true class (recall on the diagonal).
    """
    figure = _figure_confusion_matrix(np.asarray(cm), class_names, normalize, title)
    return figure_or_saved(figure, path)


def _figure_confusion_matrices(
    cms: Mapping[str, np.ndarray], class_names: Sequence[str], normalize: bool = False
) -> Figure:
    """One confusion matrix per engine, side by side."""
    matrices = {name: _check_confusion(cm, class_names) for name, cm in cms.items()}
    if not matrices:
        raise ValueError("no confusion matrices were given.")
    size = max(4.5, 0.45 * len(class_names) + 2.5)
    fig = _new_figure(
        (size + 1.0) * len(matrices), size
    )  # the layout engine fits class names of any length
    axes = fig.subplots(1, len(matrices), squeeze=False)[0]
    for ax, (name, matrix) in zip(axes, matrices.items()):
        image = _draw_confusion(ax, matrix, class_names, normalize, name)
        fig.colorbar(image, ax=ax, shrink=0.8, label=_colorbar_label(normalize))
    return fig


def plot_confusion_matrices(
    cms: Mapping[str, np.ndarray | Sequence[Sequence[int]]],
    class_names: Sequence[str],
    path: str | Path | None = None,
    normalize: bool = False,
) -> Figure | Path:
    """Confusion matrices side by side, one per engine, e.g. ``{"numpy": cm1, "torch": cm2}``."""
    arrays = {name: np.asarray(cm) for name, cm in cms.items()}
    return figure_or_saved(_figure_confusion_matrices(arrays, class_names, normalize), path)


# --------------------------------------------------------------------------- ROC


def one_vs_rest_curves(y_true: np.ndarray, y_prob: np.ndarray) -> dict[int, RocCurve]:
    """ROC curve ``(fpr, tpr, auc)`` of each class against the rest (``roc_curve``, ``auc``).

    Classes that never occur (or always occur) in ``y_true`` have no curve. With two
    classes only the positive class (1) is returned.
    """
    probs = as_probability_matrix(y_prob)
    labels = np.asarray(y_true).reshape(-1)
    classes = [1] if probs.shape[1] == 2 else range(probs.shape[1])
    curves = {}
    for k in classes:
        positives = labels == k
        if positives.all() or not positives.any():
            continue
        fpr, tpr, _ = roc_curve(positives, probs[:, k])
        curves[k] = (fpr, tpr, float(auc(fpr, tpr)))
    return curves


def micro_average_curve(y_true: np.ndarray, y_prob: np.ndarray) -> RocCurve:
    """Micro-average ROC: every (sample, class) pair pooled into one binary problem."""
    probs = as_probability_matrix(y_prob)
    one_hot = np.eye(probs.shape[1])[np.asarray(y_true).reshape(-1)]
    fpr, tpr, _ = roc_curve(one_hot.ravel(), probs.ravel())
    return fpr, tpr, float(auc(fpr, tpr))


def macro_average_curve(curves: Mapping[int, RocCurve]) -> RocCurve:
    """Macro-average ROC: per-class TPRs interpolated on a shared FPR grid and averaged.

    The AUC reported is the mean of the per-class AUCs, which is exactly scikit-learn's
    ``roc_auc_score(..., multi_class="ovr", average="macro")``.
    """
    grid = np.unique(np.concatenate([fpr for fpr, _, _ in curves.values()]))
    mean_tpr = np.mean([np.interp(grid, fpr, tpr) for fpr, tpr, _ in curves.values()], axis=0)
    return grid, mean_tpr, float(np.mean([score for _, _, score in curves.values()]))


def _auc_label(name: object, score: float) -> str:
    """Legend text of one ROC curve: "name (AUC = 0.987)"."""
    return f"{display_text(name)} (AUC = {score:.3f})"


def _style_roc_axes(ax: Axes, title: str) -> None:
    """Chance diagonal, labels, square limits and a legend outside the plot."""
    ax.plot([0, 1], [0, 1], ":", color="grey", label="chance (AUC = 0.5)")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("False positive rate")
    ax.set_ylabel("True positive rate")
    ax.set_title(display_text(title, 100))
    ax.grid(alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize=8)


def _figure_roc(
    y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str], title: str
) -> Figure:
    """Per-class one-vs-rest ROC curves plus micro and macro averages (multi-class)."""
    probs = as_probability_matrix(y_prob)
    curves = one_vs_rest_curves(y_true, probs)
    if not curves:
        raise ValueError("ROC curves need positive and negative examples of a class in y_true.")
    fig = fixed_figure(7.5, 5.0, (0.8, 2.5, 0.6, 0.45))
    ax = fig.subplots()
    colors = _class_colors(probs.shape[1])
    for k, (fpr, tpr, score) in curves.items():
        ax.plot(fpr, tpr, color=colors[k], linewidth=1.2, label=_auc_label(class_names[k], score))
    if probs.shape[1] > 2:
        fpr, tpr, score = micro_average_curve(y_true, probs)
        ax.plot(
            fpr, tpr, "--", color="black", linewidth=2, label=_auc_label("micro-average", score)
        )
        fpr, tpr, score = macro_average_curve(curves)
        ax.plot(fpr, tpr, color="deeppink", linewidth=2, label=_auc_label("macro-average", score))
    _style_roc_axes(ax, title)
    return fig


def plot_roc(
    y_true: np.ndarray,
    y_prob: np.ndarray,
    class_names: Sequence[str],
    path: str | Path | None = None,
    title: str = "ROC curves (one-vs-rest)",
) -> Figure | Path:
    """One-vs-rest ROC curves with their AUC in the legend, plus micro and macro averages.

    ``y_true``: ``(N,)`` labels; ``y_prob``: ``(N, K)`` probabilities. With two classes a
    single curve for the positive class (column 1) is drawn.
    """
    return figure_or_saved(_figure_roc(y_true, y_prob, class_names, title), path)


def _figure_roc_compare(curves: Mapping[str, tuple[np.ndarray, np.ndarray]], title: str) -> Figure:
    """Macro (solid) and micro (dashed) average ROC curves of several engines."""
    fig = fixed_figure(7.5, 5.0, (0.8, 2.5, 0.6, 0.45))
    ax = fig.subplots()
    for color, (engine, (y_true, y_prob)) in zip(_class_colors(len(curves)), curves.items()):
        probs = as_probability_matrix(y_prob)
        per_class = one_vs_rest_curves(y_true, probs)
        if probs.shape[1] == 2:
            fpr, tpr, score = per_class[1]
            ax.plot(fpr, tpr, color=color, label=_auc_label(engine, score))
            continue
        fpr, tpr, score = macro_average_curve(per_class)
        ax.plot(fpr, tpr, "-", color=color, label=_auc_label(f"{engine} macro", score))
        fpr, tpr, score = micro_average_curve(y_true, probs)
        ax.plot(fpr, tpr, "--", color=color, label=_auc_label(f"{engine} micro", score))
    _style_roc_axes(ax, title)
    return fig


def plot_roc_compare(
    curves: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path | None = None,
    title: str = "ROC curves by engine",
) -> Figure | Path:
    """Average ROC curves of several engines on one plot: ``{"numpy": (y_true, y_prob), ...}``."""
    return figure_or_saved(_figure_roc_compare(curves, title), path)


# --------------------------------------------------------------------------- per-class scores


def _figure_per_class(per_class: Sequence[Mapping[str, object]], title: str) -> Figure:
    """Grouped bars: precision, recall and F1 for each class."""
    names = [str(row["class"]) for row in per_class]
    fig = fixed_figure(max(6.0, 0.7 * len(names) + 2.5), 4.0, (0.75, 1.2, 0.7, 0.45))
    ax = fig.subplots()
    positions = np.arange(len(names))
    width = 0.27
    for offset, score in zip((-width, 0.0, width), ("precision", "recall", "f1")):
        heights = [float(row[score]) for row in per_class]
        ax.bar(positions + offset, heights, width, label=score if score != "f1" else "F1")
    _set_class_ticks(ax, names, rotate_longer_than=3)
    ax.set_ylim(0, 1.05)
    ax.set_xlabel("Class")
    ax.set_ylabel("Score")
    ax.set_title(display_text(title, 100))
    ax.grid(axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=8)
    return fig


def plot_per_class(
    per_class: Sequence[Mapping[str, object]],
    path: str | Path | None = None,
    title: str = "Precision, recall and F1 per class",
) -> Figure | Path:
    """Grouped bars of precision, recall and F1 per class.

    ``per_class`` is the list of ``classification_metrics(...)["per_class"]``:
    dicts with ``class``, ``precision``, ``recall`` and ``f1``.
    """
    return figure_or_saved(_figure_per_class(per_class, title), path)


# --------------------------------------------------------------------------- images


def _display_image(image: np.ndarray) -> tuple[np.ndarray, str | None]:
    """An image ready for ``imshow`` and its colour map: grey for one channel, RGB for three.

    ``(H, W)`` and ``(H, W, 1)`` become grey ``(H, W)``; ``(H, W, 3)`` is scaled to 0..1.
    Other channel counts are averaged into grey.
    """
    array = np.asarray(image, dtype=np.float64)
    if array.ndim == 3 and array.shape[2] == 3:
        low, high = array.min(), array.max()
        return (array - low) / (high - low) if high > low else np.zeros_like(array), None
    if array.ndim == 3:
        array = array.mean(axis=2)
    if array.ndim != 2:
        raise ValueError(f"an image must be (H, W) or (H, W, C); received shape {array.shape}.")
    return array, "gray"


def _show_image(ax: Axes, image: np.ndarray, **style: object) -> None:
    """``imshow`` one image in grey or colour without ticks or frame."""
    array, cmap = _display_image(image)
    ax.imshow(array, cmap=cmap, **style)
    ax.set_axis_off()


# One image per grid: tiles are coloured one by one and laid into a single RGBA mosaic shown by
# one ``imshow``, labels drawn as text at the tiles (data coordinates are the mosaic's pixels).
# A figure of 32 filters is then one axes instead of 32, and needs no layout engine.


@dataclass(frozen=True)
class TileLayout:
    """Where tile ``index`` lies in a mosaic: ``n_cols`` tiles a row, each ``size`` (rows, columns)
    pixels, ``gaps`` (between columns, above each row) transparent pixels."""

    n_cols: int
    size: tuple[int, int]
    gaps: tuple[int, int]

    def origin(self, index: int) -> tuple[int, int]:
        """Pixel row and column of the tile's upper-left corner."""
        row, col = divmod(index, self.n_cols)
        return row * (self.gaps[1] + self.size[0]) + self.gaps[1], col * (
            self.size[1] + self.gaps[0]
        )

    def tile(self, mosaic: np.ndarray, index: int) -> np.ndarray:
        """The pixels of tile ``index`` cut out of ``mosaic``."""
        top, left = self.origin(index)
        return mosaic[top : top + self.size[0], left : left + self.size[1]]


def tile_colors(tile: np.ndarray, cmap: str = "gray") -> np.ndarray:
    """One tile as RGBA ``(h, w, 4)``, scaled to its own range as ``imshow`` shows an image alone.

    ``(h, w)``: through ``cmap`` (a constant tile takes the colour map's lowest colour, NaN is
    transparent); ``(h, w, 3)``: stretched to 0..1 as RGB; other channel counts averaged into
    grey."""
    array, grey = _display_image(tile)
    if grey is None:
        return np.concatenate([array, np.ones((*array.shape[:2], 1))], axis=2)
    finite = array[np.isfinite(array)]
    low, high = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
    scaled = (
        (array - low) / (high - low) if high > low else np.where(np.isfinite(array), 0.0, np.nan)
    )
    return matplotlib.colormaps[cmap](scaled)


def _mosaic(tiles: Sequence[np.ndarray], layout: TileLayout) -> np.ndarray:
    """RGBA tiles of one size laid out as ``layout`` says, transparent between them.

    # tiles: n x (h, w, 4) -> (n_rows * (gap_y + h), n_cols * (w + gap_x) - gap_x, 4)"""
    (h, w), (gap_x, gap_y) = layout.size, layout.gaps
    n_rows = math.ceil(len(tiles) / layout.n_cols)
    mosaic = np.zeros((n_rows * (gap_y + h), layout.n_cols * (w + gap_x) - gap_x, 4))
    for index, tile in enumerate(tiles):
        top, left = layout.origin(index)
        mosaic[top : top + h, left : left + w] = tile
    return mosaic


def _mosaic_figure(
    tiles: Sequence[np.ndarray],
    n_cols: int,
    tile_inches: float,
    band_inches: float,
    gap_inches: float = 0.1,
    left_inches: float = 0.1,
) -> tuple[Figure, Axes, TileLayout]:
    """A fixed-layout figure showing RGBA ``tiles`` as one image: ``tile_inches`` per tile, a band
    of ``band_inches`` above each row for labels, ``gap_inches`` between columns, ``left_inches``
    for row labels and room above for a title. Returns the figure, its axes and the layout."""
    h, w = tiles[0].shape[:2]
    scale = tile_inches / max(h, w)  # inches per mosaic pixel
    gaps = max(1, round(gap_inches / scale)), max(1, math.ceil(band_inches / scale))
    layout = TileLayout(min(n_cols, len(tiles)), (h, w), gaps)
    mosaic = _mosaic(tiles, layout)
    width, height = mosaic.shape[1] * scale, mosaic.shape[0] * scale
    fig = NotebookFigure(figsize=(left_inches + width + 0.1, height + 0.45), dpi=DPI)
    size = fig.get_size_inches()
    ax = fig.add_axes((left_inches / size[0], 0.1 / size[1], width / size[0], height / size[1]))
    ax.imshow(mosaic)  # interpolation as for one image alone: nearest when enlarged 3x or more
    ax.set_axis_off()
    return fig, ax, layout


def _label_tiles(ax: Axes, labels: Sequence[str], layout: TileLayout, fontsize: float) -> None:
    """Each label centred in the band above its tile."""
    for index, label in enumerate(labels):
        top, left = layout.origin(index)
        ax.text(
            left + (layout.size[1] - 1) / 2,
            top - 0.5 - 0.15 * layout.gaps[1],
            label,
            ha="center",
            va="bottom",
            fontsize=fontsize,
        )


def _sample_indices(y: np.ndarray, n_classes: int, per_class: int, seed: int) -> list[np.ndarray]:
    """For each class, up to ``per_class`` random indices of its images (seeded)."""
    rng = np.random.default_rng(seed)
    chosen = []
    for k in range(n_classes):
        members = np.flatnonzero(y == k)
        chosen.append(rng.choice(members, size=min(per_class, members.size), replace=False))
    return chosen


def _figure_sample_grid(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], per_class: int, seed: int
) -> Figure:
    """Rows are classes, columns random images of that class (each scaled to its own range); class
    name on the left; all in one image."""
    labels = np.asarray(y).reshape(-1)
    chosen = _sample_indices(labels, len(class_names), per_class, seed)
    blank = np.zeros((*np.shape(x)[1:3], 4))
    tiles = [[tile_colors(x[index]) for index in indices] for indices in chosen]
    tiles = [tile for row in tiles for tile in row + [blank] * (per_class - len(row))]
    fig, ax, layout = _mosaic_figure(
        tiles, per_class, tile_inches=0.8, band_inches=0.1, left_inches=1.0
    )
    for row, name in enumerate(class_names):
        top, _ = layout.origin(row * per_class)
        ax.text(
            -layout.gaps[0] - 0.5,
            top + (layout.size[0] - 1) / 2,
            display_text(name),
            ha="right",
            va="center",
            fontsize=10,
        )
    fig.suptitle(f"{per_class} random samples per class")
    return fig


def plot_sample_grid(
    x: np.ndarray,
    y: np.ndarray,
    class_names: Sequence[str],
    path: str | Path | None = None,
    per_class: int = 5,
    seed: int = 0,
) -> Figure | Path:
    """A grid of random images: one row per class (named on the left), ``per_class`` columns.

    ``x``: ``(N, H, W)`` or ``(N, H, W, C)``; ``y``: ``(N,)`` integer labels. The draw is
    seeded, so the same ``seed`` gives the same grid.
    """
    return figure_or_saved(_figure_sample_grid(x, y, class_names, per_class, seed), path)


def _count_bars(ax: Axes, counts: np.ndarray, class_names: Sequence[str], title: str) -> None:
    """One bar per class with its count written above it."""
    bars = ax.bar(np.arange(len(counts)), counts, color="steelblue")
    ax.bar_label(bars, fontsize=7, padding=2)
    _set_class_ticks(ax, class_names, rotate_longer_than=3)
    ax.set_title(display_text(title, 100))
    ax.set_xlabel("Class")
    ax.set_ylabel("Number of images")
    ax.margins(y=0.12)


def _figure_class_distribution(
    y_train: np.ndarray, y_test: np.ndarray | None, class_names: Sequence[str]
) -> Figure:
    """Bar charts of images per class, for the train set and (when given) the test set."""
    sets = {"train": y_train} if y_test is None else {"train": y_train, "test": y_test}
    fig = fixed_figure(
        max(5.0, 0.5 * len(class_names) + 2.0) * len(sets),
        3.8,
        (0.8, 0.2, 0.7, 0.45),
        columns=len(sets),
        gap=1.0,
    )
    for ax, (name, labels) in zip(fig.subplots(1, len(sets), squeeze=False)[0], sets.items()):
        counts = np.bincount(np.asarray(labels).reshape(-1), minlength=len(class_names))
        _count_bars(ax, counts, class_names, f"Distribution of the {name} dataset")
    return fig


def plot_class_distribution(
    y_train: np.ndarray,
    y_test: np.ndarray | None,
    class_names: Sequence[str],
    path: str | Path | None = None,
) -> Figure | Path:
    """ "Distribution of the train dataset" (images per class) and the same for the test set."""
    return figure_or_saved(_figure_class_distribution(y_train, y_test, class_names), path)


def _figure_pixel_histogram(x: np.ndarray, title: str) -> Figure:
    """Histogram of all pixel values on a logarithmic count axis."""
    fig = fixed_figure(6.0, 3.6, (0.8, 0.2, 0.6, 0.45))
    ax = fig.subplots()
    counts, edges = np.histogram(np.asarray(x).ravel(), bins=50)
    ax.stairs(counts, edges, fill=True, color="steelblue")
    ax.set_yscale("log")
    ax.set_xlabel("Pixel value")
    ax.set_ylabel("Number of pixels (log scale)")
    ax.set_title(display_text(title, 100))
    return fig


def plot_pixel_histogram(
    x: np.ndarray, path: str | Path | None = None, title: str = "Distribution of pixel values"
) -> Figure | Path:
    """Histogram of every pixel value in ``x`` (any shape), counts on a log scale."""
    return figure_or_saved(_figure_pixel_histogram(x, title), path)


def _figure_mean_images(x: np.ndarray, y: np.ndarray, class_names: Sequence[str]) -> Figure:
    """One tile per class: the pixel-wise mean of its images (scaled to its own range), titled
    with the class name and its count, five a row, all in one image."""
    labels = np.asarray(y).reshape(-1)
    images = np.asarray(x)
    counts = [int((labels == k).sum()) for k in range(len(class_names))]
    tiles = [
        tile_colors(images[labels == k].mean(axis=0))
        if count
        else np.zeros((*images.shape[1:3], 4))
        for k, count in enumerate(counts)
    ]
    fig, ax, layout = _mosaic_figure(tiles, 5, tile_inches=1.2, band_inches=0.25, gap_inches=0.3)
    titles = [f"{display_text(name, 20)} ({count})" for name, count in zip(class_names, counts)]
    _label_tiles(ax, titles, layout, fontsize=9)
    fig.suptitle("Mean image per class (number of images)")
    return fig


def plot_mean_images(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], path: str | Path | None = None
) -> Figure | Path:
    """The average image of each class, titled with the class name and its image count."""
    return figure_or_saved(_figure_mean_images(x, y, class_names), path)


# --------------------------------------------------------------------------- mistakes


def confident_mistake_indices(y_true: np.ndarray, y_prob: np.ndarray, n: int) -> np.ndarray:
    """Indices of the (at most ``n``) wrong predictions with the highest predicted probability."""
    probs = as_probability_matrix(y_prob)
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(y_true).reshape(-1))
    confidence = probs[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")[:n]]


def _mistake_title(true_name: str, predicted_name: str, confidence: float) -> str:
    """ "true 3 / pred 5 (0.97)", broken after the "/" when the class names are long."""
    title = f"true {true_name} / pred {predicted_name} ({confidence:.2f})"
    return title.replace(" / ", " /\n") if len(title) > 24 else title


def _figure_confident_mistakes(
    x: np.ndarray, y_true: np.ndarray, y_prob: np.ndarray, class_names: Sequence[str], n: int
) -> Figure:
    """The most confidently wrong images, or a short notice when there are none."""
    probs = as_probability_matrix(y_prob)
    indices = confident_mistake_indices(y_true, probs, n)
    if indices.size == 0:
        return _notice_figure("No mistakes: every image was classified correctly.")
    labels = np.asarray(y_true).reshape(-1)
    titles = []
    for index in indices:
        predicted = int(probs[index].argmax())
        names = (
            display_text(class_names[labels[index]], 20),
            display_text(class_names[predicted], 20),
        )
        titles.append(_mistake_title(*names, probs[index, predicted]))
    colors = [tile_colors(x[index]) for index in indices]
    fig, ax, layout = _mosaic_figure(colors, 4, tile_inches=1.45, band_inches=0.42, gap_inches=0.45)
    _label_tiles(ax, titles, layout, fontsize=8)
    fig.suptitle("Most confident mistakes")
    return fig


def _notice_figure(message: str) -> Figure:
    """A small figure that carries only a sentence (used where there is nothing to draw)."""
    fig = _new_figure(5.0, 1.2)
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, transform=ax.transAxes)
    return fig


def plot_confident_mistakes(
    x: np.ndarray,
    y_true: np.ndarray,
    y_prob: np.ndarray,
    class_names: Sequence[str],
    path: str | Path | None = None,
    n: int = 16,
) -> Figure | Path:
    """The ``n`` most confidently wrong images, titled "true 3 / pred 5 (0.97)".

    With no mistakes the figure says so instead of failing.
    """
    return figure_or_saved(_figure_confident_mistakes(x, y_true, y_prob, class_names, n), path)


# --------------------------------------------------------------------------- inside the network


def _figure_filters(kernel: np.ndarray, title: str) -> Figure:
    """One tile per filter of a ``(kh, kw, C_in, F)`` kernel, channels averaged, each scaled to its
    own range in grey and numbered; eight a row, all in one image."""
    weights = np.asarray(kernel, dtype=np.float64)
    if weights.ndim != 4:
        raise ValueError(
            f"a Conv2D kernel must be (kh, kw, C_in, F); received shape {weights.shape}."
        )
    tiles = weights.mean(axis=2)
    colors = [tile_colors(tiles[:, :, index]) for index in range(tiles.shape[2])]
    fig, ax, layout = _mosaic_figure(colors, 8, tile_inches=0.7, band_inches=0.18)
    _label_tiles(ax, [str(index) for index in range(len(colors))], layout, fontsize=7)
    fig.suptitle(display_text(title, 100))
    return fig


def plot_filters(
    kernel: np.ndarray, path: str | Path | None = None, title: str = "First-layer filters"
) -> Figure | Path:
    """The learned filters of a Conv2D kernel ``(kh, kw, C_in, F)`` as a grid of tiles.

    Each tile is one filter, averaged over its input channels when ``C_in > 1``.
    """
    return figure_or_saved(_figure_filters(kernel, title), path)


def _as_feature_map(maps: np.ndarray) -> np.ndarray:
    """A layer's output for one image as ``(H, W, C)``: a batch of one and 2-D maps accepted."""
    array = np.asarray(maps, dtype=np.float64)
    if array.ndim == 4 and array.shape[0] == 1:
        array = array[0]
    if array.ndim == 2:
        array = array[:, :, np.newaxis]
    if array.ndim != 3:
        raise ValueError(
            f"feature maps must be (H, W, C) for one image; received shape {array.shape}."
        )
    return array


def _figure_feature_maps(
    maps: Sequence[tuple[str, np.ndarray]], max_channels: int, title: str
) -> Figure:
    """One row per layer, up to ``max_channels`` channel maps per row, layer named on the left, all
    in one image: each map scaled to its own range (viridis), smaller maps enlarged (nearest) to the
    largest map's size."""
    layers = [(name, _as_feature_map(array)) for name, array in maps]
    if not layers:
        raise ValueError("no feature maps were given.")
    n_cols = min(max_channels, max(array.shape[2] for _, array in layers))
    size = max(array.shape[0] for _, array in layers), max(array.shape[1] for _, array in layers)
    tiles = [_layer_tiles(array, n_cols, size) for _, array in layers]
    fig, ax, layout = _mosaic_figure(
        [t for row in tiles for t in row], n_cols, tile_inches=0.7, band_inches=0.1, left_inches=1.3
    )
    for row, (name, array) in enumerate(layers):
        top, _ = layout.origin(row * n_cols)
        label = f"{display_text(name, 24)}\n{array.shape[0]}x{array.shape[1]}x{array.shape[2]}"
        ax.text(
            -layout.gaps[0] - 0.5,
            top + (size[0] - 1) / 2,
            label,
            ha="right",
            va="center",
            fontsize=8,
        )
    fig.suptitle(display_text(title, 100))
    return fig


def _layer_tiles(array: np.ndarray, n_cols: int, size: tuple[int, int]) -> list[np.ndarray]:
    """A row of ``n_cols`` RGBA tiles of ``size``: the first channels of ``array`` (H, W, C), then
    blanks."""
    tiles = [
        tile_colors(_resize_nearest(array[:, :, channel], size), "viridis")
        for channel in range(min(n_cols, array.shape[2]))
    ]
    return tiles + [np.zeros((*size, 4))] * (n_cols - len(tiles))


def _resize_nearest(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` (h, w) resampled to ``size`` by nearest neighbour, as ``imshow`` enlarges it."""
    rows = np.arange(size[0]) * image.shape[0] // size[0]
    cols = np.arange(size[1]) * image.shape[1] // size[1]
    return image[rows][:, cols]


def plot_feature_maps(
    maps: Sequence[tuple[str, np.ndarray]],
    path: str | Path | None = None,
    max_channels: int = 16,
    title: str = "Feature maps of one image",
) -> Figure | Path:
    """For one image, the output of each layer: one row per layer, one tile per channel.

    ``maps`` is ``[(layer_name, array (H, W, C)), ...]``; only the first ``max_channels``
    channels of a layer are drawn.
    """
    return figure_or_saved(_figure_feature_maps(maps, max_channels, title), path)


def _figure_saliency(image: np.ndarray, saliency: np.ndarray, title: str) -> Figure:
    """Three panels: the image, |gradient| as a heatmap, and the heatmap over the image."""
    heat = np.abs(np.asarray(saliency, dtype=np.float64))
    if heat.ndim == 3:
        heat = heat.max(axis=2)
    fig = fixed_figure(9.6, 3.4, (0.15, 0.15, 0.15, 0.7), columns=3, gap=0.8)
    axes = fig.subplots(1, 3)
    _show_image(axes[0], image)
    axes[0].set_title("Input")
    shown = axes[1].imshow(heat, cmap="hot")
    axes[1].set_axis_off()
    axes[1].set_title("|gradient|")
    _side_colorbar(fig, shown, axes[1])
    _show_image(axes[2], image)
    axes[2].imshow(heat, cmap="hot", alpha=0.5)
    axes[2].set_title("Overlay")
    fig.suptitle(display_text(title, 100))
    return fig


def plot_saliency(
    image: np.ndarray,
    saliency: np.ndarray,
    path: str | Path | None = None,
    title: str = "Saliency map",
) -> Figure | Path:
    """An image, the absolute gradient of the predicted score (``(H, W)``) and an overlay."""
    return figure_or_saved(_figure_saliency(image, saliency, title), path)


# --------------------------------------------------------------------------- function approximation
# Figures of ``cnnlab approx``. Fields are grids shaped like ``xx`` and ``yy`` from
# ``function2d.grid`` (rows along y, columns along x). A classification field holds labels
# 0..K-1 (truth) or probabilities (R, R, K) (prediction); a regression field holds values.

from matplotlib.colors import ListedColormap  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

BOUNDARY_COLOR = "black"


def approx_class_colors(n_classes: int) -> np.ndarray:
    """The RGBA colour of each class in every function-approximation figure, (K, 4)."""
    return np.asarray(_class_colors(n_classes))


def _extent(xx: np.ndarray, yy: np.ndarray) -> tuple[float, float, float, float]:
    return float(xx.min()), float(xx.max()), float(yy.min()), float(yy.max())


def _style_domain_axes(ax: Axes, xx: np.ndarray, yy: np.ndarray) -> None:
    """Limits of the domain, x and y labels, equal scales unless the domain is very elongated."""
    x_low, x_high, y_low, y_high = _extent(xx, yy)
    ax.set_xlim(x_low, x_high)
    ax.set_ylim(y_low, y_high)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ratio = (y_high - y_low) / (x_high - x_low)
    ax.set_aspect("equal" if 1 / 3 <= ratio <= 3 else "auto")


def _class_legend(ax: Axes, class_names: Sequence[str], extra: Sequence[object] = ()) -> None:
    """A legend with one colour patch per class (and ``extra`` handles), outside on the right."""
    colors = approx_class_colors(len(class_names))
    handles = [
        Patch(color=colors[k], label=f"class {display_text(name)}")
        for k, name in enumerate(class_names)
    ]
    ax.legend(handles=[*handles, *extra], loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize=8)


def _show_field(
    ax: Axes, xx: np.ndarray, yy: np.ndarray, image: np.ndarray, **style: object
) -> object:
    """``imshow`` a grid field over the domain (origin at the lower left)."""
    return ax.imshow(
        image, origin="lower", extent=_extent(xx, yy), interpolation="nearest", **style
    )


def _show_classes(
    ax: Axes, xx: np.ndarray, yy: np.ndarray, labels: np.ndarray, n_classes: int
) -> object:
    """A label grid in the class colours."""
    cmap = ListedColormap(approx_class_colors(n_classes))
    return _show_field(ax, xx, yy, labels, cmap=cmap, vmin=-0.5, vmax=n_classes - 0.5)


def _figure_function_field(
    xx: np.ndarray, yy: np.ndarray, truth: np.ndarray, class_names: Sequence[str], title: str
) -> Figure:
    """The function on the grid: class colours (classification) or a colour scale
    (no class names)."""
    fig = _new_figure(6.2, 4.8)
    ax = fig.subplots()
    if class_names:
        _show_classes(ax, xx, yy, truth, len(class_names))
        _class_legend(ax, class_names)
    else:
        fig.colorbar(
            _show_field(ax, xx, yy, truth, cmap="viridis"), ax=ax, shrink=0.85, label="f(x, y)"
        )
    _style_domain_axes(ax, xx, yy)
    ax.set_title(display_text(title, 100))
    return fig


def plot_function_field(
    xx: np.ndarray,
    yy: np.ndarray,
    truth: np.ndarray,
    class_names: Sequence[str],
    path: str | Path | None = None,
    title: str = "Original function",
) -> Figure | Path:
    """The function on a grid (``truth`` shaped like ``xx``): labels 0..K-1 with ``class_names``,
    or values on a colour scale when ``class_names`` is empty (regression)."""
    return figure_or_saved(_figure_function_field(xx, yy, truth, class_names, title), path)


def _marker_size(n_points: int) -> float:
    """Scatter marker area: large for a few points, 1 for tens of thousands."""
    return float(np.clip(15000.0 / max(n_points, 1), 1.0, 30.0))


def _figure_points(
    points: np.ndarray,
    values: np.ndarray,
    class_names: Sequence[str],
    title: str,
    value_range: tuple[float, float] | None = None,
    limits: tuple[float, float, float, float] | None = None,
) -> Figure:
    """Points ``(n, 2)`` coloured by class (explicit RGBA per point) or by value (regression)."""
    fig = _new_figure(6.2, 4.8)
    ax = fig.subplots()
    size = _marker_size(len(points))
    if class_names:
        colors = approx_class_colors(len(class_names))[np.asarray(values, dtype=np.int64)]
        ax.scatter(points[:, 0], points[:, 1], c=colors, s=size, linewidths=0)
        _class_legend(ax, class_names)
    else:
        low, high = value_range or (float(np.min(values)), float(np.max(values)))
        shown = ax.scatter(
            points[:, 0],
            points[:, 1],
            c=values,
            cmap="viridis",
            vmin=low,
            vmax=high,
            s=size,
            linewidths=0,
        )
        fig.colorbar(shown, ax=ax, shrink=0.85, label="value")
    ax.set_title(display_text(title, 100))
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if limits is not None:
        ax.set_xlim(limits[0], limits[1])
        ax.set_ylim(limits[2], limits[3])
    ratio = np.ptp(ax.get_ylim()) / np.ptp(ax.get_xlim())
    ax.set_aspect("equal" if 1 / 3 <= ratio <= 3 else "auto")
    return fig


def plot_points(
    points: np.ndarray,
    values: np.ndarray,
    class_names: Sequence[str],
    path: str | Path | None = None,
    title: str = "Test points",
    value_range: tuple[float, float] | None = None,
    limits: tuple[float, float, float, float] | None = None,
) -> Figure | Path:
    """A scatter of ``points`` (n, 2) coloured by label (classification, ``class_names`` given)
    or by value on a colour scale spanning ``value_range`` (regression); ``limits`` are the
    axes' (x_low, x_high, y_low, y_high), e.g. the domain."""
    return figure_or_saved(
        _figure_points(points, values, class_names, title, value_range, limits), path
    )


def _draw_true_boundary(
    ax: Axes, xx: np.ndarray, yy: np.ndarray, truth: np.ndarray, n_classes: int
) -> None:
    """Contour lines where the true class changes, or of the true values (regression)."""
    levels = np.arange(n_classes - 1) + 0.5 if n_classes else 7
    if np.ptp(truth) == 0:
        return
    ax.contour(xx, yy, truth, levels=levels, colors=BOUNDARY_COLOR, linewidths=1.0)


def _draw_prediction(
    ax: Axes,
    xx: np.ndarray,
    yy: np.ndarray,
    predicted: np.ndarray,
    truth: np.ndarray,
    n_classes: int,
) -> object:
    """The predicted field with the true boundary over it; returns the image for a colour bar.

    Binary: P(class 1) on a red-blue scale. K > 2: the predicted class's colour, faded where
    the network is unsure. Regression: the predicted value on the truth's colour scale.
    """
    if n_classes == 2:
        image = _show_field(ax, xx, yy, predicted[..., 1], cmap="RdBu_r", vmin=0.0, vmax=1.0)
    elif n_classes > 2:
        rgba = approx_class_colors(n_classes)[predicted.argmax(axis=-1)].copy()
        rgba[..., 3] = predicted.max(axis=-1)
        image = _show_field(ax, xx, yy, rgba)
    else:
        image = _show_field(
            ax, xx, yy, predicted, cmap="viridis", vmin=float(truth.min()), vmax=float(truth.max())
        )
    _draw_true_boundary(ax, xx, yy, truth, n_classes)
    _style_domain_axes(ax, xx, yy)
    return image


def _boundary_handle(n_classes: int) -> Line2D:
    label = "true decision boundary" if n_classes else "true contour lines"
    return Line2D([], [], color=BOUNDARY_COLOR, linewidth=1.0, label=label)


def _field_colorbar(fig: Figure, image: object, axes: object, class_names: Sequence[str]) -> None:
    """Colour bar of a prediction field: P(class 1), or the value; none for K > 2
    (legend instead)."""
    if len(class_names) == 2:
        fig.colorbar(
            image, ax=axes, shrink=0.85, label=f"predicted P(class {display_text(class_names[1])})"
        )
    elif not class_names:
        fig.colorbar(image, ax=axes, shrink=0.85, label="predicted value")


def _figure_prediction_field(
    xx: np.ndarray,
    yy: np.ndarray,
    predicted: np.ndarray,
    truth: np.ndarray,
    class_names: Sequence[str],
    title: str,
) -> Figure:
    """One panel: ``_draw_prediction`` with a colour bar and a legend naming the boundary."""
    fig = _new_figure(6.6, 4.8)
    ax = fig.subplots()
    image = _draw_prediction(ax, xx, yy, predicted, truth, len(class_names))
    _field_colorbar(fig, image, ax, class_names)
    if len(class_names) > 2:
        _class_legend(ax, class_names, [_boundary_handle(len(class_names))])
    else:
        ax.legend(
            handles=[_boundary_handle(len(class_names))],
            loc="upper right",
            fontsize=8,
            framealpha=0.8,
        )
    ax.set_title(display_text(title, 100))
    return fig


def plot_prediction_field(
    xx: np.ndarray,
    yy: np.ndarray,
    predicted: np.ndarray,
    truth: np.ndarray,
    class_names: Sequence[str],
    path: str | Path | None = None,
    title: str = "Predicted field and true boundary",
) -> Figure | Path:
    """The network's output on the grid with the true decision boundary (or contours) drawn over it.

    ``predicted``: probabilities (R, R, K) for classification, values (R, R) for regression;
    ``truth``: labels or values (R, R); ``class_names`` empty for regression.
    """
    return figure_or_saved(
        _figure_prediction_field(xx, yy, predicted, truth, class_names, title), path
    )


def approx_errors(predicted: np.ndarray, truth: np.ndarray, n_classes: int) -> np.ndarray:
    """Per grid point: 1.0 where the predicted class is wrong (classification), else |error|."""
    if n_classes:
        return (predicted.argmax(axis=-1) != truth).astype(np.float64)
    return np.abs(predicted - truth).astype(np.float64)


def _figure_error_map(
    xx: np.ndarray,
    yy: np.ndarray,
    predicted: np.ndarray,
    truth: np.ndarray,
    class_names: Sequence[str],
    title: str,
) -> Figure:
    """Wrong grid points in red (classification) or |error| on a heat scale (regression)."""
    n_classes = len(class_names)
    errors = approx_errors(predicted, truth, n_classes)
    fig = _new_figure(6.6, 4.8)
    ax = fig.subplots()
    if n_classes:
        _show_field(
            ax, xx, yy, errors, cmap=ListedColormap(["white", "crimson"]), vmin=0.0, vmax=1.0
        )
        _draw_true_boundary(ax, xx, yy, truth, n_classes)
        wrong = Patch(color="crimson", label=f"wrong ({errors.mean():.2%} of the grid)")
        ax.legend(
            handles=[wrong, _boundary_handle(n_classes)],
            loc="upper right",
            fontsize=8,
            framealpha=0.8,
        )
    else:
        fig.colorbar(
            _show_field(ax, xx, yy, errors, cmap="magma_r", vmin=0.0),
            ax=ax,
            shrink=0.85,
            label="|predicted - true|",
        )
    _style_domain_axes(ax, xx, yy)
    ax.set_title(display_text(title, 100))
    return fig


def plot_error_map(
    xx: np.ndarray,
    yy: np.ndarray,
    predicted: np.ndarray,
    truth: np.ndarray,
    class_names: Sequence[str],
    path: str | Path | None = None,
    title: str = "Errors on the grid",
) -> Figure | Path:
    """Where the prediction differs from the truth on the grid
    (arguments as ``plot_prediction_field``)."""
    return figure_or_saved(_figure_error_map(xx, yy, predicted, truth, class_names, title), path)


def _snapshot_title(epoch: int) -> str:
    return "before training" if epoch == 0 else f"after epoch {epoch}"


def _figure_boundary_snapshots(
    xx: np.ndarray,
    yy: np.ndarray,
    snapshots: Sequence[tuple[int, np.ndarray]],
    truth: np.ndarray,
    class_names: Sequence[str],
    title: str,
) -> Figure:
    """One panel per (epoch, predicted field), in rows of at most 3, sharing one colour bar."""
    if not snapshots:
        raise ValueError("no snapshots to draw: record the predicted field at one epoch at least.")
    n_rows = math.ceil(len(snapshots) / 3)
    n_cols = math.ceil(len(snapshots) / n_rows)
    fig = _new_figure(3.4 * n_cols + 1.2, 3.3 * n_rows + 0.4)
    axes = fig.subplots(n_rows, n_cols, squeeze=False).ravel()
    for ax in axes[len(snapshots) :]:
        ax.set_axis_off()
    for ax, (epoch, predicted) in zip(axes, snapshots):
        image = _draw_prediction(ax, xx, yy, predicted, truth, len(class_names))
        ax.set_title(_snapshot_title(epoch), fontsize=10)
    _field_colorbar(fig, image, list(axes[: len(snapshots)]), class_names)
    fig.suptitle(display_text(title, 100))
    return fig


def plot_boundary_snapshots(
    xx: np.ndarray,
    yy: np.ndarray,
    snapshots: Sequence[tuple[int, np.ndarray]],
    truth: np.ndarray,
    class_names: Sequence[str],
    path: str | Path | None = None,
    title: str = "The decision boundary during training",
) -> Figure | Path:
    """A strip of the predicted field at several epochs (epoch 0: before training), true boundary
    over each."""
    return figure_or_saved(
        _figure_boundary_snapshots(xx, yy, snapshots, truth, class_names, title), path
    )
