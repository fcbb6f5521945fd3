"""Training speed on a busy machine: cnnlab's engine and PyTorch, quiet and with one core taken.

    CNNLAB_DATA_DIR=../shared/data python benchmarks/bench_busy.py [--epochs 3] [--digits-epochs 20]

A learner's laptop is rarely idle. This script measures, in one process, each network's
training epoch (median over epochs) in four situations, in this order: quiet; then, while a
second process started by the script keeps one core busy (``while True: pass``), the engine
with its BLAS threads fitted to the free cores (``engine.threads``, the default), the engine
with its BLAS fixed at 2 threads (the behaviour before), and PyTorch with its default threads
(as a user runs it). Networks:
- the seed CNN on MNIST (batch 128; --steps batches form one timed "epoch", scaled to 422);
- the seed-cnn-same CNN on scikit-learn's 8x8 digits (batch 128, the whole training set).
The engine trains through ``model.fit`` (so the thread fitting runs as it does for a user);
PyTorch through a plain loop. Writes benchmarks/results/bench_busy.json.
Targets (issue 16): loaded engine <= 1.5 x its quiet time, and <= 0.5 x PyTorch's loaded time.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from blas_info import blas_kernels, describe

from cnnlab import models
from cnnlab.connect import connect_engine
from cnnlab.runs import write_json

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "bench_busy.json"
MNIST_STEPS_PER_EPOCH = 422


def mnist_data(count: int) -> tuple[np.ndarray, np.ndarray]:
    from cnnlab.datasets import mnist

    (x, y), _ = mnist.load_data()
    return (x[:count, ..., None] / np.float32(255)).astype(np.float32), y[:count].astype(np.int64)


def digits_data() -> tuple[np.ndarray, np.ndarray]:
    from cnnlab.datasets import digits

    (x, y), _ = digits.load_data()
    return (x[..., None] / np.float32(16)).astype(np.float32), y.astype(np.int64)


def engine_epoch_seconds(
    config_name: str, x: np.ndarray, y: np.ndarray, epochs: int
) -> list[float]:
    """model.fit's own training time per epoch (validation excluded), the first epoch dropped."""
    model = models.build_model(models.model_config(config_name, x.shape[1:], 10), 10, 0)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=128, epochs=epochs + 1, verbose=0)
    return history.epoch_seconds[1:]


def torch_network(config_name: str, channels_hw: tuple[int, int]) -> Any:
    from torch import nn

    padding = 1 if config_name == "seed-cnn-same" else 0
    h, w = channels_hw
    for _ in range(2):
        h, w = (h + 2 * padding - 2) // 2, (w + 2 * padding - 2) // 2
    return nn.Sequential(
        nn.Conv2d(1, 32, 3, padding=padding),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=padding),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(64 * h * w, 10),
    )


def torch_epoch_seconds(config_name: str, x: np.ndarray, y: np.ndarray, epochs: int) -> list[float]:
    """A plain PyTorch training loop (Adam, cross-entropy, batch 128), the first epoch dropped."""
    import torch
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = torch_network(config_name, x.shape[1:3]).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    xt, yt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))), torch.from_numpy(y)
    rng = np.random.default_rng(0)
    seconds = []
    for _ in range(epochs + 1):
        order = torch.from_numpy(rng.permutation(len(x)))
        start = time.perf_counter()
        for begin in range(0, len(x), 128):
            batch = order[begin : begin + 128]
            loss = F.cross_entropy(model(xt[batch]), yt[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss.item()
        seconds.append(time.perf_counter() - start)
    return seconds[1:]


@contextlib.contextmanager
def one_core_busy() -> Iterator[None]:
    """A second process that keeps one core busy until the block ends."""
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(1.0)  # let the scheduler settle it on a core, and the load figures see it
        yield
    finally:
        busy.kill()
        busy.wait()


@contextlib.contextmanager
def blas_fixed(count: int | None) -> Iterator[None]:
    """CNNLAB_THREADS=count for the block (None: the default, threads fitted to the free cores)."""
    saved = os.environ.pop("CNNLAB_THREADS", None)
    if count is not None:
        os.environ["CNNLAB_THREADS"] = str(count)
    try:
        yield
    finally:
        os.environ.pop("CNNLAB_THREADS", None)
        if saved is not None:
            os.environ["CNNLAB_THREADS"] = saved


def measure(name: str, x: np.ndarray, y: np.ndarray, epochs: int, scale: float) -> dict[str, Any]:
    """The four situations for one network; epoch seconds scaled to a full epoch."""

    def median(values: list[float]) -> float:
        return statistics.median(values) * scale

    quiet = {
        "engine": median(engine_epoch_seconds(name, x, y, epochs)),
        "torch": median(torch_epoch_seconds(name, x, y, epochs)),
    }
    with one_core_busy():
        loaded = {"engine": median(engine_epoch_seconds(name, x, y, epochs))}
        with blas_fixed(2):
            loaded["engine_two_threads"] = median(engine_epoch_seconds(name, x, y, epochs))
        loaded["torch"] = median(torch_epoch_seconds(name, x, y, epochs))
    return {
        "quiet": quiet,
        "one_core_busy": loaded,
        "engine_loaded_over_quiet": loaded["engine"] / quiet["engine"],
        "engine_over_torch_loaded": loaded["engine"] / loaded["torch"],
        "engine_over_torch_quiet": quiet["engine"] / quiet["torch"],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=60, help="MNIST batches per timed epoch")
    parser.add_argument("--epochs", type=int, default=3, help="timed MNIST epochs per situation")
    parser.add_argument(
        "--digits-epochs", type=int, default=20, help="timed digits epochs per situation"
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args(argv)
    connect_engine()
    x, y = mnist_data(args.steps * 128)
    dx, dy = digits_data()
    results = {
        "seed-cnn on MNIST": measure(
            "seed-cnn", x, y, args.epochs, MNIST_STEPS_PER_EPOCH / args.steps
        ),
        "seed-cnn-same on digits": measure("seed-cnn-same", dx, dy, args.digits_epochs, 1.0),
    }
    result = {
        "command": "python benchmarks/bench_busy.py " + " ".join(argv or sys.argv[1:]),
        "networks": results,
        "load_before": os.getloadavg(),
        "blas": blas_kernels(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for name, row in results.items():
        quiet, loaded = row["quiet"], row["one_core_busy"]
        print(
            f"{name}: quiet engine {quiet['engine']:.3f} s, torch {quiet['torch']:.3f} s; one "
            "core busy: engine "
            f"{loaded['engine']:.3f} s (fixed 2 threads {loaded['engine_two_threads']:.3f} s), "
            "torch "
            f"{loaded['torch']:.3f} s; engine loaded/quiet {row['engine_loaded_over_quiet']:.2f}, "
            "engine/torch "
            f"loaded {row['engine_over_torch_loaded']:.2f}"
        )
    print(describe(result["blas"]))
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
