"""How a classifier did on the test set: confusion matrices, ROC curves (one-vs-rest, micro and
macro averages, several engines compared), precision/recall/F1 per class, and the most
confident mistakes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage
from sklearn.metrics import auc, roc_curve

from cnnlab.metrics import as_probability_matrix

from .base import (
    _class_colors,
    _new_figure,
    _notice_figure,
    _set_class_ticks,
    _side_colorbar,
    display_text,
    figure_or_saved,
    fixed_figure,
)
from .mosaic import _label_tiles, _mosaic_figure, tile_colors

RocCurve = tuple[np.ndarray, np.ndarray, float]


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
