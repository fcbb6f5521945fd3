"""cnnlab approx: hostile input is refused in one line, a small run writes every figure and
the report, and the figures show the data they claim to show."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab import plots
from cnnlab.approx import (
    PATCH_RESOLUTION,
    ApproxSettings,
    InputEncoder,
    load_arrays,
    parse_domain,
    prepare,
    render_report,
    snapshot_epochs,
)
from cnnlab.cli import main
from cnnlab.datasets import function2d
from cnnlab.engine import load_model
from cnnlab.errors import CnnlabError

FIGURES = [
    "original.png",
    "test_true.png",
    "test_predicted.png",
    "field.png",
    "errors.png",
    "snapshots.png",
    "history.png",
]
SMALL = ["--samples", "600", "--epochs", "2", "--batch-size", "32"]

HOSTILE = [
    # (expression, a fragment of the one-line message)
    ("__import__('os')", "function '__import__' is not allowed"),
    ("x.__class__", "attribute access 'x.__class__' is not allowed"),
    ("().__class__", "attribute access '().__class__' is not allowed"),
    ("open('f')", "function 'open' is not allowed"),
    ("lambda: 1", "lambda 'lambda: 1' is not allowed"),
    ("[x for x in y]", "comprehension '[x for x in y]' is not allowed"),
    ("'a' * 10**9", "text 'a' is not allowed"),
    ("10**10**10", "the exponent '10**10' of '**' is 1e+10"),
    ("(x + 1", "unbalanced parentheses"),
    ("x + 1)", "unbalanced parentheses"),
    ("z + 1", "unknown name 'z'"),
    ("", "expression is empty"),
    ("   ", "expression is empty"),
    ("x if y else 1", "if-expression 'x if y else 1' is not allowed; use where(condition, a, b)"),
    ("(x := 1)", "assignment ':=' 'x := 1' is not allowed"),
    ("x[0]", "indexing 'x[0]' is not allowed"),
    ("print(x)", "function 'print' is not allowed"),
    ("x ** y", "the exponent 'y' of '**' must be a constant"),
    ("sin.__call__(x)", "call of 'sin.__call__' is not allowed"),
    ("getattr(x, 'real')", "function 'getattr' is not allowed"),
    ("globals()", "function 'globals' is not allowed"),
    ("f'{x}'", "f-string"),
    ("1e300 * x", "number 1e300 is too large"),
    ("sin(x, y)", "function 'sin' takes 1 argument, got 2"),
    ("sin(" * 60 + "x" + ")" * 60, "nested more than 50 levels deep"),
]

BAD_OPTIONS = [
    (["--function", "ringband"], "unknown function 'ringband': use one of ring-band"),
    (["--function", "x > 5"], "is 0 everywhere on the domain"),
    (["--function", "log(x)"], "NaN or infinity"),
    (["--domain", "1,0,0,1"], "domain '1,0,0,1' is not valid"),
    (["--domain", "0,1,0"], "domain '0,1,0' is not valid"),
    (["--domain", "a,b,c,d"], "domain 'a,b,c,d' is not valid"),
    (["--domain", "0,inf,0,1"], "domain '0,inf,0,1' is not valid"),
    (["--samples", "0"], "samples must be between 2 and"),
    (["--samples", "10", "--test-fraction", "0.01"], "leaves no test point"),
    (["--test-fraction", "0"], "test fraction must be in (0, 1)"),
    (["--epochs", "0"], "epochs must be at least 1"),
    (
        ["--samples", "100", "--batch-size", "500"],
        "batch size 500 is larger than the 81 training points",
    ),
    (["--learning-rate", "-1"], "learning rate must be a positive number"),
    (["--model", "seed-cnn"], "unknown model 'seed-cnn' for approx"),
    (["--model", "no-such-model.json"], "unknown model 'no-such-model.json'"),
    (["--model", "patch-cnn", "--patch-size", "4"], "patch size must be odd"),
    (["--noise", "2"], "noise is the fraction of labels to flip"),
]


def assert_refused(code: int, err: str, fragment: str, out_dir: Path) -> None:
    """Exit 2, exactly one line on stderr naming the fault, no traceback, nothing written."""
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2
    assert len(lines) == 1, err
    assert lines[0].startswith("cnnlab: error: ")
    assert fragment in lines[0]
    assert "Traceback" not in err
    assert not out_dir.exists()


@pytest.mark.parametrize(
    ("expression", "fragment"), HOSTILE, ids=[repr(e)[:30] for e, _ in HOSTILE]
)
def test_cli_refuses_hostile_expressions(expression, fragment, tmp_path, capsys):
    out_dir = tmp_path / "run"
    code = main(["approx", "--function", expression, *SMALL, "--out", str(out_dir)])
    assert_refused(code, capsys.readouterr().err, fragment, out_dir)


@pytest.mark.parametrize(
    ("options", "fragment"), BAD_OPTIONS, ids=[" ".join(o) for o, _ in BAD_OPTIONS]
)
def test_cli_refuses_bad_options(options, fragment, tmp_path, capsys):
    out_dir = tmp_path / "run"
    code = main(["approx", *options, "--out", str(out_dir)])
    assert_refused(code, capsys.readouterr().err, fragment, out_dir)


def test_parse_domain():
    assert parse_domain("0,1,-2,2.5") == ((0.0, 1.0), (-2.0, 2.5))
    with pytest.raises(CnnlabError, match="not valid"):
        parse_domain("0,0,0,1")


# --------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("approx") / "ring"
    assert main(["approx", *SMALL, "--out", str(out_dir)]) == 0
    return out_dir


@pytest.fixture(scope="module")
def sine_run(tmp_path_factory) -> Path:
    out_dir = tmp_path_factory.mktemp("approx") / "sine"
    assert main(["approx", "--function", "sin(3*x) * cos(3*y)", *SMALL, "--out", str(out_dir)]) == 0
    return out_dir


@pytest.mark.parametrize("run_name", ["ring_run", "sine_run"])
def test_run_writes_every_file_and_figure(run_name, request):
    run_dir = request.getfixturevalue(run_name)
    for name in [
        "config.json",
        "model.cnnlab",
        "history.csv",
        "metrics.json",
        "summary.txt",
        "approx.npz",
        "report.html",
    ]:
        assert (run_dir / name).is_file(), name
    for name in FIGURES:
        with Image.open(run_dir / "figures" / name) as image:
            assert image.format == "PNG"
            assert min(image.size) >= 250, (name, image.size)
    report = (run_dir / "report.html").read_text()
    assert report.count("data:image/png;base64,") == len(FIGURES)
    assert "the original" in report and "snapshots" not in report  # captions, not file names


def test_classification_metrics_and_report(ring_run):
    metrics = json.loads((ring_run / "metrics.json").read_text())
    config = json.loads((ring_run / "config.json").read_text())
    for key in [
        "test_loss",
        "test_accuracy",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc_ovr",
        "confusion_matrix",
        "params",
        "epoch_seconds",
    ]:
        assert key in metrics, key
    assert metrics["engine"] == "numpy" and metrics["dataset"] == "ring-band"
    assert metrics["params"] == 4482  # the seed's network: 192 + 4160 + 130
    assert len(metrics["epoch_seconds"]) == 2
    assert config["function"]["formula"] == function2d.BUILTIN_FUNCTIONS["ring-band"].formula
    assert config["function"]["domain"] == [[0.0, 1.0], [0.0, 1.0]]
    assert config["training"]["samples"] == 600 and config["training"]["batch_size"] == 32
    report = (ring_run / "report.html").read_text()
    assert f'<td class="text">Test accuracy</td><td>{metrics["test_accuracy"]:.4f}</td>' in report
    assert len((ring_run / "history.csv").read_text().splitlines()) == 3


def test_regression_reports_r2(sine_run):
    metrics = json.loads((sine_run / "metrics.json").read_text())
    assert "test_accuracy" not in metrics
    assert {"r2", "mse", "mae", "test_loss"} <= set(metrics)
    assert metrics["test_loss"] == pytest.approx(metrics["mse"])
    assert metrics["kind"] == "regression"
    assert (
        f'<td class="text">R^2 (test)</td><td>{metrics["r2"]:.4f}</td>'
        in (sine_run / "report.html").read_text()
    )
    summary = (sine_run / "summary.txt").read_text()
    assert "(None, 1)" in summary  # one linear output unit


def test_saved_model_reproduces_the_recorded_predictions(ring_run):
    arrays = load_arrays(ring_run)
    model = load_model(ring_run / "model.cnnlab")
    encoder = InputEncoder(((0.0, 1.0), (0.0, 1.0)))
    predicted = model.predict(encoder.encode(arrays["x_test"]))
    np.testing.assert_allclose(predicted, arrays["test_predicted"], rtol=1e-5, atol=1e-6)


def test_report_rebuilds_from_the_run_directory(ring_run):
    (ring_run / "report.html").unlink()
    render_report(ring_run)
    assert (ring_run / "report.html").read_text().count("data:image/png;base64,") == len(FIGURES)


def test_cnnlab_report_keeps_the_function_figures(ring_run, capsys):
    (ring_run / "report.html").unlink()
    assert main(["report", str(ring_run)]) == 0
    page = (ring_run / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(FIGURES) and "the original" in page


# --------------------------------------------------------------------------- figure data


def test_true_class_scatter_colours_are_the_functions_labels(ring_run):
    arrays = load_arrays(ring_run)
    points, labels = arrays["x_test"], arrays["y_test"]
    expected = function2d.BUILTIN_FUNCTIONS["ring-band"](
        points[:, 0], points[:, 1]
    )  # the seed's fun(x, y)
    np.testing.assert_array_equal(labels, expected)
    assert set(np.unique(expected)) == {0, 1}
    figure = plots._figure_points(points, labels, ["0", "1"], "t")
    colours = figure.axes[0].collections[0].get_facecolors()
    np.testing.assert_allclose(colours, plots.approx_class_colors(2)[expected])


def test_predicted_scatter_colours_are_the_argmax(ring_run):
    arrays = load_arrays(ring_run)
    predicted_class = arrays["test_predicted"].argmax(axis=1)
    figure = plots._figure_points(arrays["x_test"], predicted_class, ["0", "1"], "t")
    colours = figure.axes[0].collections[0].get_facecolors()
    np.testing.assert_allclose(colours, plots.approx_class_colors(2)[predicted_class])


def test_grid_fields_hold_the_function_and_the_prediction(ring_run):
    arrays = load_arrays(ring_run)
    xx, yy, truth, predicted = (
        arrays["grid_x"],
        arrays["grid_y"],
        arrays["grid_truth"],
        arrays["grid_predicted"],
    )
    assert xx[0, 0] == 0 and xx[0, -1] == 1 and yy[-1, 0] == 1
    np.testing.assert_array_equal(truth, function2d.BUILTIN_FUNCTIONS["ring-band"](xx, yy))
    field = plots._figure_prediction_field(xx, yy, predicted, truth, ["0", "1"], "t")
    np.testing.assert_allclose(field.axes[0].get_images()[0].get_array(), predicted[..., 1])
    errors = plots._figure_error_map(xx, yy, predicted, truth, ["0", "1"], "t")
    np.testing.assert_array_equal(
        errors.axes[0].get_images()[0].get_array(), predicted.argmax(-1) != truth
    )
    metrics = json.loads((ring_run / "metrics.json").read_text())
    assert metrics["grid_error"] == pytest.approx(float((predicted.argmax(-1) != truth).mean()))


def test_snapshots_record_the_chosen_epochs(ring_run):
    arrays = load_arrays(ring_run)
    np.testing.assert_array_equal(arrays["snapshot_epochs"], [0, 1, 2])
    assert arrays["snapshot_predicted"].shape[0] == 3
    assert not np.allclose(
        arrays["snapshot_predicted"][0], arrays["snapshot_predicted"][-1]
    )  # training moved it
    assert snapshot_epochs(15) == [0, 3, 6, 9, 12, 15]
    assert snapshot_epochs(1) == [0, 1]


def test_regression_field_is_the_expression(sine_run):
    arrays = load_arrays(sine_run)
    xx, yy = arrays["grid_x"].astype(np.float64), arrays["grid_y"].astype(np.float64)
    np.testing.assert_allclose(
        arrays["grid_truth"], np.sin(3 * xx) * np.cos(3 * yy), rtol=1e-6, atol=1e-6
    )
    assert (
        arrays["grid_x"].min() == -1 and arrays["grid_x"].max() == 1
    )  # the expressions' default domain


# --------------------------------------------------------------------------- patch-cnn


def test_patch_holds_coordinates_around_the_point():
    encoder = InputEncoder(((-1.0, 1.0), (0.0, 2.0)), patch_size=5)
    patches = encoder.encode(np.array([[0.0, 1.0], [1.0, 2.0]], dtype=np.float32))
    assert patches.shape == (2, 5, 5, 2)
    np.testing.assert_allclose(
        patches[:, 2, 2], [[0.5, 0.5], [1.0, 1.0]]
    )  # the centre: the scaled point
    h = 1 / PATCH_RESOLUTION
    np.testing.assert_allclose(
        patches[0, 2, :, 0], 0.5 + h * np.arange(-2, 3), rtol=1e-6
    )  # u along columns
    np.testing.assert_allclose(
        patches[0, :, 2, 1], 0.5 + h * np.arange(-2, 3), rtol=1e-6
    )  # v along rows
    np.testing.assert_allclose(patches[0, :, 0, 0], patches[0, 0, 0, 0])  # u constant down a column


def test_patch_cnn_trains_on_patches():
    problem = prepare(
        ApproxSettings(
            function="xor", samples=400, epochs=1, batch_size=32, model="patch-cnn", patch_size=3
        )
    )
    assert problem.model.input_shape == (3, 3, 2)
    history = problem.model.fit(
        problem.encoder.encode(problem.x_train),
        problem.targets(problem.y_train),
        batch_size=32,
        epochs=1,
        verbose=0,
    )
    assert np.isfinite(history.history["loss"][0])
    assert problem.model.predict(problem.encoder.encode(problem.x_test)).shape == (
        len(problem.x_test),
        2,
    )


def test_model_file_is_accepted(tmp_path):
    path = tmp_path / "tiny.json"
    path.write_text(
        json.dumps(
            {
                "layers": [
                    {
                        "class_name": "Dense",
                        "config": {"name": "hidden", "units": 8, "activation": "tanh"},
                    },
                    {
                        "class_name": "Dense",
                        "config": {"name": "out", "units": 2, "activation": "softmax"},
                    },
                ]
            }
        )
    )
    problem = prepare(
        ApproxSettings(function="circle", samples=200, batch_size=16, model=str(path))
    )
    assert problem.model.input_shape == (2,)
    assert problem.model.count_params() == 2 * 8 + 8 + 8 * 2 + 2
