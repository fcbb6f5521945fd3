"""Dataset exploration (``cnnlab explore``): a summary table, figures and a report."""

from __future__ import annotations

import html
from pathlib import Path

import numpy as np

from . import plots
from .datasets import Dataset
from .report import ReportFigure, Section, build_report, html_table

EXPLORE_FIGURES = {
    "samples.png": "Random samples of each class",
    "class_distribution.png": "Number of images per class, training and test sets",
    "pixel_histogram.png": "Distribution of pixel values in the training set",
    "mean_images.png": "The mean image of each class",
}

DESCRIBE_HEADER = ["split", "images", "shape", "dtype", "min", "max", "classes"]


def describe(data: Dataset) -> list[list[object]]:
    """One row per split: images, image shape, dtype, value range, classes present."""
    rows = []
    for split, x, y in (("train", data.x_train, data.y_train), ("test", data.x_test, data.y_test)):
        rows.append(
            [
                split,
                len(x),
                tuple(x.shape[1:]),
                str(x.dtype),
                x.min().item(),
                x.max().item(),
                len(np.unique(y)),
            ]
        )
    return rows


def class_counts(data: Dataset) -> list[list[object]]:
    """class, training count, test count."""
    train = np.bincount(data.y_train, minlength=data.num_classes)
    test = np.bincount(data.y_test, minlength=data.num_classes)
    return [[name, int(a), int(b)] for name, a, b in zip(data.class_names, train, test)]


def write_exploration(data: Dataset, out_dir: Path, per_class: int = 5, seed: int = 0) -> Path:
    """Write the four exploration figures and report.html into out_dir; returns the report path."""
    figures = out_dir / "figures"
    plots.plot_sample_grid(
        data.x_train,
        data.y_train,
        data.class_names,
        figures / "samples.png",
        per_class=per_class,
        seed=seed,
    )
    plots.plot_class_distribution(
        data.y_train, data.y_test, data.class_names, figures / "class_distribution.png"
    )
    plots.plot_pixel_histogram(data.x_train, figures / "pixel_histogram.png")
    plots.plot_mean_images(
        data.x_train, data.y_train, data.class_names, figures / "mean_images.png"
    )
    sections = [
        Section(
            "Overview",
            [
                f"<p>Source: {html.escape(data.source)}</p>",
                html_table(describe(data), DESCRIBE_HEADER),
            ],
        ),
        Section("Classes", [html_table(class_counts(data), ["class", "train", "test"])]),
        Section(
            "Figures",
            figures=[
                ReportFigure(figures / name, caption) for name, caption in EXPLORE_FIGURES.items()
            ],
        ),
    ]
    return build_report(f"Dataset {data.name}", sections, out_dir / "report.html")
