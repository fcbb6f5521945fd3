"""The `cnnlab` command driven as a user drives it (issue 2's acceptance tests).

In-process through ``cnnlab.cli.main(argv) -> exit code`` with pytest's capsys, and through
the installed console script in a subprocess. Every run is tiny (a few hundred images, one
or two epochs) and every bad input must give exit code 2, one line on stderr, and no traceback.
"""

from __future__ import annotations

import csv
import gzip
import json
import math
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import cnnlab
from cnnlab import Sequential
from cnnlab.cli import cli, main
from cnnlab.datasets import digits, prepare_images
from cnnlab.datasets.datadir import dataset_dir
from cnnlab.datasets.mnist import find_local_copy
from cnnlab.explore import EXPLORE_FIGURES
from cnnlab.training import TrainSettings, load_data

DIGITS_TRAIN = [
    "--dataset",
    "digits",
    "--epochs",
    "2",
    "--train-size",
    "300",
    "--test-size",
    "100",
    "--batch-size",
    "32",
    "--seed",
    "3",
]
METRICS_KEYS = {
    "test_loss",
    "test_accuracy",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc_ovr",
    "confusion_matrix",
    "params",
    "epoch_seconds",
    "engine",
    "dataset",
}
HISTORY_COLUMNS = ["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds"]
RUN_FILES = {
    "config.json",
    "model.cnnlab",
    "history.csv",
    "metrics.json",
    "summary.txt",
    "report.html",
}
SUMMARY_ROW = re.compile(r"│ (\w+) \((\w+)\)\s*│ (\([^)]*\))\s*│\s*([\d,]+) │")
PREDICT_LINE = re.compile(r"^(?P<path>.+): (?P<top>\S+)  \((?P<ranked>.*)\)$")


def cli_run(capsys: pytest.CaptureFixture[str], *argv: object) -> tuple[int, str, str]:
    """Run `cnnlab ARGV` in-process: (exit code, stdout, stderr)."""
    code = main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def console_script(*argv: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run the installed `cnnlab` console script (the one beside this Python)."""
    script = shutil.which("cnnlab", path=str(Path(sys.executable).parent)) or "cnnlab"
    return subprocess.run(
        [script, *map(str, argv)], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def assert_one_line_error(code: int, out: str, err: str, *fragments: str) -> None:
    """Exit code 2, nothing on stdout, one `cnnlab: error:` line naming the problem, no
    traceback."""
    assert "Traceback" not in out + err
    assert code == 2, err
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("cnnlab: error: ")
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(autouse=True)
def in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every command from a scratch folder, so that a default runs/ never lands in the
    repository."""
    monkeypatch.chdir(tmp_path)


# ----------------------------------------------------------------- a run, read back


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny training run on the bundled digits, shared by the tests that read it."""
    run = tmp_path_factory.mktemp("digits") / "run"
    assert main(["train", *DIGITS_TRAIN, "--out", str(run)]) == 0
    return run


@pytest.fixture(scope="module")
def digits_test_data() -> object:
    return load_data(TrainSettings(dataset="digits", train_size=2, test_size=100))


def read_history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv", newline="") as file:
        reader = csv.DictReader(file)
        assert reader.fieldnames == HISTORY_COLUMNS
        return list(reader)


def check_run_directory(run: Path, data: object, dataset: str, epochs: int, training: dict) -> None:
    """Read back every file of a run directory and check it against the data and a re-evaluation."""
    assert RUN_FILES <= {p.name for p in run.iterdir()}
    config = json.loads((run / "config.json").read_text())
    assert config["dataset"] == dataset and config["engine"] == "numpy"
    assert {key: config["training"][key] for key in training} == training
    assert config["model"]["layers"][0]["config"]["batch_shape"] == [None, *data.input_shape]

    model = cnnlab.load_model(run / "model.cnnlab")
    assert Sequential.from_config(config["model"]).get_config() == model.get_config()
    metrics = json.loads((run / "metrics.json").read_text())
    check_metrics(metrics, model, data, dataset, epochs)
    check_history(run, metrics, epochs)
    check_summary(run, model)
    check_figures_and_report(run, metrics)


def check_metrics(metrics: dict, model: object, data: object, dataset: str, epochs: int) -> None:
    """metrics.json against the model's own predictions on the test set."""
    y_prob = model.predict(data.x_test, verbose=0)
    y_pred = y_prob.argmax(axis=1)
    k = data.num_classes
    confusion = np.zeros((k, k), dtype=int)
    np.add.at(confusion, (data.y_test, y_pred), 1)

    assert METRICS_KEYS <= set(metrics)
    assert metrics["confusion_matrix"] == confusion.tolist()
    assert np.sum(metrics["confusion_matrix"]) == len(data.y_test)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(y_pred == data.y_test))
    assert metrics["test_loss"] == pytest.approx(
        -np.mean(np.log(y_prob[np.arange(len(y_pred)), data.y_test])), rel=1e-4
    )
    for key in ("precision_macro", "recall_macro", "f1_macro", "roc_auc_ovr"):
        assert 0 <= metrics[key] <= 1
    assert metrics["params"] == model.count_params()
    assert len(metrics["epoch_seconds"]) == epochs and all(s > 0 for s in metrics["epoch_seconds"])
    assert (metrics["engine"], metrics["dataset"]) == ("numpy", dataset)


def check_history(run: Path, metrics: dict, epochs: int) -> None:
    """history.csv: one finite row per epoch, its seconds those of metrics.json."""
    rows = read_history(run)
    assert [int(row["epoch"]) for row in rows] == list(range(1, epochs + 1))
    for row in rows:
        assert math.isfinite(float(row["loss"])) and float(row["loss"]) > 0
        assert 0 <= float(row["accuracy"]) <= 1 and 0 <= float(row["val_accuracy"]) <= 1
    assert [float(row["seconds"]) for row in rows] == pytest.approx(metrics["epoch_seconds"])


def check_summary(run: Path, model: object) -> None:
    """summary.txt is the model's own summary()."""
    lines: list[str] = []
    model.summary(print_fn=lines.append)
    assert (run / "summary.txt").read_text() == "\n".join(lines) + "\n"
    assert f"Total params: {model.count_params():,}" in (run / "summary.txt").read_text()


def check_figures_and_report(run: Path, metrics: dict) -> None:
    """Valid PNG figures, and a report that shows the test accuracy and embeds every figure."""
    figures = sorted((run / "figures").glob("*.png"))
    assert {"history.png", "confusion_matrix.png"} <= {f.name for f in figures}
    for figure in figures:
        with Image.open(figure) as image:
            image.verify()
            assert image.format == "PNG" and min(image.size) > 50

    report = (run / "report.html").read_text()
    assert "Test accuracy" in report and f"{metrics['test_accuracy']:.4f}" in report
    assert report.count("data:image/png;base64,") >= len(figures)


def test_train_digits_writes_every_file_of_the_run_directory(digits_run, digits_test_data):
    training = {
        "dataset": "digits",
        "epochs": 2,
        "batch_size": 32,
        "train_size": 300,
        "test_size": 100,
        "seed": 3,
        "optimizer": "adam",
        "validation_split": 0.1,
        "engine": "numpy",
    }
    check_run_directory(digits_run, digits_test_data, "digits", epochs=2, training=training)


@pytest.fixture(scope="module")
def mnist_available() -> None:
    if find_local_copy(dataset_dir("mnist")) is None:
        pytest.skip("MNIST is not in the data directory (set CNNLAB_DATA_DIR to ../shared/data)")


def test_train_and_evaluate_on_real_mnist(mnist_available, capsys, tmp_path):
    run = tmp_path / "mnist"
    code, out, err = cli_run(
        capsys, "train", "--epochs", "1", "--train-size", "512", "--test-size", "200", "--out", run
    )
    assert code == 0, err
    assert (
        "Total params: 34,826" in out and "Test metrics" in out and f"Run directory: {run}" in out
    )
    assert "Epoch 1/1" in err and "val_accuracy" in err
    data = load_data(TrainSettings(dataset="mnist", train_size=2, test_size=200))
    training = {
        "dataset": "mnist",
        "model": "seed-cnn",
        "epochs": 1,
        "batch_size": 128,
        "train_size": 512,
        "test_size": 200,
    }
    check_run_directory(run, data, "mnist", epochs=1, training=training)

    code, out, err = cli_run(
        capsys, "evaluate", run, "--test-size", "200", "--json", tmp_path / "again.json"
    )
    assert code == 0, err
    saved, again = (
        json.loads(p.read_text()) for p in (run / "metrics.json", tmp_path / "again.json")
    )
    assert again["confusion_matrix"] == saved["confusion_matrix"]
    assert again["test_accuracy"] == saved["test_accuracy"]
    assert f"{saved['test_accuracy']:.4f}" in out


# ------------------------------------------------------------------- evaluate, predict


def test_evaluate_prints_and_writes_the_run_metrics(digits_run, capsys, tmp_path):
    code, out, err = cli_run(
        capsys, "evaluate", digits_run, "--test-size", "100", "--json", tmp_path / "m.json"
    )
    assert code == 0, err
    saved = json.loads((digits_run / "metrics.json").read_text())
    again = json.loads((tmp_path / "m.json").read_text())
    assert METRICS_KEYS <= set(again)
    assert again["confusion_matrix"] == saved["confusion_matrix"]
    for key in ("test_accuracy", "test_loss", "f1_macro", "roc_auc_ovr"):
        assert again[key] == pytest.approx(saved[key], rel=1e-5)
        assert key in out
    assert f"{saved['test_accuracy']:.4f}" in out and f"{saved['params']:,}" in out


def test_evaluate_finds_a_dataset_given_by_path(digits_run, capsys, tmp_path):
    """A run trained on `--dataset my_digits.npz` is evaluated on that file again, not on a dataset
    'my_digits'."""
    (x_train, y_train), (x_test, y_test) = digits.load_data()
    npz = tmp_path / "my_digits.npz"
    np.savez(npz, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)
    run = tmp_path / "run"
    shutil.copytree(digits_run, run)
    config = json.loads((run / "config.json").read_text())
    config["dataset"], config["training"]["dataset"] = (
        "my_digits",
        str(npz),
    )  # as `cnnlab train` writes them
    (run / "config.json").write_text(json.dumps(config))
    code, out, err = cli_run(
        capsys, "evaluate", run, "--test-size", "100", "--json", tmp_path / "m.json"
    )
    assert code == 0, err
    again = json.loads((tmp_path / "m.json").read_text())
    assert again["dataset"] == "my_digits"
    assert (
        again["confusion_matrix"]
        == json.loads((digits_run / "metrics.json").read_text())["confusion_matrix"]
    )


def save_png(path: Path, pixels: np.ndarray, size: int | None = None, mode: str = "L") -> Path:
    image = Image.fromarray(pixels.astype(np.uint8), mode="L")
    if size:
        image = image.resize((size, size), Image.Resampling.NEAREST)
    image.convert(mode).save(path)
    return path


def parse_predictions(out: str) -> dict[str, tuple[str, dict[str, float]]]:
    """{path: (top class, {class: probability})} from predict's lines."""
    found = {}
    for line in out.strip().splitlines():
        match = PREDICT_LINE.match(line)
        assert match, line
        ranked = dict(item.split(": ") for item in match["ranked"].split(", "))
        found[match["path"]] = (match["top"], {name: float(p) for name, p in ranked.items()})
    return found


def test_predict_prints_class_and_top_probabilities(digits_run, capsys, tmp_path):
    (_, _), (x_test, _) = digits.load_data()
    digit = x_test[0]
    native = save_png(
        tmp_path / "native[red].png", digit
    )  # light on dark, the model's own 8x8; no rich markup
    large = save_png(tmp_path / "large.png", digit, size=40)  # another size
    paper = save_png(
        tmp_path / "paper.png", 255 - digit, size=40, mode="RGB"
    )  # dark on light, in colour
    code, out, err = cli_run(capsys, "predict", digits_run, native, large, paper, "--top", "3")
    assert code == 0, err
    found = parse_predictions(out)
    assert list(found) == [str(native), str(large), str(paper)]

    expected = cnnlab.load_model(digits_run / "model.cnnlab").predict(
        prepare_images(digit[None]), verbose=0
    )[0]
    top, probabilities = found[str(native)]
    assert top == str(int(expected.argmax()))
    assert len(probabilities) == 3
    for name, p in probabilities.items():
        assert p == pytest.approx(expected[int(name)], abs=1e-3)
    assert list(probabilities.values()) == sorted(probabilities.values(), reverse=True)

    # --invert auto turns the dark digit on light paper into MNIST's light on dark
    assert found[str(paper)][0] == found[str(large)][0]
    for name, p in found[str(large)][1].items():
        assert found[str(paper)][1][name] == pytest.approx(p, abs=0.02)
    code, out, _ = cli_run(capsys, "predict", digits_run, paper, "--invert", "no", "--top", "10")
    assert code == 0
    assert parse_predictions(out)[str(paper)][1] != found[str(paper)][1]


# ------------------------------------------------------------------------------ summary


def summary_params(out: str) -> dict[str, tuple[str, str, int]]:
    """{layer name: (class, output shape, parameters)} from a summary table."""
    return {m[1]: (m[2], m[3], int(m[4].replace(",", ""))) for m in SUMMARY_ROW.finditer(out)}


def test_summary_of_the_seed_cnn_matches_keras(capsys):
    code, out, err = cli_run(capsys, "summary", "seed-cnn")
    assert code == 0, err
    assert summary_params(out) == {
        "conv2d": ("Conv2D", "(None, 26, 26, 32)", 320),
        "max_pooling2d": ("MaxPooling2D", "(None, 13, 13, 32)", 0),
        "conv2d_1": ("Conv2D", "(None, 11, 11, 64)", 18_496),
        "max_pooling2d_1": ("MaxPooling2D", "(None, 5, 5, 64)", 0),
        "flatten": ("Flatten", "(None, 1600)", 0),
        "dropout": ("Dropout", "(None, 1600)", 0),
        "dense": ("Dense", "(None, 10)", 16_010),
    }
    assert "Total params: 34,826" in out


def test_summary_of_the_seed_dense_network(capsys):
    code, out, err = cli_run(
        capsys, "summary", "seed-dense", "--input-shape", "2", "--classes", "2"
    )
    assert code == 0, err
    assert {name: row[2] for name, row in summary_params(out).items()} == {
        "dense": 192,
        "dense_1": 4_160,
        "flatten": 0,
        "dropout": 0,
        "dense_2": 130,
    }
    assert "Total params: 4,482" in out


def test_summary_of_a_run_and_of_its_model_file(digits_run, capsys):
    for target in (digits_run, digits_run / "model.cnnlab"):
        code, out, err = cli_run(capsys, "summary", target)
        assert code == 0, err
        assert out == (digits_run / "summary.txt").read_text()


# ------------------------------------------------------------------------------ explore


def test_explore_digits_prints_the_table_and_writes_figures_and_report(capsys, tmp_path):
    code, out, err = cli_run(capsys, "explore", "digits", "--out", tmp_path / "explore")
    assert code == 0, err
    assert re.search(r"train\s*│\s*1347\s*│\s*\(8, 8\)\s*│\s*uint8", out)
    assert re.search(r"test\s*│\s*450\s*│", out)
    for name in EXPLORE_FIGURES:
        with Image.open(tmp_path / "explore" / "figures" / name) as image:
            image.verify()
    report = (tmp_path / "explore" / "report.html").read_text()
    assert report.count("data:image/png;base64,") == len(EXPLORE_FIGURES)


# --------------------------------------------------------------------------- bad input


def idx_file(path: Path, array: np.ndarray, magic: int | None = None, cut: int = 0) -> None:
    """An IDX file of unsigned bytes (gzipped when the name ends in .gz); `cut` drops trailing
    bytes."""
    array = np.asarray(array, dtype=np.uint8)
    header = (magic if magic is not None else 0x0800 | array.ndim).to_bytes(4, "big")
    header += b"".join(d.to_bytes(4, "big") for d in array.shape)
    content = (header + array.tobytes())[: -cut or None]
    path.write_bytes(gzip.compress(content) if path.suffix == ".gz" else content)


IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def idx_folder(folder: Path, **changes: dict) -> Path:
    """A tiny MNIST-format folder (20 train, 10 test images); ``changes[key]`` alters the file
    IDX_FILES[key]: ``absent``, ``suffix`` ("" for an uncompressed file), ``array``, ``magic``,
    ``cut`` (bytes dropped at the end)."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (20, 28, 28)),
        "train_labels": np.arange(20) % 10,
        "test_images": rng.integers(0, 256, (10, 28, 28)),
        "test_labels": np.arange(10),
    }
    folder.mkdir()
    for key, array in arrays.items():
        change = changes.get(key, {})
        if not change.get("absent"):
            path = folder / (IDX_FILES[key] + change.get("suffix", ".gz"))
            idx_file(path, change.get("array", array), change.get("magic"), change.get("cut", 0))
    return folder


def bad_idx(**changes: dict) -> Callable[[Path], list]:
    return lambda tmp: ["train", "--dataset", idx_folder(tmp / "idx", **changes), "--epochs", "1"]


def write(path: Path, text: str | bytes) -> Path:
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return path


def garbage_run(tmp: Path) -> Path:
    (tmp / "run").mkdir()
    write(tmp / "run" / "model.cnnlab", b"\x89 not a model at all" * 8)
    return tmp / "run"


SMALL_DIGITS = ["--dataset", "digits", "--train-size", "100", "--epochs", "1"]

BAD_INPUTS: dict[str, tuple[Callable[[Path], list], list[str]]] = {
    "unknown dataset": (
        lambda tmp: ["train", "--dataset", "cifar99"],
        ["unknown dataset 'cifar99'", "digits"],
    ),
    "unknown dataset to explore": (
        lambda tmp: ["explore", "cifar99"],
        ["unknown dataset 'cifar99'"],
    ),
    "missing IDX file": (
        bad_idx(test_labels={"absent": True}),
        ["missing", "t10k-labels-idx1-ubyte"],
    ),
    "truncated IDX file": (
        bad_idx(train_images={"suffix": "", "cut": 100}),
        ["train-images-idx3-ubyte", "truncated", "15680 bytes"],
    ),
    "truncated gzip": (
        lambda tmp: ["train", "--dataset", cut_gzip(idx_folder(tmp / "idx"))],
        ["corrupt or truncated gzip"],
    ),
    "wrong magic number": (
        bad_idx(train_labels={"magic": 0x0803}),
        ["train-labels-idx1-ubyte.gz", "wrong magic number 0x00000803", "0x00000801"],
    ),
    "labels out of range": (
        bad_idx(test_labels={"array": np.r_[np.arange(9), 12]}),
        ["t10k-labels-idx1-ubyte.gz", "outside 0..9", "12"],
    ),
    "different counts": (bad_idx(train_labels={"array": np.zeros(19)}), ["20 images", "19 labels"]),
    "model file with invalid JSON": (
        lambda tmp: ["train", *SMALL_DIGITS, "--model", write(tmp / "bogus.json", "{layers: [")],
        ["bogus.json", "not a model file"],
    ),
    "model file without layer tables": (
        lambda tmp: [
            "train",
            *SMALL_DIGITS,
            "--model",
            write(tmp / "m.json", '{"layers": [1, 2]}'),
        ],
        ["m.json", "not a model file"],
    ),
    "model file with an unknown layer": (
        lambda tmp: [
            "train",
            *SMALL_DIGITS,
            "--model",
            write(tmp / "m.json", '[{"class_name": "Conv3D", "config": {}}]'),
        ],
        ["unknown layer class 'Conv3D'"],
    ),
    "unknown built-in model": (
        lambda tmp: ["train", *SMALL_DIGITS, "--model", "resnet"],
        ["unknown model 'resnet'", "seed-cnn"],
    ),
    "garbage model file in a run": (
        lambda tmp: ["evaluate", garbage_run(tmp)],
        ["model.cnnlab", "not a cnnlab model file"],
    ),
    "evaluate a missing run": (
        lambda tmp: ["evaluate", tmp / "nope"],
        ["nope", "no such run directory"],
    ),
    "summary of a garbage model file": (
        lambda tmp: ["summary", garbage_run(tmp) / "model.cnnlab"],
        ["not a cnnlab model file"],
    ),
    "zero epochs": (
        lambda tmp: ["train", "--dataset", "digits", "--epochs", "0"],
        ["epochs must be at least 1, received 0"],
    ),
    "negative epochs": (
        lambda tmp: ["train", "--dataset", "digits", "--epochs", "-3"],
        ["epochs must be at least 1, received -3"],
    ),
    "batch larger than the data": (
        lambda tmp: ["train", *SMALL_DIGITS, "--batch-size", "500"],
        ["batch size 500 is larger than the 90 training images"],
    ),
    "output directory is a file": (
        lambda tmp: [
            "train",
            *SMALL_DIGITS,
            "--batch-size",
            "16",
            "--out",
            write(tmp / "taken", "x"),
        ],
        ["taken is a file"],
    ),
    "model that does not fit the images": (
        lambda tmp: ["train", "--model", "seed-cnn", "--dataset", "digits"],
        ["seed-cnn", "(8, 8, 1)", "max_pooling2d_1", "padding='same'"],
    ),
    "option of the wrong type": (
        lambda tmp: ["train", "--epochs", "many"],
        ["'--epochs'", "'many'", "cnnlab train --help"],
    ),
    "unknown option": (lambda tmp: ["train", "--epoch", "3"], ["--epoch", "cnnlab train --help"]),
    "unknown command": (lambda tmp: ["fit"], ["'fit'"]),
    "bad input shape": (lambda tmp: ["summary", "seed-cnn", "--input-shape", "28,x"], ["28,x"]),
}


def cut_gzip(folder: Path) -> Path:
    path = folder / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return folder


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_gives_exit_code_2_and_one_line(case, capsys, tmp_path):
    make_argv, fragments = BAD_INPUTS[case]
    code, out, err = cli_run(capsys, *make_argv(tmp_path))
    assert_one_line_error(code, out, err, *fragments)


def test_bad_inputs_to_a_trained_run(digits_run, capsys, tmp_path):
    code, out, err = cli_run(capsys, "predict", digits_run, tmp_path / "missing.png")
    assert_one_line_error(code, out, err, "missing.png", "no such image file")
    code, out, err = cli_run(
        capsys, "predict", digits_run, write(tmp_path / "text.png", "not a picture")
    )
    assert_one_line_error(code, out, err, "text.png", "not a readable image")
    code, out, err = cli_run(
        capsys, "evaluate", digits_run, "--dataset", idx_folder(tmp_path / "idx")
    )
    assert_one_line_error(code, out, err, "(8, 8, 1)", "(28, 28, 1)")


def test_debug_shows_the_traceback(capsys):
    for argv in (["--debug", "train"], ["train", "--debug"]):  # before or after the command
        code, out, err = cli_run(capsys, *argv, "--model", "seed-cnn", "--dataset", "digits")
        assert code == 2
        assert "Traceback (most recent call last)" in err
        assert err.strip().splitlines()[-1].startswith("cnnlab: error: model 'seed-cnn'")


def test_mnist_download_failure_names_the_problem_first(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("cnnlab.datasets.download.RETRY_BACKOFF_SECONDS", 0.0)
    with socket.socket() as closed:  # bound, never listening: connections are refused at once
        closed.bind(("127.0.0.1", 0))
        monkeypatch.setenv("CNNLAB_MNIST_MIRRORS", f"http://127.0.0.1:{closed.getsockname()[1]}/")
        code, out, err = cli_run(capsys, "train", "--data-dir", tmp_path / "data", "--epochs", "1")
    assert code == 2 and out == "" and "Traceback" not in err
    first = err.splitlines()[0]
    assert first.startswith("cnnlab: error: MNIST is not in") and "could not be downloaded" in first
    assert "--dataset digits" in err and "CNNLAB_DATA_DIR" in err
    assert not any(
        p.is_file() for p in (tmp_path / "data").rglob("*")
    )  # nothing partial left behind


# ------------------------------------------------------------------------------- help


@pytest.mark.parametrize("command", [[], *([name] for name in sorted(cli.commands))])
def test_help_says_what_with_an_example(command, capsys):
    code, out, err = cli_run(capsys, *command, "--help")
    assert code == 0, err
    assert out.startswith(f"Usage: cnnlab {' '.join(command)}".rstrip())
    assert "Example" in out


def test_console_script_help(tmp_path):
    done = console_script("--help", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Examples:" in done.stdout and "train" in done.stdout


# ------------------------------------------------------------------------ repeatability


def test_same_command_and_seed_give_identical_weights_and_history(digits_run, tmp_path):
    """The module's run (in-process) against the same command in a fresh `cnnlab` process."""
    done = console_script("train", *DIGITS_TRAIN, "--out", tmp_path / "again", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Test metrics" in done.stdout and "Epoch 2/2" in done.stderr
    first, second = (
        cnnlab.load_model(run / "model.cnnlab").get_weights()
        for run in (digits_run, tmp_path / "again")
    )
    assert len(first) == len(second)
    for a, b in zip(first, second):
        assert a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()
    losses = [
        [{k: row[k] for k in HISTORY_COLUMNS[1:5]} for row in read_history(run)]
        for run in (digits_run, tmp_path / "again")
    ]
    assert losses[0] == losses[1]
