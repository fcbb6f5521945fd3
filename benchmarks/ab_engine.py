"""A/B timing of engine versions: their training steps interleaved in one process.

    CNNLAB_DATA_DIR=../shared/data python benchmarks/ab_engine.py HEAD~1 HEAD [worktree]

Each argument is a git revision, or ``worktree`` for the files as they are now. The
``src/cnnlab/engine`` package of each is loaded side by side under its own name (the engine
imports NumPy only, so copies do not meet), each builds the same network with the same seed
(--network: the seed CNN by default, its BatchNormalization variant, or TensorFlow's CIFAR-10
CNN at batch 32 on random 32x32x3 images, as bench_keras_models.py builds them), and the
versions take turns: --per-turn training steps of one, then of the next, for --rounds rounds,
on the same batches. A slow spell of a shared machine then falls on
every version alike, which separate runs (bench_train.py's rounds) cannot promise; use this
to decide whether a change to the engine is faster, and bench_train.py for the figures
against PyTorch.

Prints the median ms per step of each version and its ratio to the first, and writes
benchmarks/results/ab_engine.json.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import io
import json
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from blas_info import blas_kernels, describe
from threadpoolctl import threadpool_limits

from cnnlab import models
from cnnlab.datasets import mnist

ROOT = Path(__file__).resolve().parent.parent
ENGINE = "src/cnnlab/engine"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "versions", nargs="+", help="git revisions, or 'worktree' for the files as they are"
    )
    parser.add_argument("--rounds", type=int, default=12, help="turns of every version")
    parser.add_argument(
        "--per-turn", type=int, default=10, help="training steps of one version per turn"
    )
    parser.add_argument(
        "--network", choices=tuple(NETWORKS), default="seed-cnn", help="the network timed"
    )
    parser.add_argument("--batch-size", type=int, help="default: the network's (128, CIFAR 32)")
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "ab_engine.json"))
    return parser.parse_args(argv)


def export_engine(version: str, folder: Path) -> Path:
    """The engine package of a revision (or of the working tree), copied under folder."""
    target = folder / "engine"
    folder.mkdir(parents=True, exist_ok=True)
    if version == "worktree":
        shutil.copytree(ROOT / ENGINE, target)
        return target
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", version, ENGINE], capture_output=True, check=False
    )
    if archive.returncode != 0:
        raise SystemExit(
            f"ab_engine: cannot read {ENGINE} at {version!r}: {archive.stderr.decode().strip()}"
        )
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(folder, filter="data")
    shutil.move(str(folder / ENGINE), target)
    return target


def load_engine(package_dir: Path, name: str) -> ModuleType:
    """Import a copy of the engine as the top-level package ``name``."""
    spec = importlib.util.spec_from_file_location(
        name, package_dir / "__init__.py", submodule_search_locations=[str(package_dir)]
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


NETWORKS = ("seed-cnn", "seed-cnn-bn", "cifar10-cnn")


def network_config(name: str) -> tuple[dict[str, Any], bool, int]:
    """(the network's get_config, whether its loss takes logits, its batch size), from the
    engine as it is: the seed CNN of design.md (the built-in seed-cnn config), or
    bench_keras_models.py's network."""
    if name == "seed-cnn":
        return models.model_config("seed-cnn", (28, 28, 1), 10), False, 128
    from bench_keras_models import NETWORKS as SHAPES
    from bench_keras_models import engine_model

    model = engine_model(name, 0)
    return model.get_config(), bool(getattr(model.loss, "from_logits", False)), SHAPES[name][1]


def build_network(package: str, config: dict[str, Any], from_logits: bool) -> Any:
    """The network built by one engine copy, compiled for one-hot targets."""
    engine = importlib.import_module(package)  # every engine version exports Sequential at its top
    net = engine.Sequential.from_config(config, seed=0)
    loss = importlib.import_module(f"{package}.losses").CategoricalCrossentropy(
        from_logits=from_logits
    )
    net.compile(loss=loss, optimizer="adam", metrics=["accuracy"])
    return net


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    config, from_logits, batch_size = network_config(args.network)
    args.batch_size = args.batch_size or batch_size
    with tempfile.TemporaryDirectory() as folder:
        nets = load_versions(args.versions, Path(folder), config, from_logits)
        x, y = training_images(args.batch_size, nets[0].input_shape)
        with threadpool_limits(limits=args.threads, user_api="blas"):
            seconds = interleaved_step_seconds(nets, x, y, args)
    argv = argv if argv is not None else sys.argv[1:]
    result = {**summarize(args, argv, seconds), "blas": blas_kernels()}
    for row in result["versions"]:
        print(
            f"{row['version']:>20}: {row['step_ms_median']:6.2f} ms per step (p10 "
            f"{row['step_ms_p10']:.2f}), "
            f"{row['ratio_to_first']:.3f} x {args.versions[0]}"
        )
    print(describe(result["blas"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


def load_versions(
    versions: list[str], folder: Path, config: dict[str, Any], from_logits: bool
) -> list[Any]:
    """The network built by each version's engine, the copies exported under folder."""
    engines = [export_engine(version, folder / str(k)) for k, version in enumerate(versions)]
    return [
        build_network(load_engine(engine, f"ab_engine_{k}").__name__, config, from_logits)
        for k, engine in enumerate(engines)
    ]


def training_images(batch_size: int, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """50 batches: the first MNIST training images, (N, 28, 28, 1) in [0, 1], for a 28x28x1
    network, else uniform noise in [0, 1) of the network's input shape (CIFAR-10 is not on
    every machine); one-hot labels (N, 10)."""
    if tuple(shape) == (28, 28, 1):
        (x_train, y_train), _ = mnist.load_data()
        images = min(len(x_train), 50 * batch_size)
        x = (x_train[:images].astype(np.float32) / 255).reshape(-1, 28, 28, 1)
        return x, np.eye(10, dtype=np.float32)[y_train[:images]]
    rng = np.random.default_rng(0)
    x = rng.random((50 * batch_size, *shape), dtype=np.float32)
    return x, np.eye(10, dtype=np.float32)[rng.integers(0, 10, len(x))]


def interleaved_step_seconds(
    nets: list[Any], x: np.ndarray, y: np.ndarray, args: argparse.Namespace
) -> list[list[float]]:
    """Seconds of every training step of each net: --per-turn steps of one, then of the next,
    for --rounds rounds, walking through the batches of x in order."""
    batches = len(x) // args.batch_size
    seconds: list[list[float]] = [[] for _ in nets]
    step = 0
    for _ in range(args.rounds):
        for k, net in enumerate(nets):
            for _ in range(args.per_turn):
                begin = (step % batches) * args.batch_size
                start = time.perf_counter()
                net.train_step(
                    x[begin : begin + args.batch_size], y[begin : begin + args.batch_size]
                )
                seconds[k].append(time.perf_counter() - start)
                step += 1
    return seconds


def summarize(
    args: argparse.Namespace, argv: list[str], seconds: list[list[float]]
) -> dict[str, Any]:
    """The JSON document: the command, the settings, and each version's median and 10th
    percentile ms per step and its ratio to the first version."""
    first_turn = args.per_turn  # the first turn of each version warms it up: not counted
    medians = [1e3 * statistics.median(s[first_turn:]) for s in seconds]
    return {
        "command": " ".join(["python", "benchmarks/ab_engine.py", *argv]),
        "settings": {
            k: getattr(args, k) for k in ("network", "rounds", "per_turn", "batch_size", "threads")
        },
        "versions": [
            {
                "version": v,
                "step_ms_median": m,
                "step_ms_p10": 1e3 * float(np.percentile(s[first_turn:], 10)),
                "ratio_to_first": m / medians[0],
            }
            for v, m, s in zip(args.versions, medians, seconds)
        ],
    }


if __name__ == "__main__":
    main()
