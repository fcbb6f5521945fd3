"""cnnlab.plots: every figure is written, legible, and shows the data it was given."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import matplotlib
import numpy as np
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.transforms import Bbox
from PIL import Image
from sklearn.metrics import roc_auc_score

from cnnlab import plots
from cnnlab.metrics import classification_metrics

NAMES = ["zero", "one", "two", "three"]
CIFAR_NAMES = [
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
]
HISTORY = {
    "loss": [1.2, 0.7, 0.5],
    "accuracy": [0.6, 0.8, 0.85],
    "val_loss": [0.9, 0.6, 0.55],
    "val_accuracy": [0.7, 0.8, 0.82],
}


def make_data(n: int = 80, n_classes: int = 4, seed: int = 0) -> tuple[np.ndarray, ...]:
    """Images (n, 8, 8), labels cycling through the classes, and noisy softmax outputs."""
    rng = np.random.default_rng(seed)
    labels = np.arange(n) % n_classes
    images = rng.random((n, 8, 8))
    logits = 2.0 * np.eye(n_classes)[labels] + rng.normal(size=(n, n_classes))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return images, labels, probs


X, Y, P = make_data()
CM = np.array(classification_metrics(Y, P)["confusion_matrix"])
PER_CLASS = classification_metrics(Y, P, NAMES)["per_class"]
RNG_KERNEL = np.random.default_rng(0).normal(size=(3, 3, 2, 12))


def image_axes(fig: Figure) -> list:
    """The axes of ``fig`` that show an image."""
    return [ax for ax in fig.axes if ax.images]


def mosaic_tiles(fig: Figure) -> list[np.ndarray]:
    """The RGBA tiles of a grid drawn as one image, row by row: the blocks between its fully
    transparent rows and columns of pixels (blank tiles left out)."""
    (ax,) = image_axes(fig)
    mosaic = np.asarray(ax.images[0].get_array())
    opaque = mosaic[..., 3] > 0
    rows, cols = pixel_runs(opaque.any(axis=1)), pixel_runs(opaque.any(axis=0))
    tiles = [mosaic[r0:r1, c0:c1] for r0, r1 in rows for c0, c1 in cols]
    return [tile for tile in tiles if tile[..., 3].any()]


def pixel_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) of each run of True in a 1-D mask."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(int), [0]])))
    return list(zip(edges[::2], edges[1::2]))


def scaled(image: np.ndarray) -> np.ndarray:
    """``image`` stretched to its own range 0..1, as ``imshow`` shows an image alone."""
    return (image - image.min()) / (image.max() - image.min())


def legend_labels(fig: Figure) -> list[str]:
    """Texts of every legend in ``fig``."""
    return [t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts()]


def auc_in(label: str) -> float:
    """The number in "name (AUC = 0.873)"."""
    return float(re.search(r"AUC = ([0-9.]+)\)", label).group(1))


# --------------------------------------------------------------------------- legibility


def drawn_texts(fig: Figure) -> list[Text]:
    """The non-empty texts a reader sees: titles, labels, visible tick labels, legends, notes."""
    texts = list(fig.texts)
    for ax in fig.axes:
        texts += [ax.title, *ax.texts]
        if ax.get_legend():
            texts += ax.get_legend().get_texts()
        if ax.axison:
            texts += [ax.xaxis.label, ax.yaxis.label]
            for axis in (ax.xaxis, ax.yaxis):
                low, high = sorted(axis.get_view_interval())
                ticks = zip(axis.get_majorticklocs(), axis.get_majorticklabels())
                texts += [label for loc, label in ticks if low - 1e-9 <= loc <= high + 1e-9]
    return [t for t in texts if t.get_visible() and t.get_text().strip()]


def text_box(text: Text, renderer: object) -> tuple[float, np.ndarray, np.ndarray, Bbox]:
    """A text's rotation, the centre and size of its box in its own rotated frame (px),
    and its upright bounding box."""
    angle = np.deg2rad(text.get_rotation())
    upright = text.get_window_extent(renderer)
    centre = upright.get_points().mean(axis=0)
    rotation = text.get_rotation()
    text.set_rotation(0)
    size = text.get_window_extent(renderer).size
    text.set_rotation(rotation)
    to_text_frame = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
    return angle, to_text_frame @ centre, size, upright


def boxes_overlap(a: tuple, b: tuple, margin: float = 1.0) -> bool:
    """Whether two texts overlap by more than ``margin`` px: exact for equal rotations,
    else (conservatively) by their upright bounding boxes."""
    (angle_a, centre_a, size_a, upright_a), (angle_b, centre_b, size_b, upright_b) = a, b
    if not np.isclose(angle_a, angle_b):
        return upright_a.padded(-margin).overlaps(upright_b.padded(-margin))
    return bool(np.all(np.abs(centre_a - centre_b) < (size_a + size_b) / 2 - margin))


def overlapping_pairs(fig: Figure) -> list[tuple[str, str]]:
    """Pairs of drawn texts whose boxes overlap by more than a pixel."""
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    boxes = [(t.get_text(), text_box(t, renderer)) for t in drawn_texts(fig)]
    return [
        (a, b)
        for (a, box_a), (b, box_b) in itertools.combinations(boxes, 2)
        if boxes_overlap(box_a, box_b)
    ]


FIGURE_BUILDERS: dict[str, Callable[[], Figure]] = {
    "history": lambda: plots._figure_history(HISTORY),
    "history_loss_only": lambda: plots._figure_history({"loss": [3.0, 2.0, 1.5]}),
    "history_compare": lambda: plots._figure_history_compare(
        {"numpy": HISTORY, "torch": HISTORY}, "Runs"
    ),
    "confusion": lambda: plots._figure_confusion_matrix(CM, NAMES),
    "confusion_normalized": lambda: plots._figure_confusion_matrix(CM, NAMES, normalize=True),
    "confusion_ten_digits": lambda: plots._figure_confusion_matrix(
        np.full((10, 10), 1234), [str(k) for k in range(10)]
    ),
    "confusion_long_names": lambda: plots._figure_confusion_matrix(
        np.full((10, 10), 1234), CIFAR_NAMES
    ),
    "confusion_pair": lambda: plots._figure_confusion_matrices({"numpy": CM, "torch": CM}, NAMES),
    "roc": lambda: plots._figure_roc(Y, P, NAMES, "ROC"),
    "roc_compare": lambda: plots._figure_roc_compare({"numpy": (Y, P), "torch": (Y, P)}, "ROC"),
    "per_class": lambda: plots._figure_per_class(PER_CLASS, "Scores"),
    "sample_grid": lambda: plots._figure_sample_grid(X, Y, NAMES, 5, 0),
    "class_distribution": lambda: plots._figure_class_distribution(Y, Y[:30], NAMES),
    "class_distribution_long_names": lambda: plots._figure_class_distribution(
        np.repeat(np.arange(10), 5000), None, CIFAR_NAMES
    ),
    "pixel_histogram": lambda: plots._figure_pixel_histogram(X, "Pixels"),
    "mean_images": lambda: plots._figure_mean_images(X, Y, NAMES),
    "mistakes": lambda: plots._figure_confident_mistakes(X, Y, P, NAMES, 8),
    "mistakes_long_names": lambda: plots._figure_confident_mistakes(
        X[:4], np.arange(4), np.eye(10)[[1, 0, 9, 8]], CIFAR_NAMES, 8
    ),
    "filters": lambda: plots._figure_filters(RNG_KERNEL, "F"),
    "feature_maps": lambda: plots._figure_feature_maps(
        [("conv2d", X[0][:6, :6, np.newaxis].repeat(8, 2)), ("max_pooling2d", np.ones((3, 3, 8)))],
        16,
        "Maps",
    ),
    "saliency": lambda: plots._figure_saliency(X[0], X[1] - 0.5, "Saliency"),
}


def test_overlap_check_finds_crowded_labels() -> None:
    fig = plots._new_figure(3.0, 3.0)
    fig.subplots().set_xticks(range(5), CIFAR_NAMES[:5])
    assert overlapping_pairs(fig) != []


@pytest.mark.parametrize("name", FIGURE_BUILDERS)
def test_no_text_overlaps_another(name: str) -> None:
    assert overlapping_pairs(FIGURE_BUILDERS[name]()) == []


# --------------------------------------------------------------------------- PNG files


PLOT_CALLS: dict[str, Callable[[Path], Path]] = {
    "history": lambda p: plots.plot_history(HISTORY, p),
    "history_compare": lambda p: plots.plot_history_compare({"a": HISTORY, "b": HISTORY}, p),
    "confusion": lambda p: plots.plot_confusion_matrix(CM.tolist(), NAMES, p, normalize=True),
    "confusion_pair": lambda p: plots.plot_confusion_matrices({"a": CM, "b": CM}, NAMES, p),
    "roc": lambda p: plots.plot_roc(Y, P, NAMES, p),
    "roc_compare": lambda p: plots.plot_roc_compare({"a": (Y, P)}, p),
    "per_class": lambda p: plots.plot_per_class(PER_CLASS, p),
    "sample_grid": lambda p: plots.plot_sample_grid(X[..., np.newaxis], Y, NAMES, p, per_class=3),
    "class_distribution": lambda p: plots.plot_class_distribution(Y, Y, NAMES, p),
    "pixel_histogram": lambda p: plots.plot_pixel_histogram(X, p),
    "mean_images": lambda p: plots.plot_mean_images(X, Y, NAMES, p),
    "mistakes": lambda p: plots.plot_confident_mistakes(X, Y, P, NAMES, p),
    "no_mistakes": lambda p: plots.plot_confident_mistakes(X, Y, np.eye(4)[Y], NAMES, p),
    "filters": lambda p: plots.plot_filters(np.ones((5, 5, 1, 16)), p),
    "feature_maps": lambda p: plots.plot_feature_maps([("conv2d", np.ones((1, 6, 6, 4)))], p),
    "saliency": lambda p: plots.plot_saliency(X[0][..., np.newaxis], X[1], p),
}


@pytest.mark.parametrize("name", PLOT_CALLS)
def test_each_plot_writes_a_readable_png(name: str, tmp_path: Path) -> None:
    target = tmp_path / "nested" / f"{name}.png"
    assert PLOT_CALLS[name](target) == target
    with Image.open(target) as image:
        assert image.format == "PNG"
        width, height = image.size
    assert 300 <= width <= 4000
    assert 120 <= height <= 4000


# --------------------------------------------------------------------------- data behind figures


def test_history_has_loss_and_accuracy_panels_from_epoch_one() -> None:
    fig = plots._figure_history(HISTORY)
    loss_ax, accuracy_ax = fig.axes
    assert loss_ax.get_title() == "Loss" and accuracy_ax.get_title() == "Accuracy"
    train, validation = loss_ax.get_lines()
    assert list(train.get_xdata()) == [1, 2, 3]
    assert list(validation.get_ydata()) == HISTORY["val_loss"]


def test_history_with_only_loss_has_one_panel() -> None:
    assert len(plots._figure_history({"loss": [1.0, 0.5]}).axes) == 1
    with pytest.raises(ValueError, match="no per-epoch values"):
        plots._figure_history({"seconds": [1.0]})


def test_history_compare_draws_every_run_on_shared_axes() -> None:
    fig = plots._figure_history_compare({"numpy": HISTORY, "torch": {"loss": [1.0, 0.9]}}, "t")
    assert len(fig.axes) == 2
    labels = [line.get_label() for line in fig.axes[0].get_lines()]
    assert labels == ["numpy train", "numpy validation", "torch train"]


def test_confusion_heatmap_shows_the_matrix_and_its_counts() -> None:
    ax = plots._figure_confusion_matrix(CM, NAMES).axes[0]
    np.testing.assert_array_equal(ax.images[0].get_array(), CM)
    assert [t.get_text() for t in ax.texts] == [str(v) for v in CM.ravel()]
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES
    assert ax.get_ylabel() == "True class" and ax.get_xlabel() == "Predicted class"


def test_normalised_confusion_rows_sum_to_one_and_empty_rows_stay_zero() -> None:
    matrix = np.array([[3, 1], [0, 0]])
    ax = plots._figure_confusion_matrix(matrix, ["a", "b"], normalize=True).axes[0]
    np.testing.assert_allclose(ax.images[0].get_array(), [[0.75, 0.25], [0.0, 0.0]])
    assert ax.texts[0].get_text() == "0.75"


def test_confusion_matrix_of_the_wrong_size_is_refused() -> None:
    with pytest.raises(ValueError, match="must be 4 x 4"):
        plots._figure_confusion_matrix(np.ones((3, 3)), NAMES)


def test_confusion_matrices_side_by_side_one_per_engine() -> None:
    fig = plots._figure_confusion_matrices({"numpy": CM, "torch": CM.T}, NAMES)
    heatmaps = image_axes(fig)
    assert [ax.get_title() for ax in heatmaps] == ["numpy", "torch"]
    np.testing.assert_array_equal(heatmaps[1].images[0].get_array(), CM.T)


def test_roc_legend_aucs_match_sklearn() -> None:
    labels = legend_labels(plots._figure_roc(Y, P, NAMES, "ROC"))
    for k, name in enumerate(NAMES):
        (label,) = [text for text in labels if text.startswith(f"{name} (")]
        assert auc_in(label) == pytest.approx(roc_auc_score(Y == k, P[:, k]), abs=6e-4)
    (macro,) = [text for text in labels if text.startswith("macro")]
    assert auc_in(macro) == pytest.approx(roc_auc_score(Y, P, multi_class="ovr"), abs=6e-4)
    (micro,) = [text for text in labels if text.startswith("micro")]
    expected_micro = roc_auc_score(np.eye(4)[Y], P, average="micro")
    assert auc_in(micro) == pytest.approx(expected_micro, abs=6e-4)


def test_binary_roc_has_one_curve_for_the_positive_class() -> None:
    labels = np.array([0, 0, 1, 1, 0, 1])
    positive = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])
    fig = plots._figure_roc(labels, np.stack([1 - positive, positive], 1), ["cat", "dog"], "ROC")
    curves = [text for text in legend_labels(fig) if not text.startswith("chance")]
    assert len(curves) == 1 and curves[0].startswith("dog")
    assert auc_in(curves[0]) == pytest.approx(roc_auc_score(labels, positive), abs=6e-4)


def test_roc_compare_shows_macro_and_micro_of_each_engine() -> None:
    fig = plots._figure_roc_compare({"numpy": (Y, P), "torch": (Y, P[:, ::-1])}, "t")
    labels = legend_labels(fig)
    assert [text.split(" (")[0] for text in labels] == [
        "numpy macro",
        "numpy micro",
        "torch macro",
        "torch micro",
        "chance",
    ]
    assert auc_in(labels[0]) == pytest.approx(roc_auc_score(Y, P, multi_class="ovr"), abs=6e-4)


def test_per_class_bar_heights_are_the_scores() -> None:
    ax = plots._figure_per_class(PER_CLASS, "t").axes[0]
    heights = [bar.get_height() for bar in ax.patches]
    expected = [row[score] for score in ("precision", "recall", "f1") for row in PER_CLASS]
    assert heights == pytest.approx(expected)
    assert [t.get_text() for t in ax.get_xticklabels()] == NAMES


def test_sample_grid_shows_per_class_images_of_each_class_in_its_row() -> None:
    fig = plots._figure_sample_grid(X, Y, NAMES, per_class=3, seed=0)
    shown = mosaic_tiles(fig)  # one image, rows of three
    assert len(shown) == 3 * len(NAMES)
    row_labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert row_labels == NAMES
    members = X[Y == 1]
    assert all(
        any(np.allclose(tile[..., 0], scaled(m), atol=1 / 255) for m in members)
        for tile in shown[3:6]
    )


def test_sample_grid_is_seeded_and_copes_with_a_rare_class() -> None:
    labels = np.array([0] * 10 + [1])
    images = np.random.default_rng(0).random((11, 8, 8))
    first = plots._figure_sample_grid(images, labels, ["many", "rare"], 4, seed=3)
    again = plots._figure_sample_grid(images, labels, ["many", "rare"], 4, seed=3)
    assert len(mosaic_tiles(first)) == 4 + 1
    np.testing.assert_array_equal(
        first.axes[0].images[0].get_array(), again.axes[0].images[0].get_array()
    )


def test_class_distribution_bars_count_the_images_of_each_class() -> None:
    train, test = np.array([0, 0, 0, 1, 3, 3]), np.array([1, 1, 2])
    fig = plots._figure_class_distribution(train, test, NAMES)
    train_ax, test_ax = fig.axes
    assert train_ax.get_title() == "Distribution of the train dataset"
    assert test_ax.get_title() == "Distribution of the test dataset"
    assert [bar.get_height() for bar in train_ax.patches] == [3, 1, 0, 2]
    assert [bar.get_height() for bar in test_ax.patches] == [0, 2, 1, 0]
    assert train_ax.get_ylabel() == "Number of images"


def test_pixel_histogram_counts_every_pixel() -> None:
    ax = plots._figure_pixel_histogram(X, "t").axes[0]
    (stairs,) = ax.patches
    assert stairs.get_data().values.sum() == X.size


def test_mean_images_are_the_class_means() -> None:
    fig = plots._figure_mean_images(X, Y, NAMES)
    np.testing.assert_allclose(
        mosaic_tiles(fig)[2][..., 0], scaled(X[Y == 2].mean(axis=0)), atol=1 / 255
    )
    assert fig.axes[0].texts[0].get_text() == "zero (20)"


def test_confident_mistakes_are_the_most_probable_wrong_answers() -> None:
    labels = np.array([0, 1, 2, 0, 1])
    probs = np.array(
        [
            [0.9, 0.05, 0.05],  # right
            [0.6, 0.3, 0.1],  # wrong, 0.6
            [0.02, 0.97, 0.01],  # wrong, 0.97
            [0.2, 0.7, 0.1],  # wrong, 0.7
            [0.1, 0.8, 0.1],  # right
        ]
    )
    np.testing.assert_array_equal(plots.confident_mistake_indices(labels, probs, 2), [2, 3])
    fig = plots._figure_confident_mistakes(X[:5], labels, probs, ["a", "b", "c"], n=16)
    titles = [text.get_text() for text in fig.axes[0].texts]
    assert titles == ["true c / pred b (0.97)", "true a / pred b (0.70)", "true b / pred a (0.60)"]
    tiles = mosaic_tiles(fig)  # one image: the three mistakes in grey, each scaled to its range
    assert len(tiles) == 3
    np.testing.assert_allclose(tiles[0][..., 0], scaled(X[2]), atol=1 / 255)


def test_no_mistakes_gives_a_figure_that_says_so() -> None:
    fig = plots._figure_confident_mistakes(X, Y, np.eye(4)[Y], NAMES, n=16)
    assert image_axes(fig) == []
    assert "No mistakes" in fig.axes[0].texts[0].get_text()


def test_filters_are_channel_averaged_tiles_one_per_filter() -> None:
    kernel = np.random.default_rng(0).normal(size=(3, 3, 2, 10))
    fig = plots._figure_filters(kernel, "t")
    tiles = mosaic_tiles(fig)  # one image, not one axes per filter
    assert len(tiles) == 10 and len(fig.axes) == 1
    np.testing.assert_allclose(
        tiles[7][..., 0], scaled(kernel[:, :, :, 7].mean(axis=2)), atol=1 / 255
    )
    assert [text.get_text() for text in fig.axes[0].texts] == [str(k) for k in range(10)]
    with pytest.raises(ValueError, match="kh, kw, C_in, F"):
        plots._figure_filters(np.ones((3, 3, 4)), "t")


def test_feature_maps_one_row_per_layer_with_at_most_max_channels() -> None:
    maps = [("conv2d", np.random.default_rng(0).random((6, 6, 32))), ("dense", np.ones((2, 2)))]
    fig = plots._figure_feature_maps(maps, max_channels=5, title="t")
    tiles = mosaic_tiles(
        fig
    )  # one image: five maps of conv2d, then dense's one map enlarged to 6x6
    assert len(tiles) == 5 + 1 and len(fig.axes) == 1
    labels = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert labels == ["conv2d\n6x6x32", "dense\n2x2x1"]
    np.testing.assert_allclose(
        tiles[3], matplotlib.colormaps["viridis"](scaled(maps[0][1][:, :, 3]))
    )
    assert tiles[5].shape == (6, 6, 4)


def test_saliency_shows_image_absolute_gradient_and_overlay() -> None:
    gradient = X[1] - 0.5
    fig = plots._figure_saliency(X[0], gradient, "t")
    titles = [ax.get_title() for ax in image_axes(fig)]
    assert titles == ["Input", "|gradient|", "Overlay"]
    np.testing.assert_allclose(image_axes(fig)[1].images[0].get_array(), np.abs(gradient))
    assert len(image_axes(fig)[2].images) == 2


# --------------------------------------------------------------------------- no import side effects

BACKEND_SCRIPT = """
import sys
import matplotlib
backend = matplotlib.get_backend()
import cnnlab.plots, cnnlab.study.report
assert matplotlib.get_backend() == backend, (backend, matplotlib.get_backend())
assert "matplotlib.pyplot" not in sys.modules
path = cnnlab.plots.plot_history({"loss": [1.0, 0.5]}, sys.argv[1])
print(backend, path.read_bytes()[:8] == b"\\x89PNG\\r\\n\\x1a\\n")
"""


def test_importing_the_figures_leaves_the_backend_alone_and_pngs_still_save(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["MPLBACKEND"] = "svg"  # not Agg: cnnlab must neither switch it nor need it (no display)
    target = tmp_path / "figures" / "history.png"
    done = subprocess.run(
        [sys.executable, "-c", BACKEND_SCRIPT, str(target)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["svg", "True"]
