"""Figures of ``cnnlab approx``: a function of two variables and the network that approximates it.

The true field, sample points, the predicted field with the true boundary, the error map and
snapshots of the boundary during training.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from .base import _class_colors, _new_figure, display_text, figure_or_saved

# --------------------------------------------------------------------------- function approximation
# Figures of ``cnnlab approx``. Fields are grids shaped like ``xx`` and ``yy`` from
# ``function2d.grid`` (rows along y, columns along x). A classification field holds labels
# 0..K-1 (truth) or probabilities (R, R, K) (prediction); a regression field holds values.

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
        _scatter_values(fig, ax, points, values, size, value_range)
    ax.set_title(display_text(title, 100))
    _style_points_axes(ax, limits)
    return fig


def _scatter_values(
    fig: Figure,
    ax: Axes,
    points: np.ndarray,
    values: np.ndarray,
    size: float,
    value_range: tuple[float, float] | None,
) -> None:
    """Points coloured by value on viridis over ``value_range`` (default: the values' own range),
    with a colour bar."""
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


def _style_points_axes(ax: Axes, limits: tuple[float, float, float, float] | None) -> None:
    """x and y labels, the ``limits`` (x_low, x_high, y_low, y_high) when given, and equal scales
    unless the shown region is very elongated."""
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if limits is not None:
        ax.set_xlim(limits[0], limits[1])
        ax.set_ylim(limits[2], limits[3])
    ratio = np.ptp(ax.get_ylim()) / np.ptp(ax.get_xlim())
    ax.set_aspect("equal" if 1 / 3 <= ratio <= 3 else "auto")


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
