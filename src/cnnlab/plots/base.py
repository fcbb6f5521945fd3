"""What every family of figures shares: the figure, its layout, its PNG file, its text.

``save_figure`` renders a figure to PNG in memory and writes it atomically; ``NotebookFigure``
shows inline in Jupyter; ``figure_or_saved`` is the ``path=None`` rule of every ``plot_*``
function; ``_new_figure`` (constrained layout) and ``fixed_figure`` (laid out once by hand) make
figures; ``_side_colorbar``, ``display_text``, ``_set_class_ticks`` and ``_class_colors`` are the
colour bar, text, tick and colour rules; ``_notice_figure`` carries a sentence where there is
nothing to draw.

No backend is chosen here, nor anywhere in ``cnnlab.plots``: a ``matplotlib.figure.Figure``
made outside pyplot saves a PNG through the Agg canvas whatever the global backend is, so
importing cnnlab leaves the user's backend (and a notebook's inline one) alone.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.image import AxesImage

from cnnlab.engine.saving import write_bytes

DPI = 100
# per side: 2,400 pixels; matplotlib resamples an image into float64 RGBA of that size
MAX_INCHES = 24.0


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
    # a figure grown per class stays within MAX_INCHES (memory)
    width, height = fig.get_size_inches()
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


def _notice_figure(message: str) -> Figure:
    """A small figure that carries only a sentence (used where there is nothing to draw)."""
    fig = _new_figure(5.0, 1.2)
    ax = fig.subplots()
    ax.set_axis_off()
    ax.text(0.5, 0.5, message, ha="center", va="center", fontsize=11, transform=ax.transAxes)
    return fig
