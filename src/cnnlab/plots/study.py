"""Figures of the study report (``cnnlab study``): what one axis does, and accuracy against
parameters or time with the Pareto front marked.

They take the trials read from a study's SQLite file (dicts with ``configuration``, ``metrics``,
``params``, ...) and the configuration points of ``cnnlab.study.report`` (``Point``: mean
accuracy over seeds, its spread, parameters, seconds), and return a ``Figure`` that the report
writes through ``save_figure``. ``accuracy_of`` and ``pareto_front``, which these figures draw
from, are the report's too.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from cnnlab.study.spec import value_label

from .base import display_text, fixed_figure

if TYPE_CHECKING:
    from cnnlab.study.report import Point


def accuracy_of(trial: dict[str, Any]) -> float:
    """The test accuracy of a finished trial (a row of the study's SQLite file)."""
    return float(trial["metrics"]["test_accuracy"])


def pareto_front(cost: list[float], gain: list[float]) -> list[int]:
    """Indices of the points no other point beats: lower or equal cost and higher gain."""
    order = sorted(range(len(cost)), key=lambda i: (cost[i], -gain[i]))
    front, best = [], -math.inf
    for i in order:
        if gain[i] > best:
            front.append(i)
            best = gain[i]
    return front


def _figure(width: float, height: float, columns: int = 1) -> tuple[Figure, list[Axes]]:
    """``columns`` panels in a fixed layout
    (no layout engine pass; the saved PNG takes in longer labels)."""
    fig = fixed_figure(width, height, (0.9, 0.2, 0.8, 0.4), columns=columns, gap=1.0)
    return fig, list(np.atleast_1d(fig.subplots(1, columns)))


def figure_axis(address: str, labels: list[str], done: list[dict[str, Any]]) -> Figure:
    """Accuracy (each trial, mean and spread) and parameters against the values of one axis."""
    fig, (acc_ax, params_ax) = _figure(10, 3.6, 2)
    rng = np.random.default_rng(0)  # jitter only, so overlapping dots stay visible
    for i, label in enumerate(labels):
        mine = [t for t in done if value_label(t["configuration"][address]) == label]
        if mine:
            _draw_axis_value(acc_ax, params_ax, i, mine, rng)
    for ax, ylabel in ((acc_ax, "test accuracy"), (params_ax, "parameters")):
        _style_axis_panel(ax, address, labels, ylabel)
    acc_ax.set_title("accuracy: trials (dots), mean ± std")
    params_ax.set_title("parameters")
    return fig


def _draw_axis_value(
    acc_ax: Axes,
    params_ax: Axes,
    position: int,
    trials: list[dict[str, Any]],
    rng: np.random.Generator,
) -> None:
    """The trials of one axis value at x = ``position``: jittered accuracy dots with their mean
    and standard deviation, and jittered parameter counts."""
    accuracies = np.array([accuracy_of(t) for t in trials])
    jitter = position + rng.uniform(-0.12, 0.12, len(trials))
    acc_ax.scatter(jitter, accuracies, s=14, color="#9bbcd8", zorder=2)
    acc_ax.errorbar(
        position,
        accuracies.mean(),
        yerr=accuracies.std(),
        fmt="o",
        color="#1f4e79",
        capsize=5,
        zorder=3,
    )
    params_ax.scatter(jitter, [t["params"] for t in trials], s=14, color="#e3a36f")


def _style_axis_panel(ax: Axes, address: str, labels: list[str], ylabel: str) -> None:
    """The axis values as x ticks (slanted when long), the axis address below, a grid."""
    shown = [display_text(label) for label in labels]  # literal text, no mathtext, shortened
    ax.set_xticks(range(len(labels)), shown, rotation=20 if max(map(len, shown)) > 6 else 0)
    ax.set_xlim(-0.5, len(labels) - 0.5)
    ax.set_xlabel(display_text(address, 80))
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)


def figure_pareto(points: list[Point], cost: str) -> Figure:
    """Accuracy of each configuration against its parameters or seconds, the Pareto front marked."""
    fig, (ax,) = _figure(7, 4.4)
    xs = [p.params if cost == "params" else p.seconds for p in points]
    ys = [p.accuracy for p in points]
    ax.errorbar(
        xs,
        ys,
        yerr=[p.spread for p in points],
        fmt="o",
        color="#4682b4",
        ecolor="#9bbcd8",
        markersize=5,
        capsize=2,
        label="configuration (mean over seeds)",
    )
    _draw_front(ax, xs, ys)
    if cost == "params" and min(xs) > 0 and max(xs) / min(xs) > 10:
        ax.set_xscale("log")
    ax.set_xlabel("parameters" if cost == "params" else "seconds per trial (build, train, predict)")
    ax.set_ylabel("test accuracy")
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right")
    return fig


def _draw_front(ax: Axes, xs: list[float], ys: list[float]) -> None:
    """The Pareto front of (cost ``xs``, accuracy ``ys``): a red staircase, its points circled."""
    front = pareto_front(xs, ys)
    ax.step(
        [xs[i] for i in front], [ys[i] for i in front], where="post", color="#c0392b", linewidth=1.2
    )
    ax.scatter(
        [xs[i] for i in front],
        [ys[i] for i in front],
        s=90,
        facecolors="none",
        edgecolors="#c0392b",
        linewidths=1.6,
        label="Pareto front",
        zorder=3,
    )
