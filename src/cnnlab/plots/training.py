"""Training history: loss and metrics per epoch, of one run or of several on shared panels.

A history is Keras's ``history.history``: ``{"loss": [...], "val_loss": [...], ...}``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .base import _class_colors, display_text, figure_or_saved, fixed_figure

NOT_CURVES = frozenset({"epoch", "seconds", "lr", "learning_rate"})

History = Mapping[str, Sequence[float]]


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
