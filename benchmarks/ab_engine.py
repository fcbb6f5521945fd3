"""A/B timing of engine versions: their training steps interleaved in one process.

    CNNLAB_DATA_DIR=../shared/data python benchmarks/ab_engine.py HEAD~1 HEAD [worktree]

Each argument is a git revision, or ``worktree`` for the files as they are now. The
``src/cnnlab/engine`` package of each is loaded side by side under its own name (the engine
imports NumPy only, so copies do not meet), each builds the seed CNN with the same seed,
and the versions take turns: --per-turn training steps of one, then of the next, for
--rounds rounds, on the same MNIST batches. A slow spell of a shared machine then falls on
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
    parser.add_argument("--batch-size", type=int, default=128)
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


def seed_cnn(package: str) -> Any:
    """The seed MNIST CNN of design.md (the built-in seed-cnn config), built by one engine copy."""
    engine = importlib.import_module(package)  # every engine version exports Sequential at its top
    net = engine.Sequential.from_config(models.model_config("seed-cnn", (28, 28, 1), 10), seed=0)
    net.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return net


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        nets = load_versions(args.versions, Path(folder))
        x, y = training_images(args.batch_size)
        with threadpool_limits(limits=args.threads, user_api="blas"):
            seconds = interleaved_step_seconds(nets, x, y, args)
    argv = argv if argv is not None else sys.argv[1:]
    result = summarize(args, argv, seconds)
    for row in result["versions"]:
        print(
            f"{row['version']:>20}: {row['step_ms_median']:6.2f} ms per step (p10 "
            f"{row['step_ms_p10']:.2f}), "
            f"{row['ratio_to_first']:.3f} x {args.versions[0]}"
        )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


def load_versions(versions: list[str], folder: Path) -> list[Any]:
    """The seed CNN built by each version's engine, the copies exported under folder."""
    engines = [export_engine(version, folder / str(k)) for k, version in enumerate(versions)]
    return [
        seed_cnn(load_engine(engine, f"ab_engine_{k}").__name__) for k, engine in enumerate(engines)
    ]


def training_images(batch_size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first 50 batches of MNIST training images, (N, 28, 28, 1) in [0, 1], and their
    one-hot labels (N, 10)."""
    (x_train, y_train), _ = mnist.load_data()
    images = min(len(x_train), 50 * batch_size)
    x = (x_train[:images].astype(np.float32) / 255).reshape(-1, 28, 28, 1)
    y = np.eye(10, dtype=np.float32)[y_train[:images]]
    return x, y


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
        "settings": {k: getattr(args, k) for k in ("rounds", "per_turn", "batch_size", "threads")},
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
