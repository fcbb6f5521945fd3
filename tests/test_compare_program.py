"""`cnnlab compare PROGRAM.py`: a Keras program on the engine, replayed on real Keras 3 from the
same initial weights on the same batches; per-layer parity at the start, agreement after
training."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.reference.keras import keras_available

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(not keras_available(), reason="needs Keras 3 (the dev extra)"),
]

PROGRAMS = Path(__file__).parent / "programs" / "compare"
CHROMIUM = Path("/usr/bin/chromium")

# program -> (what it is evaluated on, layers with weights)
CASES = {
    "sequential_digits.py": ("the data of the program's evaluate()", {"conv2d", "dense"}),
    "functional_residual_digits.py": (
        "the data of the program's evaluate()",
        {"conv2d", "conv2d_1", "dense"},
    ),
    "batchnorm_digits.py": (
        "the data of the program's evaluate()",
        {"conv2d", "batch_normalization", "batch_normalization_1", "dense"},
    ),
    "logits_digits.py": ("the program's validation data", {"dense", "dense_1"}),
}


@pytest.fixture(scope="module")
def compared(tmp_path_factory) -> dict[str, Path]:
    """Each program compared once; the tests below read the directories."""
    out = {}
    for name in CASES:
        directory = tmp_path_factory.mktemp("compare") / Path(name).stem
        assert main(["compare", str(PROGRAMS / name), "--out", str(directory)]) == 0
        out[name] = directory
    return out


def summary_of(directory: Path) -> dict:
    return json.loads((directory / "comparison.json").read_text())


@pytest.mark.parametrize("name", sorted(CASES))
def test_both_engines_train_the_same_model_on_the_same_batches(compared, name):
    summary = summary_of(compared[name])
    source, _ = CASES[name]
    assert summary["program"] == name and summary["dataset"] == source
    numpy_history, keras_history = summary["histories"]["numpy"], summary["histories"]["keras"]
    assert (
        set(numpy_history) == set(keras_history)
        and len(numpy_history["loss"]) == len(keras_history["loss"]) > 1
    )
    for history in (numpy_history, keras_history):
        assert history["loss"][-1] < 0.7 * history["loss"][0]  # both trained
    # the first epoch's training loss: same weights, same batches, one engine's rounding against the
    # other's
    assert (
        abs(numpy_history["loss"][0] - keras_history["loss"][0]) < 0.05 * keras_history["loss"][0]
    )


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_layer_agrees_at_the_initial_weights(compared, name):
    rows = summary_of(compared[name])["parity"]
    _, trained = CASES[name]
    assert rows[0]["layer"] == "loss" and rows[0]["output_max_rel"] < 1e-5
    assert {row["layer"] for row in rows if row["grad_max_rel"] is not None} == trained
    for row in rows:
        assert row["output_max_rel"] < 1e-5, row  # float32: a few units of 1e-7 in practice
        assert row["grad_max_rel"] is None or row["grad_max_rel"] < 1e-4, row


@pytest.mark.parametrize("name", sorted(CASES))
def test_the_trained_models_predict_alike(compared, name):
    summary = summary_of(compared[name])
    assert summary["agreement"]["same_prediction_share"] >= 0.95  # measured: 0.97 to 1.00
    engines = summary["engines"]
    assert abs(engines["numpy"]["test_accuracy"] - engines["keras"]["test_accuracy"]) < 0.05
    assert engines["numpy"]["params"] == engines["keras"]["params"]
    assert len(engines["numpy"]["confusion_matrix"]) == 10


def test_the_directory_holds_both_trained_models_and_the_initial_one(compared):
    from cnnlab import load_model

    directory = compared["functional_residual_digits.py"]
    for name in ("initial.keras", "numpy.cnnlab", "keras.keras"):
        assert (directory / name).is_file()
    assert load_model(directory / "keras.keras").name == "residual_digits"
    assert {p.name for p in (directory / "figures").glob("*.png")} == {
        "confusion_matrices.png",
        "roc_compare.png",
        "history_compare.png",
    }


def test_cnnlab_report_rebuilds_a_program_comparison(compared, capsys):
    directory = compared["sequential_digits.py"]
    (directory / "report.html").unlink()
    assert main(["report", str(directory)]) == 0
    page = (directory / "report.html").read_text()
    assert (
        "sequential_digits.py" in page
        and "Parity at the initial weights" in page
        and "dropout masks" in page
    )


@pytest.mark.skipif(
    not CHROMIUM.exists(), reason="needs Chromium at /usr/bin/chromium (apt-get install chromium)"
)
def test_the_report_renders_in_chromium_with_every_image(compared, tmp_path):
    from test_report import dump_dom

    directory = compared["batchnorm_digits.py"]
    copy = tmp_path / "report.html"  # a copy: the page must carry its figures inside
    shutil.copy(directory / "report.html", copy)
    dom = dump_dom(copy, tmp_path / "profile")
    assert 'data-images-loaded="3/3"' in dom and "batch_normalization_1" in dom


def test_epochs_overrides_the_programs_own_and_says_so(tmp_path):
    out = tmp_path / "one"
    assert (
        main(
            ["compare", str(PROGRAMS / "sequential_digits.py"), "--epochs", "1", "--out", str(out)]
        )
        == 0
    )
    summary = summary_of(out)
    assert (
        len(summary["histories"]["numpy"]["loss"])
        == len(summary["histories"]["keras"]["loss"])
        == 1
    )
    assert (
        "Each fit ran for 1 epoch(s) (--epochs), not the program's own number." in summary["notes"]
    )


def test_what_cannot_be_compared_is_refused_in_one_line(tmp_path, capsys):
    program = tmp_path / "no_fit.py"
    program.write_text(
        "import keras\nmodel = keras.Sequential([keras.Input(shape=(2,)), keras.layers.Dense(1)])\n"
    )
    assert main(["compare", str(program), "--out", str(tmp_path / "a")]) == 2
    assert "trained no model (it never called model.fit)" in capsys.readouterr().err
    assert main(["compare", str(PROGRAMS / "sequential_digits.py"), "--dataset", "digits"]) == 2
    assert "its own settings are used; leave out --dataset" in capsys.readouterr().err
    failing = tmp_path / "fails.py"
    failing.write_text("raise SystemExit(3)\n")
    assert main(["compare", str(failing), "--out", str(tmp_path / "b")]) == 2
    assert "exited with code 3 on the NumPy engine" in capsys.readouterr().err


def test_the_pytorch_twin_replays_a_sequential_program(tmp_path, capsys):
    out = tmp_path / "torch"
    assert (
        main(
            [
                "compare",
                str(PROGRAMS / "sequential_digits.py"),
                "--reference",
                "torch",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    summary = summary_of(out)
    assert summary["reference"] == "torch" and set(summary["histories"]) == {"numpy", "torch"}
    assert len(summary["histories"]["torch"]["loss"]) == 12
    assert all(row["output_max_rel"] < 1e-5 for row in summary["parity"])
    assert {row["layer"] for row in summary["parity"] if row["grad_max_rel"] is not None} == {
        "conv2d",
        "dense",
    }
    assert all(
        row["grad_max_rel"] < 1e-4 for row in summary["parity"] if row["grad_max_rel"] is not None
    )
    assert summary["agreement"]["same_prediction_share"] >= 0.95
    assert (out / "torch.cnnlab").is_file()
    program = str(PROGRAMS / "functional_residual_digits.py")
    assert main(["compare", program, "--reference", "torch", "--out", str(tmp_path / "f")]) == 2
    assert "--reference torch replays Sequential models" in capsys.readouterr().err
