"""Training speed of the networks real Keras programs build: cnnlab's engine against plain PyTorch.

    CNNLAB_DATA_DIR=../shared/data python benchmarks/bench_keras_models.py [--rounds 6]

Three networks, each as a Keras program writes it (and as idiomatic PyTorch: nn.Conv2d,
nn.BatchNorm2d, torch.optim.Adam, NCHW):
- ``seed-cnn``: the keras.io MNIST convnet (seed 003), batch 128, 28x28x1;
- ``seed-cnn-bn``: the same with BatchNormalization between each convolution and its ReLU
  (convolutions without bias, as is usual before a BatchNormalization);
- ``cifar10-cnn``: TensorFlow's CIFAR-10 CNN tutorial (Conv 32, pool, Conv 64, pool, Conv 64,
  Dense 64, Dense 10 logits with from_logits=True), batch 32, 32x32x3.

Each network runs in a fresh process of its own, as a program that trains it would: what ran
before in the same process (another network's large arrays) changes how malloc serves the next
one, and PyTorch's step time by a third. In that process both engines take turns (engine, torch,
torch, engine, ...) for --rounds rounds of --steps training steps each, with the same number of
threads (--threads; NumPy's BLAS through threadpoolctl, torch.set_num_threads), so a machine
whose speed drifts or that other work shares hits both alike. Per round: median seconds per step
of each engine; the ratio of each round, and the median of the rounds' ratios; an epoch is
steps_per_epoch x the median step (MNIST: 422 steps, CIFAR-10: 1563). The minor page faults per
step of the process are recorded (both engines together), and the load average; a run whose
rounds' ratios differ by more than 15% is marked not trustworthy. --tuned-malloc runs the
processes with bench_train.py's allocator settings (both engines alike). Writes
benchmarks/results/bench_keras_models.json.
Target (issue 19): engine epoch <= 1.0 x PyTorch's for seed-cnn-bn and cifar10-cnn.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_train import TUNED_MALLOC
from blas_info import blas_kernels, describe

from cnnlab.runs import write_json

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "bench_keras_models.json"
RESULT_MARK = "bench_keras_models result: "
NETWORKS = {  # name -> (input shape, batch size, steps per epoch)
    "seed-cnn": ((28, 28, 1), 128, 422),
    "seed-cnn-bn": ((28, 28, 1), 128, 422),
    "cifar10-cnn": ((32, 32, 3), 32, 1563),
}


def engine_model(name: str, seed: int) -> Any:
    """The network as a Keras program builds it, on cnnlab's engine (cnnlab.keras)."""
    from cnnlab import keras

    if name == "cifar10-cnn":
        return cifar10_engine_model(keras, seed)
    return mnist_engine_model(keras, name, seed)


def cifar10_engine_model(keras: Any, seed: int) -> Any:
    """TensorFlow's CIFAR-10 tutorial CNN (Dense 10 logits), compiled with from_logits=True."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(32, 32, 3)),
            layers.Conv2D(32, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(64, activation="relu"),
            layers.Dense(10),
        ],
        seed=seed,
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    return model


def mnist_engine_model(keras: Any, name: str, seed: int) -> Any:
    """The seed MNIST CNN (seed-cnn), or its batch-normalized variant (seed-cnn-bn)."""
    layers = keras.layers
    model = keras.Sequential(
        [
            keras.Input(shape=(28, 28, 1)),
            *mnist_conv_blocks(layers, batch_norm=name == "seed-cnn-bn"),
            layers.Flatten(),
            layers.Dropout(0.5),
            layers.Dense(10, activation="softmax"),
        ],
        seed=seed,
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def mnist_conv_blocks(layers: Any, batch_norm: bool) -> list[Any]:
    """The two conv-pool blocks of the seed CNN; with batch_norm, Conv2D (no bias) ->
    BatchNormalization -> relu."""
    if batch_norm:
        return [
            layers.Conv2D(32, 3, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(64, 3, use_bias=False),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
        ]
    return [
        layers.Conv2D(32, 3, activation="relu"),
        layers.MaxPooling2D(2),
        layers.Conv2D(64, 3, activation="relu"),
        layers.MaxPooling2D(2),
    ]


def torch_model(name: str) -> Any:
    """The same network in idiomatic PyTorch (NCHW; the softmax folded into the loss)."""
    from torch import nn

    if name == "cifar10-cnn":
        return nn.Sequential(
            nn.Conv2d(3, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(1024, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )
    if name == "seed-cnn-bn":
        features = [
            nn.Conv2d(1, 32, 3, bias=False),
            nn.BatchNorm2d(32, eps=1e-3, momentum=0.01),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, bias=False),
            nn.BatchNorm2d(64, eps=1e-3, momentum=0.01),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
    else:
        features = [
            nn.Conv2d(1, 32, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3),
            nn.ReLU(),
            nn.MaxPool2d(2),
        ]
    return nn.Sequential(*features, nn.Flatten(), nn.Dropout(0.5), nn.Linear(1600, 10))


def training_data(name: str, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """MNIST for the MNIST networks when the data directory has it, else uniform noise of the same
    shape (the time of a step does not depend on the pixel values, beyond ReLU's zeros)."""
    shape, _, _ = NETWORKS[name]
    rng = np.random.default_rng(seed)
    if shape == (28, 28, 1):
        try:
            from cnnlab.datasets import mnist

            (x, y), _ = mnist.load_data(download=False)
            return (x[:count, ..., None] / np.float32(255)).astype(np.float32), y[:count].astype(
                np.int64
            )
        except Exception:  # noqa: BLE001 - no local MNIST: noise of the same shape
            pass
    return rng.random((count, *shape), dtype=np.float32), rng.integers(0, 10, count)


def engine_stepper(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    model = engine_model(name, seed)

    def step(batch: np.ndarray) -> None:
        model.train_step(x[batch], y[batch])

    return step


def torch_stepper(name: str, x: np.ndarray, y: np.ndarray, seed: int) -> Any:
    import torch
    import torch.nn.functional as F

    torch.manual_seed(seed)
    model = torch_model(name).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    x_nchw = np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # once, outside the timing
    labels = torch.from_numpy(y)

    def step(batch: np.ndarray) -> None:
        out = model(torch.from_numpy(x_nchw[batch]))
        loss = F.cross_entropy(out, labels[batch])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        loss.item()

    return step


def seconds_per_step(step: Any, batches: list[np.ndarray]) -> float:
    times = []
    for batch in batches:
        start = time.perf_counter()
        step(batch)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bench_network(name: str, args: argparse.Namespace) -> dict[str, Any]:
    """Alternating rounds of both engines on the same batches; medians and ratios."""
    _, batch_size, epoch_steps = NETWORKS[name]
    x, y = training_data(name, 4096, args.seed)
    rng = np.random.default_rng(args.seed)
    batches = [
        rng.choice(len(x), batch_size, replace=False) for _ in range(args.steps + args.warmup)
    ]
    steppers = {
        "numpy": engine_stepper(name, x, y, args.seed),
        "torch": torch_stepper(name, x, y, args.seed),
    }
    for step in steppers.values():
        seconds_per_step(step, batches[: args.warmup])
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    rounds = []
    for index in range(args.rounds):
        order = ("numpy", "torch") if index % 2 == 0 else ("torch", "numpy")
        timing = {
            engine: seconds_per_step(steppers[engine], batches[args.warmup :]) for engine in order
        }
        rounds.append(
            {**timing, "ratio": timing["numpy"] / timing["torch"], "load": os.getloadavg()[0]}
        )
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults
    ratios = [r["ratio"] for r in rounds]
    numpy_step = statistics.median(r["numpy"] for r in rounds)
    torch_step = statistics.median(r["torch"] for r in rounds)
    return {
        "network": name,
        "batch_size": batch_size,
        "steps_per_epoch": epoch_steps,
        "rounds": rounds,
        "numpy_epoch_seconds": numpy_step * epoch_steps,
        "torch_epoch_seconds": torch_step * epoch_steps,
        "ratio": statistics.median(ratios),
        "trustworthy": max(ratios) / min(ratios) <= 1.15,
        "minor_page_faults_per_step": faults / (2 * args.rounds * args.steps),
        "data": "MNIST"
        if NETWORKS[name][0] == (28, 28, 1) and x.max() > 0.99 and x.min() == 0
        else "noise",
    }


def round_ratios(row: dict[str, Any]) -> str:
    return " ".join(f"{r['ratio']:.2f}" for r in row["rounds"])


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds of both engines")
    parser.add_argument(
        "--steps", type=int, default=100, help="timed training steps per engine and round"
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=40,
        help="untimed steps first (PyTorch's step time settles over its first few dozen steps)",
    )
    parser.add_argument(
        "--threads", type=int, default=2, help="BLAS / torch threads of both engines"
    )
    parser.add_argument("--networks", nargs="+", default=list(NETWORKS), choices=list(NETWORKS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--tuned-malloc",
        action="store_true",
        help=f"run both engines with {' '.join(f'{k}={v}' for k, v in TUNED_MALLOC.items())}",
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--only", choices=list(NETWORKS), help=argparse.SUPPRESS)  # the child
    return parser.parse_args(argv)


def child(args: argparse.Namespace) -> None:
    """One network, both engines, in this (fresh) process; the row is printed on a marked line."""
    import torch
    from threadpoolctl import threadpool_limits

    torch.set_num_threads(args.threads)
    with threadpool_limits(limits=args.threads, user_api="blas"):
        row = bench_network(args.only, args)
    print(RESULT_MARK + json.dumps(row), flush=True)


def run_network(name: str, argv: list[str], env: dict[str, str]) -> dict[str, Any]:
    """bench_network(name) in a fresh process of its own."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *argv, "--only", name],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    marked = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not marked:
        raise RuntimeError(f"{name} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return json.loads(marked[-1][len(RESULT_MARK) :])


def main(argv: list[str] | None = None) -> dict[str, Any]:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    if args.only:
        child(args)
        return {}
    import torch

    env = {**os.environ, **(TUNED_MALLOC if args.tuned_malloc else {})}
    load_before = os.getloadavg()
    results = [run_network(name, argv, env) for name in args.networks]
    result = {
        "command": "python benchmarks/bench_keras_models.py " + " ".join(argv),
        "threads": args.threads,
        "steps": args.steps,
        "rounds": args.rounds,
        "process": "a fresh process per network, both engines in it taking turns",
        "malloc": {k: v for k, v in sorted(env.items()) if k.startswith("MALLOC_")},
        "load_before": load_before,
        "blas": blas_kernels(),
        "networks": results,
        "torch_version": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    for row in results:
        mark = (
            ""
            if row["trustworthy"]
            else "  (not trustworthy: the rounds disagree by more than 15%)"
        )
        print(
            f"{row['network']:>12}: engine {row['numpy_epoch_seconds']:6.1f} s/epoch, PyTorch "
            f"{row['torch_epoch_seconds']:6.1f} s/epoch, ratio {row['ratio']:.2f} "
            f"(rounds {round_ratios(row)}; {row['minor_page_faults_per_step']:.0f} minor page "
            f"faults per step){mark}"
        )
    print(describe(result["blas"]))
    write_json(args.out, result)
    return result


if __name__ == "__main__":
    main()
