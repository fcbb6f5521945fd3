"""A dataset before training (``cnnlab explore``): random samples per class, images per class,
the distribution of pixel values, the mean image of each class.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .base import _set_class_ticks, display_text, figure_or_saved, fixed_figure
from .mosaic import _label_tiles, _mosaic_figure, tile_colors


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
