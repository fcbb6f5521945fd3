"""cnnlab.plots, the shapes that keep figures cheap (issue 16): grids drawn as one mosaic image,
run figures laid out once by hand (no layout engine), and the mosaic helpers' exact geometry."""

from __future__ import annotations

from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from PIL import Image

from cnnlab import plots

RNG = np.random.default_rng(0)
IMAGES = RNG.random((12, 8, 8))
LABELS = np.arange(12) % 3
PROBS = np.eye(3)[(LABELS + 1) % 3] * 0.8 + 0.2 / 3  # every image wrong


def test_tile_layout_places_tiles_in_rows_below_their_label_band() -> None:
    layout = plots.TileLayout(n_cols=3, size=(4, 5), gaps=(1, 2))
    assert layout.origin(0) == (2, 0)
    assert layout.origin(2) == (2, 12)  # two tiles of 5 and two gaps of 1 to its left
    assert layout.origin(4) == (8, 6)  # second row: 2 + 4 + 2 pixels down


def test_mosaic_is_the_tiles_with_transparent_gaps() -> None:
    layout = plots.TileLayout(n_cols=2, size=(2, 3), gaps=(1, 1))
    tiles = [np.full((2, 3, 4), k + 1.0) for k in range(3)]
    mosaic = plots._mosaic(tiles, layout)
    assert mosaic.shape == (2 * (1 + 2), 2 * 3 + 1, 4)
    for k in range(3):
        np.testing.assert_array_equal(layout.tile(mosaic, k), tiles[k])
    assert mosaic[0].sum() == 0 and mosaic[:, 3].sum() == 0  # the band above row 1, the column gap
    assert mosaic[3:, 4:].sum() == 0  # no fourth tile


def test_tile_colors_scale_each_tile_to_its_own_range() -> None:
    grey = plots.tile_colors(np.array([[2.0, 4.0], [6.0, 10.0]]))
    np.testing.assert_allclose(grey[..., 0], [[0.0, 0.25], [0.5, 1.0]], atol=1 / 255)
    np.testing.assert_array_equal(grey[..., 3], 1.0)
    constant = plots.tile_colors(np.full((2, 2), 7.0), "viridis")
    np.testing.assert_allclose(
        constant, np.broadcast_to(matplotlib.colormaps["viridis"](0.0), (2, 2, 4))
    )
    with_nan = plots.tile_colors(np.array([[0.0, np.nan], [1.0, 0.5]]))
    assert with_nan[0, 1, 3] == 0 and with_nan[1, 0, 0] == pytest.approx(1.0)
    rgb = plots.tile_colors(
        np.stack([np.zeros((2, 2)), np.ones((2, 2)), np.full((2, 2), 0.5)], axis=2)
    )
    np.testing.assert_allclose(rgb[0, 0], [0.0, 1.0, 0.5, 1.0])


def test_resize_nearest_repeats_pixels_like_imshow() -> None:
    image = np.arange(4.0).reshape(2, 2)
    np.testing.assert_array_equal(
        plots._resize_nearest(image, (4, 3)), [[0, 0, 1], [0, 0, 1], [2, 2, 3], [2, 2, 3]]
    )


GRIDS = {
    "filters": lambda: plots._figure_filters(RNG.normal(size=(3, 3, 1, 32)), "F"),
    "feature_maps": lambda: plots._figure_feature_maps(
        [("conv2d", RNG.random((26, 26, 32))), ("max_pooling2d", RNG.random((13, 13, 32)))],
        16,
        "Maps",
    ),
    "mistakes": lambda: plots._figure_confident_mistakes(
        IMAGES, LABELS, PROBS, ["a", "b", "c"], 16
    ),
}


@pytest.mark.parametrize("name", GRIDS)
def test_a_grid_is_one_image_on_one_axes_without_layout_engine(name: str) -> None:
    fig = GRIDS[name]()
    assert len(fig.axes) == 1 and len(fig.axes[0].images) == 1
    assert fig.get_layout_engine() is None


RUN_FIGURES = {
    "history": lambda: plots._figure_history({"loss": [1.0, 0.5], "val_loss": [1.1, 0.7]}),
    "confusion": lambda: plots._figure_confusion_matrix(np.eye(3, dtype=int) * 5, ["a", "b", "c"]),
    "roc": lambda: plots._figure_roc(
        LABELS, np.eye(3)[LABELS] * 0.5 + RNG.random((12, 3)) * 0.3, "abc", "ROC"
    ),
    "per_class": lambda: plots._figure_per_class(
        [{"class": "a", "precision": 1.0, "recall": 0.5, "f1": 0.67}], "Scores"
    ),
    "saliency": lambda: plots._figure_saliency(IMAGES[0], IMAGES[1], "S"),
}


@pytest.mark.parametrize("name", RUN_FIGURES)
def test_run_figures_are_laid_out_by_hand(name: str) -> None:
    assert RUN_FIGURES[name]().get_layout_engine() is None


def test_confusion_colour_bar_sits_right_of_the_heatmap_without_shrinking_it() -> None:
    fig = plots._figure_confusion_matrix(np.arange(9).reshape(3, 3), ["a", "b", "c"])
    heatmap, bar = fig.axes
    assert bar.get_position().x0 > heatmap.get_position().x1
    assert bar.get_ylabel() == "images"
    width, height = fig.get_size_inches()
    box = heatmap.get_position()
    assert box.width * width == pytest.approx(
        box.height * height
    )  # the square box of a square heatmap


def test_long_labels_outside_a_fixed_margin_are_kept_in_the_png(tmp_path: Path) -> None:
    names = ["a class name far longer than the margin", "b", "c"]
    fig = plots._figure_confusion_matrix(np.eye(3, dtype=int), names)
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    label_left = min(
        label.get_window_extent(renderer).x0 for label in fig.axes[0].get_yticklabels()
    )
    bar_right = fig.axes[1].get_tightbbox(renderer).x1
    assert label_left < 0  # the label does not fit the fixed left margin...
    path = plots.save_figure(fig, tmp_path / "cm.png")
    with Image.open(path) as image:
        assert (
            image.size[0] >= bar_right - label_left
        )  # ...and the PNG still spans it and the colour bar
