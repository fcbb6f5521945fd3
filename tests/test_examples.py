"""Every program in examples/ runs, with small settings, so that none of them rots."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnlab.datasets.datadir import dataset_dir
from cnnlab.datasets.mnist import find_local_copy

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def run_example(name: str, *args: object, timeout: float = 120) -> str:
    """Run examples/NAME as a user would, from the repository root; returns its stdout."""
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *map(str, args)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "Traceback" not in done.stderr
    return done.stdout


def test_every_example_is_tested_and_described():
    programs = sorted(p.name for p in [*EXAMPLES.glob("*.py"), *EXAMPLES.glob("*.toml")])
    assert programs == [
        "compare_engines.py",
        "keras_mnist_convnet.py",
        "mnist_cnn.py",
        "pool_and_kernels.toml",
        "ring_band.py",
    ]
    readme = (EXAMPLES / "README.md").read_text()
    assert all(f"`{name}`" in readme for name in programs)


def test_the_unmodified_keras_program_runs_on_the_engine(tmp_path):
    """cnnlab run on the program as it is, its own 15 epochs, on a data directory holding the
    first 2,000 training and 500 test images of MNIST (mnist.npz), so that it takes seconds."""
    local = find_local_copy(dataset_dir("mnist"))
    if local is None:
        pytest.skip("MNIST is not in the data directory (set CNNLAB_DATA_DIR to ../shared/data)")
    from cnnlab.datasets import mnist

    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    (tmp_path / "mnist").mkdir()
    np.savez(
        tmp_path / "mnist" / "mnist.npz",
        x_train=x_train[:2000],
        y_train=y_train[:2000],
        x_test=x_test[:500],
        y_test=y_test[:500],
    )
    env = {**os.environ, "CNNLAB_DATA_DIR": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-m", "cnnlab.cli", "run", str(EXAMPLES / "keras_mnist_convnet.py")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (
        done.stderr.startswith("cnnlab: running")
        and "cnnlab NumPy engine" in done.stderr.splitlines()[0]
    )
    assert "2000 train samples" in done.stdout and "Epoch 15/15" in done.stdout
    assert float(re.search(r"Test accuracy: ([\d.]+)", done.stdout)[1]) > 0.9


def test_mnist_cnn(tmp_path):
    if find_local_copy(dataset_dir("mnist")) is None:
        pytest.skip("MNIST is not in the data directory (set CNNLAB_DATA_DIR to ../shared/data)")
    out = run_example("mnist_cnn.py", "--epochs", "1", "--train-size", "1000", "--test-size", "500")
    assert "x_train shape: (1000, 28, 28, 1)" in out
    assert "conv2d_1 (Conv2D)" in out and "Total params: 34,826" in out
    assert "Epoch 1/1" not in out  # Keras prints "Epoch i/N" only when N > 1
    accuracy = float(re.search(r"Test accuracy: ([\d.]+)", out)[1])
    assert 0.2 < accuracy <= 1  # one epoch on 900 images is already well above chance (0.1)
    assert re.search(r"Test loss: [\d.]+", out)


def test_ring_band(tmp_path):
    figure = tmp_path / "ring_band.png"
    out = run_example("ring_band.py", "--epochs", "10", "--samples", "3000", "--plot", figure)
    assert "Total params: 4,482" in out
    assert "Epoch 10/10" in out
    # about two thirds of the points are outside the band: a network that learned nothing scores
    # ~0.66
    assert float(re.search(r"Test accuracy: ([\d.]+)", out)[1]) > 0.72
    with Image.open(figure) as image:
        image.verify()
        assert image.size[0] > image.size[1]  # original and predicted side by side


def test_compare_engines(tmp_path):
    pytest.importorskip("torch")
    if find_local_copy(dataset_dir("mnist")) is None:
        pytest.skip("MNIST is not in the data directory (set CNNLAB_DATA_DIR to ../shared/data)")
    out = run_example(
        "compare_engines.py", "--epochs", "1", "--train-size", "600", "--test-size", "200"
    )
    accuracies = [
        float(a) for a in re.findall(r"(?:numpy engine|pytorch): accuracy (0\.\d{4})", out)
    ]
    assert (
        len(accuracies) == 2 and min(accuracies) > 0.3
    )  # one epoch on 540 images: well above chance (0.1)
    assert (
        float(re.search(r"predict the same class for (\d+\.\d+)% of the test images", out)[1]) > 50
    )


def test_pool_and_kernels_study(tmp_path):
    if find_local_copy(dataset_dir("mnist")) is None:
        pytest.skip("MNIST is not in the data directory (set CNNLAB_DATA_DIR to ../shared/data)")
    spec = tmp_path / "small.toml"  # the example, on fewer images so the test stays quick
    spec.write_text(
        (EXAMPLES / "pool_and_kernels.toml")
        .read_text()
        .replace("epochs = 2", "epochs = 1")
        .replace("train_size = 2000", "train_size = 300")
        .replace("test_size = 500", "test_size = 100")
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "cnnlab.cli",
            "study",
            str(spec),
            "--jobs",
            "1",
            "--out",
            str(tmp_path / "s"),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert (tmp_path / "s" / "study.sqlite").exists() and (tmp_path / "s" / "report.html").exists()
