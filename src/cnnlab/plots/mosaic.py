"""Images as figures show them: one image in grey or colour, and many images as one mosaic.

A grid of images (samples, mean images, mistakes, filters, feature maps) is one RGBA mosaic on
one axes (``TileLayout``, ``tile_colors``, ``_mosaic``, ``_mosaic_figure``, ``_label_tiles``),
never one axes per tile (issue 16).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from .base import DPI, NotebookFigure

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
