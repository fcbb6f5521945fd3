"""cnnlab compare: both engines from identical weights and batches, measured side by side."""

from __future__ import annotations

import json

import numpy as np
import pytest

from cnnlab import load_model
from cnnlab.cli import main

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

ARGS = [
    "--dataset",
    "digits",
    "--epochs",
    "2",
    "--train-size",
    "400",
    "--test-size",
    "120",
    "--batch-size",
    "32",
]


@pytest.fixture(scope="module")
def comparison(tmp_path_factory):
    out = tmp_path_factory.mktemp("cmp") / "run"
    assert main(["compare", *ARGS, "--out", str(out)]) == 0
    return out


def test_comparison_directory_holds_both_engines(comparison):
    summary = json.loads((comparison / "comparison.json").read_text())
    for engine in ("numpy", "torch"):
        figures = summary["engines"][engine]
        for key in (
            "test_accuracy",
            "precision_macro",
            "recall_macro",
            "f1_macro",
            "roc_auc_ovr",
            "test_loss",
            "params",
            "seconds_per_epoch",
            "memory_growth_mb",
            "per_class",
            "confusion_matrix",
        ):
            assert key in figures, (engine, key)
        assert np.array(figures["confusion_matrix"]).sum() == 120
        assert figures["params"] == 21386 and len(figures["epoch_seconds"]) == 2
    assert set(summary["histories"]["torch"]) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    for name in ("confusion_matrices.png", "roc_compare.png", "history_compare.png"):
        assert (comparison / "figures" / name).stat().st_size > 1000


def test_agreement_is_computed_from_the_two_saved_models(comparison):
    from cnnlab.datasets import load_dataset, prepare_images

    summary = json.loads((comparison / "comparison.json").read_text())
    x = prepare_images(load_dataset("digits").x_test[:120])
    a, b = (load_model(comparison / f"{e}.cnnlab").predict(x) for e in ("numpy", "torch"))
    assert summary["agreement"]["same_prediction_share"] == pytest.approx(
        (a.argmax(1) == b.argmax(1)).mean()
    )
    assert summary["agreement"]["max_abs_prob_diff"] == pytest.approx(np.abs(a - b).max(), abs=1e-6)


NO_DROPOUT_MODEL = {
    "layers": [
        {
            "class_name": "Conv2D",
            "config": {
                "name": "conv2d",
                "filters": 4,
                "kernel_size": [3, 3],
                "activation": "relu",
            },
        },
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {
            "class_name": "Dense",
            "config": {"name": "dense", "units": 10, "activation": "softmax"},
        },
    ]
}  # no Dropout: nothing random in training once the weights and batch order are shared


def test_both_engines_started_from_the_same_weights(tmp_path, capsys):
    """With no dropout, SGD and one epoch, identical start and batch order give near-identical
    weights."""
    model = tmp_path / "nodrop.json"
    model.write_text(json.dumps(NO_DROPOUT_MODEL))
    out = tmp_path / "run"
    assert (
        main(
            [
                "compare",
                *ARGS[:-4],
                "--epochs",
                "1",
                "--train-size",
                "200",
                "--batch-size",
                "20",
                "--optimizer",
                "sgd",
                "--model",
                str(model),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    a, b = (load_model(out / f"{e}.cnnlab").get_weights() for e in ("numpy", "torch"))
    for wa, wb in zip(a, b):
        np.testing.assert_allclose(wa, wb, atol=1e-5)


def test_report_shows_every_table_and_figure(comparison):
    page = (comparison / "report.html").read_text()
    for text in (
        "Side by side",
        "NumPy engine",
        "PyTorch",
        "Agreement",
        "Per class",
        "dropout masks differ",
    ):
        assert text in page
    assert page.count("data:image/png;base64,") == 3


def test_parity_mode_reports_every_layer_within_tolerance(tmp_path, capsys):
    out = tmp_path / "parity"
    assert (
        main(
            [
                "compare",
                "--parity",
                "--dataset",
                "digits",
                "--steps",
                "5",
                "--batch-size",
                "32",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    result = json.loads((out / "parity.json").read_text())
    quantities = {(r["quantity"], r["layer"]) for r in result["rows"]}
    assert ("loss", "") in quantities  # one loss row, which names no layer
    assert {layer for q, layer in quantities if q == "forward"} == {
        "conv2d",
        "max_pooling2d",
        "conv2d_1",
        "max_pooling2d_1",
        "flatten",
        "dropout",
        "dense",
    }
    assert {layer for q, layer in quantities if q == "gradient"} == {"conv2d", "conv2d_1", "dense"}
    assert max(r["max_abs"] for r in result["rows"] if r["quantity"] != "weights") < 1e-5
    assert "conv2d_1" in capsys.readouterr().out and (out / "report.html").exists()


def test_keras_reference_without_keras_is_a_clear_error(tmp_path, capsys, monkeypatch):
    import cnnlab.reference.keras

    monkeypatch.setattr(cnnlab.reference.keras, "keras_available", lambda: False)
    assert main(["compare", "--reference", "keras", "--out", str(tmp_path / "k")]) == 2
    assert "needs Keras 3" in capsys.readouterr().err


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_compare_with_keras_where_it_is_installed(tmp_path, capsys):
    import cnnlab.reference.keras

    if (
        not cnnlab.reference.keras.keras_available()
    ):  # not importorskip: that imports keras with its default
        pytest.skip("Keras 3 is not installed")  # backend (TensorFlow); cnnlab runs it on torch
    out = tmp_path / "keras"
    assert main(["compare", *ARGS, "--epochs", "1", "--reference", "keras", "--out", str(out)]) == 0
    summary = json.loads((out / "comparison.json").read_text())
    assert set(summary["engines"]) == {"numpy", "keras"} and summary["reference_name"] == "Keras 3"
    assert np.array(summary["engines"]["keras"]["confusion_matrix"]).sum() == 120
    assert "NumPy engine vs Keras 3 on digits" in (out / "report.html").read_text()
    assert load_model(out / "keras.cnnlab").count_params() == 21386
