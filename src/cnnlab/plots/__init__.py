"""Figures for runs, comparisons, datasets, approximations and studies, written as PNG files.

Every public ``plot_*`` function takes plain arrays, writes one PNG at ``path`` (creating
its folder) and returns the ``Path``; without a ``path`` it writes nothing and returns the
figure, which a Jupyter notebook shows inline (``NotebookFigure``). Each is backed by a
``_figure_*`` helper that builds and returns the matplotlib ``Figure`` without saving it, so
tests can inspect the data behind a figure (bar heights, the heatmap array, legend labels).

Figures are built with the object-oriented ``matplotlib.figure.Figure`` API rather than
pyplot, so nothing accumulates in pyplot's global list of open figures, and a PNG is rendered
through the Agg canvas whatever the global backend: importing cnnlab chooses no backend.

Figures cost little (issue 16): a grid of images (filters, feature maps, mistakes, samples) is
one mosaic image on one axes, never one axes per tile; figures of a run are laid out once by
hand (``fixed_figure``) instead of by constrained layout, and ``save_figure``'s tight bounding
box takes in any label longer than its margin. Constrained layout is kept only where panels
must make room for labels of unknown length between them (confusion matrices side by side)
and for the function-approximation figures.

The families, one module each:

```
base.py            save_figure, NotebookFigure, figure_or_saved, the layouts, text, colours
mosaic.py          one image, and many images as one mosaic (TileLayout, tile_colors)
training.py        history curves, of one run or several
classification.py  confusion matrices, ROC curves, per-class scores, confident mistakes
data.py            sample grid, class distribution, pixel histogram, mean images
inside.py          filters, feature maps, saliency
function2d.py      cnnlab approx: the field, points, prediction and boundary, errors, snapshots
study.py           the study report: one axis, the Pareto fronts (imported by the study report,
                   not here: it reads the study package)
```
"""

from __future__ import annotations

from .base import (
    DPI,
    MAX_INCHES,
    NotebookFigure,
    _new_figure,
    display_text,
    figure_or_saved,
    fixed_figure,
    save_figure,
)
from .classification import (
    RocCurve,
    _figure_confident_mistakes,
    _figure_confusion_matrices,
    _figure_confusion_matrix,
    _figure_per_class,
    _figure_roc,
    _figure_roc_compare,
    confident_mistake_indices,
    macro_average_curve,
    micro_average_curve,
    one_vs_rest_curves,
    plot_confident_mistakes,
    plot_confusion_matrices,
    plot_confusion_matrix,
    plot_per_class,
    plot_roc,
    plot_roc_compare,
)
from .data import (
    _figure_class_distribution,
    _figure_mean_images,
    _figure_pixel_histogram,
    _figure_sample_grid,
    plot_class_distribution,
    plot_mean_images,
    plot_pixel_histogram,
    plot_sample_grid,
)
from .function2d import (
    BOUNDARY_COLOR,
    _figure_error_map,
    _figure_points,
    _figure_prediction_field,
    approx_class_colors,
    approx_errors,
    plot_boundary_snapshots,
    plot_error_map,
    plot_function_field,
    plot_points,
    plot_prediction_field,
)
from .inside import (
    _figure_feature_maps,
    _figure_filters,
    _figure_saliency,
    _resize_nearest,
    plot_feature_maps,
    plot_filters,
    plot_saliency,
)
from .mosaic import TileLayout, _mosaic, tile_colors
from .training import (
    NOT_CURVES,
    History,
    _figure_history,
    _figure_history_compare,
    history_metric_names,
    plot_history,
    plot_history_compare,
)

__all__ = [
    "BOUNDARY_COLOR",
    "DPI",
    "MAX_INCHES",
    "NOT_CURVES",
    "History",
    "NotebookFigure",
    "RocCurve",
    "TileLayout",
    "approx_class_colors",
    "approx_errors",
    "confident_mistake_indices",
    "display_text",
    "figure_or_saved",
    "fixed_figure",
    "history_metric_names",
    "macro_average_curve",
    "micro_average_curve",
    "one_vs_rest_curves",
    "plot_boundary_snapshots",
    "plot_class_distribution",
    "plot_confident_mistakes",
    "plot_confusion_matrices",
    "plot_confusion_matrix",
    "plot_error_map",
    "plot_feature_maps",
    "plot_filters",
    "plot_function_field",
    "plot_history",
    "plot_history_compare",
    "plot_mean_images",
    "plot_per_class",
    "plot_pixel_histogram",
    "plot_points",
    "plot_prediction_field",
    "plot_roc",
    "plot_roc_compare",
    "plot_saliency",
    "plot_sample_grid",
    "save_figure",
    "tile_colors",
    # the figure builders and helpers that tests inspect, kept at their old dotted path
    "_figure_class_distribution",
    "_figure_confident_mistakes",
    "_figure_confusion_matrices",
    "_figure_confusion_matrix",
    "_figure_error_map",
    "_figure_feature_maps",
    "_figure_filters",
    "_figure_history",
    "_figure_history_compare",
    "_figure_mean_images",
    "_figure_per_class",
    "_figure_pixel_histogram",
    "_figure_points",
    "_figure_prediction_field",
    "_figure_roc",
    "_figure_roc_compare",
    "_figure_saliency",
    "_figure_sample_grid",
    "_mosaic",
    "_new_figure",
    "_resize_nearest",
]
