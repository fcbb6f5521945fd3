"""Function approximation (seed 000): a network learns a function of ``(x, y)``.

``cnnlab approx`` samples a built-in function (:mod:`cnnlab.datasets.function2d`) or a safe
expression, trains a network on the points and shows the original beside the prediction.
Boolean or integer results are a classification (softmax output, categorical
cross-entropy, accuracy); real results are a regression (one linear output, mean squared
error, R^2). The defaults are the seed's: ``ring-band`` on [0, 1]^2, 50,000 uniform points,
a tenth for testing, a tenth of the rest for validation, the ``seed-dense`` network
(Dense64-Dense64-Flatten-Dropout-Dense), Adam, batch 128, 15 epochs.

The network sees the points scaled to the unit square, ``u = (x - x_low) / (x_high - x_low)``
(and ``v`` likewise): the identity on the seed's domain, and a sane input range on any
other. The saved model takes these scaled coordinates; ``config.json["inputs"]`` records
the scaling.

Models: ``seed-dense``; any model file (its input is the 2 scaled coordinates); and
``patch-cnn``, a small CNN whose input is a ``k x k`` patch of the *coordinate* grid around
each point: channel 0 holds ``u`` and channel 1 holds ``v`` at the grid points
``(u + i * h, v + j * h)``, ``i, j = -k//2 .. k//2``, with spacing ``h = 1 / PATCH_RESOLUTION``
of the domain. The patch holds the coordinates, never the function's values, which would
give the answer away. Conv2D(16, 3x3) - Conv2D(32, 3x3, same) - Flatten - Dense(64) - Dense(K).

A run directory holds what ``cnnlab train`` writes (config.json, model.cnnlab, history.csv,
metrics.json, summary.txt, figures/, report.html) and ``approx.npz``, the arrays behind
the figures (grid, true and predicted fields, snapshots, test points), from which
:func:`write_figures` and :func:`render_report` redraw without retraining.
"""

from .problem import (
    BUILTIN_APPROX_MODELS,
    DATA_FILE,
    GRID_RESOLUTION,
    MAX_SAMPLES,
    PATCH_RESOLUTION,
    PREDICT_BATCH,
    SNAPSHOT_COUNT,
    SNAPSHOT_RESOLUTION,
    ApproxProblem,
    ApproxSettings,
    InputEncoder,
    approx_model_config,
    check_model_spec,
    check_split,
    parse_domain,
    patch_cnn_layers,
    prepare,
)
from .rundir import (
    FIGURES,
    METRIC_LABELS,
    confusion_rows,
    field_title,
    figure_captions,
    headline,
    load_arrays,
    overview_rows,
    render_report,
    run_class_names,
    short,
    write_field_figures,
    write_figures,
    write_run,
    write_test_point_figures,
)
from .training import (
    ApproxResult,
    BoundarySnapshots,
    as_field,
    field_arrays,
    grid_points,
    run_approx,
    snapshot_epochs,
    test_metrics,
)

__all__ = [
    "approx_model_config",
    "ApproxProblem",
    "ApproxResult",
    "ApproxSettings",
    "as_field",
    "BoundarySnapshots",
    "BUILTIN_APPROX_MODELS",
    "check_model_spec",
    "check_split",
    "confusion_rows",
    "DATA_FILE",
    "field_arrays",
    "field_title",
    "figure_captions",
    "FIGURES",
    "grid_points",
    "GRID_RESOLUTION",
    "headline",
    "InputEncoder",
    "load_arrays",
    "MAX_SAMPLES",
    "METRIC_LABELS",
    "overview_rows",
    "parse_domain",
    "patch_cnn_layers",
    "PATCH_RESOLUTION",
    "PREDICT_BATCH",
    "prepare",
    "render_report",
    "run_approx",
    "run_class_names",
    "short",
    "SNAPSHOT_COUNT",
    "snapshot_epochs",
    "SNAPSHOT_RESOLUTION",
    "test_metrics",
    "write_field_figures",
    "write_figures",
    "write_run",
    "write_test_point_figures",
]
