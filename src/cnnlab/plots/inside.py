"""Inside a trained network: the first layer's filters, the feature maps of one image, and a
saliency map (the gradient of the predicted score with respect to the input).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .base import _side_colorbar, display_text, figure_or_saved, fixed_figure
from .mosaic import _label_tiles, _mosaic_figure, _show_image, tile_colors

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
