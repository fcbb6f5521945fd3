"""Training and inference speed of the seed CNN: cnnlab's NumPy engine against PyTorch.

    CNNLAB_DATA_DIR=../shared/data python benchmarks/bench_train.py [--batches 100] [--epochs 0]

Both engines train the seed MNIST CNN (Conv2D 32 3x3 relu, MaxPooling2D 2, Conv2D 64 3x3
relu, MaxPooling2D 2, Flatten, Dropout 0.5, Dense 10 softmax; Adam; categorical
cross-entropy; batch 128) on the same batches of the first 54,000 MNIST training images,
with the same number of threads. Each engine runs in its own subprocess (this script
started again with --only numpy|torch), so that its peak RSS and page faults are its own;
the rounds alternate the order (numpy, torch, torch, numpy, ...) and the figures are
medians over rounds. Also measured, each in a subprocess of its own: the float32 GFLOP/s
of a 2048^3 matmul (the BLAS floor) and a per-layer profile of the NumPy engine.

Prints the JSON and readable tables, and writes benchmarks/results/bench_train.json.
Targets (issue 3): numpy epoch <= 1.0 x torch's (goal 0.75 x), inference images/s >= torch's,
peak RSS <= torch's. See benchmarks/README.md for what each figure means.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from blas_info import blas_kernels, describe

from cnnlab import Sequential, layers, models
from cnnlab.engine.fused import step_layers

if TYPE_CHECKING:
    from rich.table import Table

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = HERE / "results" / "bench_train.json"
RESULT_MARK = "BENCH_TRAIN_RESULT "  # the child's last stdout line: this mark, then its JSON
TRAIN_IMAGES = 54_000  # the seed program trains on 60,000 with validation_split=0.1
TUNED_MALLOC = {
    "MALLOC_MMAP_THRESHOLD_": "33554432",
    "MALLOC_TRIM_THRESHOLD_": "17179869184",
    "MALLOC_TOP_PAD_": "268435456",
}  # perf-notes.md: fewer fresh pages per batch
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
TARGET_RATIO, GOAL_RATIO = 1.0, 0.75
SPREAD_LIMIT = 1.5  # p90 / p10 of the batch times above this: other work interfered


# ----------------------------------------------------------------------- arguments
POSITIVE_OPTIONS = (
    "batches",
    "rounds",
    "batch_size",
    "threads",
    "inference_images",
    "inference_repeats",
    "profile_batches",
    "matmul_size",
    "matmul_repeats",
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_training_options(parser)
    add_measurement_options(parser)
    add_run_options(parser)
    args = parser.parse_args(argv)
    check_counts(parser, args)
    return args


def add_training_options(parser: argparse.ArgumentParser) -> None:
    """How much training is timed, and on how many threads."""
    parser.add_argument(
        "--batches", type=int, default=100, help="timed training batches per engine and round"
    )
    parser.add_argument("--warmup", type=int, default=5, help="untimed training batches first")
    parser.add_argument(
        "--epochs", type=int, default=0, help="also time this many full epochs (422 batches)"
    )
    parser.add_argument(
        "--rounds", type=int, default=2, help="runs of each engine, order alternating"
    )
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument(
        "--threads", type=int, default=2, help="BLAS / torch threads of both engines"
    )


def add_measurement_options(parser: argparse.ArgumentParser) -> None:
    """The inference timing, the per-layer profile and the BLAS floor."""
    parser.add_argument(
        "--inference-images", type=int, default=10_000, help="test images to predict"
    )
    parser.add_argument(
        "--inference-repeats", type=int, default=3, help="timed passes per batch size"
    )
    parser.add_argument(
        "--inference-batches", type=int, nargs="+", default=[1000, 128], help="batch sizes"
    )
    parser.add_argument(
        "--profile-batches", type=int, default=20, help="batches of the per-layer profile"
    )
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--matmul-repeats", type=int, default=7)


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """The data, the processes' malloc, the seed, the output file and the child's part."""
    parser.add_argument(
        "--data",
        choices=("mnist", "random"),
        default="mnist",
        help="random: uint8 noise of MNIST's shapes (no files needed; for smoke tests)",
    )
    parser.add_argument(
        "--tuned-malloc",
        action="store_true",
        help=f"run both engines with {' '.join(f'{k}={v}' for k, v in TUNED_MALLOC.items())}",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(DEFAULT_OUT))
    parser.add_argument(
        "--only", choices=("numpy", "torch", "matmul", "profile"), help=argparse.SUPPRESS
    )


def check_counts(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Stop with argparse's usage error where a count that must be positive (or >= 0) is not."""
    for name in POSITIVE_OPTIONS:
        if getattr(args, name) <= 0:
            parser.error(
                f"--{name.replace('_', '-')} must be positive, received {getattr(args, name)}"
            )
    if args.warmup < 0 or args.epochs < 0:
        parser.error("--warmup and --epochs must be >= 0")


CHILD_OPTIONS = (
    "batches",
    "warmup",
    "epochs",
    "batch_size",
    "threads",
    "inference_images",
    "inference_repeats",
    "profile_batches",
    "matmul_size",
    "matmul_repeats",
    "data",
    "seed",
)


def child_argv(args: argparse.Namespace, only: str) -> list[str]:
    """The command line that runs one part of the benchmark in a fresh Python process."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--only", only]
    for name in CHILD_OPTIONS:
        argv += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return argv + ["--inference-batches", *map(str, args.inference_batches)]


# ---------------------------------------------------------------------- the model
def seed_model(seed: int) -> Sequential:
    """The seed MNIST CNN of design.md (the built-in seed-cnn), compiled as the seed program
    compiles it."""
    model = models.build_model(models.model_config("seed-cnn", (28, 28, 1), 10), 10, seed)
    model.compile(loss="categorical_crossentropy", optimizer="adam", metrics=["accuracy"])
    return model


def torch_seed_model() -> Any:
    """The same network as a plain torch.nn model (NCHW; softmax folded into the loss)."""
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 32, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Dropout(0.5),
        nn.Linear(64 * 5 * 5, 10),
    )


def gemm_shapes(model: Sequential, batch: int) -> list[tuple[str, str, int, int, int]]:
    """(layer, pass, m, k, n) of every matrix product of one training step:
    C (m, n) = A (m, k) B (k, n).

    A convolution is one GEMM per pass over its im2col rows (N*Ho*Wo of them, kh*kw*C_in
    long). The input gradient is left out where the engine skips it (the first trainable layer).
    """
    shapes = []
    for layer in model.layers:
        if isinstance(layer, layers.Conv2D):
            kh, kw, c_in, f = layer.params["kernel"].shape
            rows, depth = batch * layer.output_shape[0] * layer.output_shape[1], kh * kw * c_in
        elif isinstance(layer, layers.Dense):
            rows, (depth, f) = batch, layer.params["kernel"].shape
        else:
            continue
        shapes += [
            (layer.name, "forward", rows, depth, f),
            (layer.name, "kernel grad", depth, rows, f),
        ]
        if layer.needs_input_grad:
            shapes.append((layer.name, "input grad", rows, f, depth))
    return shapes


def flop_counts(model: Sequential, train_images: int, test_images: int) -> dict[str, Any]:
    """GEMM FLOPs (2 m k n per product) per image, per training epoch and per inference pass."""
    per_image: dict[str, float] = {"forward": 0.0, "backward": 0.0}
    per_layer: dict[str, dict[str, float]] = {}
    for name, kind, m, k, n in gemm_shapes(model, batch=1):
        flops = 2.0 * m * k * n
        per_image["forward" if kind == "forward" else "backward"] += flops
        per_layer.setdefault(name, {})[kind] = flops
    train = (per_image["forward"] + per_image["backward"]) * train_images
    return {
        "forward_per_image": per_image["forward"],
        "backward_per_image": per_image["backward"],
        "per_layer_per_image": per_layer,
        "train_epoch": train,
        "train_images": train_images,
        "inference": per_image["forward"] * test_images,
        "inference_images": test_images,
    }


# ------------------------------------------------------------------------ the data
def load_images(kind: str, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """x_train (60000, 28, 28, 1) float32 in [0, 1], its labels (int64), x_test (10000, 28, 28, 1),
    prepared as the seed program prepares them."""
    if kind == "mnist":
        from cnnlab.datasets import mnist

        (x_train, y_train), (x_test, _) = mnist.load_data()
    else:
        rng = np.random.default_rng(seed)
        x_train, x_test = (
            rng.integers(0, 256, (n, 28, 28), dtype=np.uint8) for n in (60_000, 10_000)
        )
        y_train = rng.integers(0, 10, 60_000)
    return scaled(x_train), y_train.astype(np.int64), scaled(x_test)


def scaled(images: np.ndarray) -> np.ndarray:
    """uint8 (N, 28, 28) -> float32 (N, 28, 28, 1) in [0, 1], the seed program's values; divided
    in place, so that preparing the data does not set a peak RSS above training's."""
    x = images.astype(np.float32)
    x /= 255
    return x[..., None]


def batch_order(args: argparse.Namespace, count: int, start: int = 0) -> Iterator[np.ndarray]:
    """Index arrays of ``count`` batches of the 54,000 training images, the same for both
    engines: seeded permutations, one per epoch, the last batch of an epoch shorter."""
    steps = steps_per_epoch(args.batch_size)
    for step in range(start, start + count):
        epoch, within = divmod(step, steps)
        order = np.random.default_rng([args.seed, epoch]).permutation(TRAIN_IMAGES)
        yield order[within * args.batch_size : (within + 1) * args.batch_size]


def steps_per_epoch(batch_size: int) -> int:
    return math.ceil(TRAIN_IMAGES / batch_size)


# ------------------------------------------------------------------- measurements
def summary(values: list[float]) -> dict[str, float]:
    """Median, mean, min, max and the 10th and 90th percentiles of a list of timings."""
    ordered = sorted(values)
    percentile = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {
        "median": statistics.median(ordered),
        "mean": statistics.fmean(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "p10": percentile(0.1),
        "p90": percentile(0.9),
        "n": len(ordered),
    }


def usage() -> dict[str, float]:
    """This process's peak RSS so far (MiB; Linux reports KiB), its RSS now and its page faults so
    far."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "peak_rss_mib": use.ru_maxrss / 1024,
        "rss_mib": current_rss_mib(),
        "minor_faults": use.ru_minflt,
        "major_faults": use.ru_majflt,
    }


def current_rss_mib() -> float | None:
    """The resident set size now (Linux: /proc/self/statm), or None elsewhere."""
    try:
        resident_pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def time_batches(step: Callable[[np.ndarray], None], batches: Iterator[np.ndarray]) -> list[float]:
    """Seconds of ``step`` on each batch (the batch gather included: fit does it too)."""
    seconds = []
    for batch in batches:
        start = time.perf_counter()
        step(batch)
        seconds.append(time.perf_counter() - start)
    return seconds


def train_figures(args: argparse.Namespace, step: Callable[[np.ndarray], None]) -> dict[str, Any]:
    """Warm-up, then the timed batches (extrapolated to an epoch), then optional full epochs."""
    steps = steps_per_epoch(args.batch_size)
    time_batches(step, batch_order(args, args.warmup))
    before = usage()
    seconds = time_batches(step, batch_order(args, args.batches, start=args.warmup))
    faults = usage()["minor_faults"] - before["minor_faults"]
    figures = {
        "batch_seconds": summary(seconds),
        "epoch_seconds": statistics.median(seconds) * steps,
        "epoch_seconds_from_mean": statistics.fmean(seconds) * steps,
        "epoch_seconds_from_p10": summary(seconds)["p10"] * steps,
        "steps_per_epoch": steps,
        "minor_faults_per_batch": faults / args.batches,
    }
    full = [
        sum(time_batches(step, batch_order(args, steps, start=(e + 1) * steps)))
        for e in range(args.epochs)
    ]
    if full:
        figures["full_epoch_seconds"] = full
    figures["after_training"] = usage()
    return figures


def images_per_second(
    predict: Callable[[np.ndarray, int], Any], x: np.ndarray, batch_size: int, repeats: int
) -> dict[str, float]:
    """Images/s of predicting all of x at batch_size: one untimed pass, then the median of
    repeats."""
    predict(x, batch_size)
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        predict(x, batch_size)
        seconds.append(time.perf_counter() - start)
    return {
        "images_per_second": len(x) / statistics.median(seconds),
        "best_images_per_second": len(x) / min(seconds),
        "seconds": summary(seconds),
    }


def inference_figures(
    args: argparse.Namespace, predict: Callable[[np.ndarray, int], Any], x_test: np.ndarray
) -> dict[str, Any]:
    x = x_test[: args.inference_images]
    figures = {
        f"batch_{b}": images_per_second(predict, x, b, args.inference_repeats)
        for b in args.inference_batches
    }
    return {**figures, "images": len(x), "after_inference": usage()}


# --------------------------------------------------------------- child: numpy engine
def run_numpy(args: argparse.Namespace) -> dict[str, Any]:
    x_train, labels, x_test = load_images(args.data, args.seed)
    onehot = np.eye(10, dtype=np.float32)[labels]
    after_data = usage()
    model = seed_model(args.seed)
    step = lambda batch: model.train_step(x_train[batch], onehot[batch])  # noqa: E731
    training = train_figures(args, step)
    inference = inference_figures(
        args, lambda x, b: model.predict(x, batch_size=b, verbose=0), x_test
    )
    return {"engine": "numpy", "after_data": after_data, "train": training, "inference": inference}


# ---------------------------------------------------------------- child: PyTorch
def run_torch(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    x_train, labels, x_test = load_images(args.data, args.seed)
    after_data = usage()
    model = torch_seed_model()
    model.train()
    training = train_figures(args, torch_train_step(model, x_train, labels))
    model.eval()
    inference = inference_figures(args, torch_predict(model), x_test)
    return {
        "engine": "torch",
        "after_data": after_data,
        "train": training,
        "inference": inference,
        "torch_threads": torch.get_num_threads(),
        "torch_version": torch.__version__,
        "torch_parallel_info": torch.__config__.parallel_info().splitlines()[:12],
    }


def torch_train_step(
    model: Any, x_train: np.ndarray, labels: np.ndarray
) -> Callable[[np.ndarray], tuple[float, float]]:
    """One Adam step of model on a batch of indices, as a fit loop writes it; returns the loss
    and the correct count (the logs a fit loop keeps)."""
    import torch
    import torch.nn.functional as F

    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)

    def step(batch: np.ndarray) -> tuple[float, float]:
        # NHWC with one channel has the memory layout of NCHW: the reshape is free
        xb, yb = (
            torch.from_numpy(x_train[batch].reshape(-1, 1, 28, 28)),
            torch.from_numpy(labels[batch]),
        )
        out = model(xb)
        loss = F.cross_entropy(out, yb)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        return loss.item(), (out.argmax(1) == yb).sum().item()  # the logs a fit loop keeps

    return step


def torch_predict(model: Any) -> Callable[[np.ndarray, int], np.ndarray]:
    """predict(x, batch_size): model's softmax over x in batches, under inference mode."""
    import torch

    @torch.inference_mode()
    def predict(x: np.ndarray, batch_size: int) -> np.ndarray:
        chunks = [
            torch.softmax(model(torch.from_numpy(x[i : i + batch_size].reshape(-1, 1, 28, 28))), 1)
            for i in range(0, len(x), batch_size)
        ]
        return torch.cat(chunks).numpy()

    return predict


# ---------------------------------------------------------------- child: BLAS floor
def best_gflops(
    m: int, k: int, n: int, repeats: int, transpose_a: bool = False
) -> dict[str, float]:
    """GFLOP/s of a float32 (m, k) @ (k, n) product, as the engine writes it
    (A^T for the kernel grad)."""
    rng = np.random.default_rng(0)
    a = (
        rng.random((k, m), dtype=np.float32).T
        if transpose_a
        else rng.random((m, k), dtype=np.float32)
    )
    b = rng.random((k, n), dtype=np.float32)
    a @ b
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        seconds.append(time.perf_counter() - start)
    flops = 2.0 * m * k * n
    return {
        "gflops_best": flops / min(seconds) / 1e9,
        "gflops_median": flops / statistics.median(seconds) / 1e9,
        "seconds_best": min(seconds),
        "seconds_median": statistics.median(seconds),
    }


def run_matmul(args: argparse.Namespace) -> dict[str, Any]:
    """The square matmul, and each GEMM of one seed CNN training step at its real shape."""
    size = args.matmul_size
    square = {"size": size, **best_gflops(size, size, size, args.matmul_repeats)}
    step = [
        {
            "layer": name,
            "pass": kind,
            "shape": [m, k, n],
            **best_gflops(m, k, n, args.matmul_repeats, kind == "kernel grad"),
        }
        for name, kind, m, k, n in gemm_shapes(seed_model(args.seed), args.batch_size)
    ]
    return {
        "square": square,
        "seed_cnn_step": step,  # best times: the closest to the machine's capability
        "seed_cnn_step_seconds": sum(g["seconds_best"] for g in step),
    }


# ------------------------------------------------------------ child: layer profile
class Stopwatch:
    """Collects seconds under names: ``with watch("conv2d", "forward"): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[tuple[str, str], list[float]] = {}
        self.name: tuple[str, str] = ("", "")

    def __call__(self, layer: str, phase: str) -> Stopwatch:
        self.name = (layer, phase)
        return self

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.seconds.setdefault(self.name, []).append(time.perf_counter() - self.start)


def step_name(step: Any) -> str:
    """A layer's name, or "conv2d+max_pooling2d" for a fused step (engine/fused.py)."""
    return "+".join(layer.name for layer in step_layers(step))


def profiled_step(model: Sequential, x: np.ndarray, y: np.ndarray, watch: Stopwatch) -> None:
    """One training step, as Sequential.train_step does it, every step (a layer, or two fused)
    timed on its own."""
    for step in model.steps:
        with watch(step_name(step), "forward"):
            x = step.forward(x, training=True)
    with watch("loss", "forward"):
        model.loss(y, x)
    trainable = model.steps[model.backward_step :]
    grad = None
    if model.uses_fused_gradient():  # softmax + cross-entropy: the gradient of the logits
        with watch("loss", "backward"):
            dz = model.loss.gradient_before_activation(y, x)
        with watch(step_name(trainable[-1]), "backward"):
            grad = trainable[-1].backward_linear(dz)
        trainable = trainable[:-1]
    else:
        with watch("loss", "backward"):
            grad = model.loss.gradient(y, x)
    for step in reversed(trainable):
        with watch(step_name(step), "backward"):
            grad = step.backward(grad)
    with watch("optimizer", "backward"):
        model.optimizer.apply(model.trainable_updates())


def run_profile(args: argparse.Namespace) -> dict[str, Any]:
    """Median milliseconds per batch of each layer's forward and backward, and the step as a
    whole."""
    x_train, labels, _ = load_images(args.data, args.seed)
    onehot = np.eye(10, dtype=np.float32)[labels]
    model = seed_model(args.seed)
    for batch in batch_order(args, args.warmup):
        model.train_step(x_train[batch], onehot[batch])
    watch = Stopwatch()
    for batch in batch_order(args, args.profile_batches, start=args.warmup):
        profiled_step(model, x_train[batch], onehot[batch], watch)
    whole = time_batches(
        lambda b: model.train_step(x_train[b], onehot[b]),
        batch_order(args, args.profile_batches, start=args.warmup + args.profile_batches),
    )
    return {
        "batches": args.profile_batches,
        "rows": profile_rows(model, watch),
        "train_step_ms": 1e3 * statistics.median(whole),
    }


def profile_rows(model: Sequential, watch: Stopwatch) -> list[dict[str, Any]]:
    """One row per step (a layer, or two fused; then the loss and the optimizer): median forward
    and backward ms."""
    median_ms = lambda name, phase: 1e3 * statistics.median(watch.seconds.get((name, phase), [0.0]))  # noqa: E731
    rows = [(step_name(step), type(step).__name__) for step in model.steps]
    rows += [("loss", type(model.loss).__name__), ("optimizer", type(model.optimizer).__name__)]
    return [
        {
            "name": name,
            "class": kind,
            "forward_ms": median_ms(name, "forward"),
            "backward_ms": median_ms(name, "backward"),
            "total_ms": median_ms(name, "forward") + median_ms(name, "backward"),
        }
        for name, kind in rows
    ]


# ------------------------------------------------------------------ the parent run
def run_child(args: argparse.Namespace, only: str, env: dict[str, str]) -> dict[str, Any]:
    """Run one part in its own process; its result is the JSON on its last marked stdout line."""
    done = subprocess.run(
        child_argv(args, only), env=env, capture_output=True, text=True, check=False
    )
    marked = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not marked:
        raise RuntimeError(
            f"the {only} part failed (exit "
            f"{done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
        )
    return json.loads(marked[-1][len(RESULT_MARK) :])


def child_environment(args: argparse.Namespace) -> dict[str, str]:
    """The environment of every child: the same thread counts and malloc settings for all."""
    env = {**os.environ, **{name: str(args.threads) for name in THREAD_VARIABLES}}
    if args.tuned_malloc:
        env.update(TUNED_MALLOC)
    return env


def engine_rounds(
    args: argparse.Namespace, env: dict[str, str], say: Callable[[str], None]
) -> dict[str, list[dict[str, Any]]]:
    """Each engine ``rounds`` times, alternating which goes first (ABBA), so drift in the
    machine's load falls on both alike."""
    runs: dict[str, list[dict[str, Any]]] = {"numpy": [], "torch": []}
    for r in range(args.rounds):
        for engine in ("numpy", "torch") if r % 2 == 0 else ("torch", "numpy"):
            say(f"round {r + 1}/{args.rounds}: {engine} (load average {os.getloadavg()[0]:.2f})")
            start = os.getloadavg()
            runs[engine].append(
                {
                    "load_average_start": start,
                    **run_child(args, engine, env),
                    "load_average_end": os.getloadavg(),
                }
            )
    return runs


def combine(runs: list[dict[str, Any]], args: argparse.Namespace) -> dict[str, Any]:
    """One engine's figures over its rounds: medians of times, the largest peak RSS."""
    median = lambda values: statistics.median(values)  # noqa: E731
    combined = {
        "epoch_seconds": median([r["train"]["epoch_seconds"] for r in runs]),
        "epoch_seconds_per_round": [r["train"]["epoch_seconds"] for r in runs],
        "epoch_seconds_from_p10": median([r["train"]["epoch_seconds_from_p10"] for r in runs]),
        "batch_ms_median": 1e3 * median([r["train"]["batch_seconds"]["median"] for r in runs]),
        "batch_ms_min": 1e3 * min(r["train"]["batch_seconds"]["min"] for r in runs),
        "inference_images_per_second": {
            f"batch_{b}": median([r["inference"][f"batch_{b}"]["images_per_second"] for r in runs])
            for b in args.inference_batches
        },
        "peak_rss_mib": max(r["inference"]["after_inference"]["peak_rss_mib"] for r in runs),
        "peak_rss_training_mib": max(r["train"]["after_training"]["peak_rss_mib"] for r in runs),
        "rss_after_data_mib": max(
            r["after_data"]["rss_mib"] or r["after_data"]["peak_rss_mib"] for r in runs
        ),
        "minor_faults_training": median(
            [r["train"]["after_training"]["minor_faults"] for r in runs]
        ),
        "minor_faults_total": median(
            [r["inference"]["after_inference"]["minor_faults"] for r in runs]
        ),
        "minor_faults_per_batch": median([r["train"]["minor_faults_per_batch"] for r in runs]),
    }
    full = [s for r in runs for s in r["train"].get("full_epoch_seconds", [])]
    if full:
        combined["full_epoch_seconds"] = median(full)
        combined["full_epoch_seconds_all"] = full
    return combined


def environment(
    args: argparse.Namespace, env: dict[str, str], torch_run: dict[str, Any]
) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch_run.get("torch_version", package_version("torch")),
        "machine": platform.machine(),
        "cpu": cpu_description(),
        "cpu_count": os.cpu_count(),
        "threads": args.threads,
        "thread_variables": {k: env[k] for k in THREAD_VARIABLES},
        "torch_threads": torch_run.get("torch_threads"),
        "blas": blas_info(args.threads),
        "malloc": {k: v for k, v in sorted(env.items()) if k.startswith("MALLOC_")},
    }


def cpu_description() -> dict[str, Any]:
    """The CPU model and whether it offers AVX-512 (which decides OpenBLAS's kernels), from
    /proc/cpuinfo."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"model": platform.processor(), "avx512f": None}
    model = next(
        (
            line.split(":", 1)[1].strip()
            for line in text.splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    return {"model": model, "avx512f": " avx512f" in text}


def package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def blas_info(threads: int) -> list[dict[str, Any]]:
    """NumPy's BLAS libraries as threadpoolctl sees them under the benchmark's limit."""
    from threadpoolctl import threadpool_info, threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        return [
            {k: info.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for info in threadpool_info()
            if info.get("user_api") == "blas"
        ]


def noise_report(parts: dict[str, Any]) -> dict[str, Any]:
    """Whether other work on the machine distorted the timings: the highest 1-minute load average
    seen (this run itself adds up to --threads) against the cores, and the spread of batch times."""
    cores = (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    )
    runs = [run for engine in ("numpy", "torch") for run in parts[engine]]
    loads = [
        parts["load_start"][0],
        parts["load_end"][0],
        *(run[k][0] for run in runs for k in ("load_average_start", "load_average_end")),
    ]
    spread = {
        engine: max(
            run["train"]["batch_seconds"]["p90"] / run["train"]["batch_seconds"]["p10"]
            for run in parts[engine]
        )
        for engine in ("numpy", "torch")
    }
    busy = max(loads) > cores + 0.5
    return {
        "cores": cores,
        "max_load_average_1min": max(loads),
        "machine_busy": busy,
        "batch_p90_over_p10": spread,
        "spread_limit": SPREAD_LIMIT,
        "trustworthy": not busy and max(spread.values()) <= SPREAD_LIMIT,
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else float("inf")


def paired_ratios(numpy_figures: dict[str, Any], torch_figures: dict[str, Any]) -> list[float]:
    """numpy / torch epoch seconds of each round: the two runs of a round are back to back, so
    a slow spell of the machine that spans both cancels out of their ratio."""
    return [
        ratio(n, t)
        for n, t in zip(
            numpy_figures["epoch_seconds_per_round"], torch_figures["epoch_seconds_per_round"]
        )
    ]


def assemble(
    args: argparse.Namespace, argv: list[str], env: dict[str, str], parts: dict[str, Any]
) -> dict[str, Any]:
    """The JSON document: settings, environment, both engines, ratios, floor, profile."""
    numpy_figures, torch_figures = combine(parts["numpy"], args), combine(parts["torch"], args)
    flops = flop_counts(seed_model(args.seed), TRAIN_IMAGES, args.inference_images)
    result = {
        "command": shlex.join(["python", "benchmarks/bench_train.py", *argv]),
        "settings": {
            name: getattr(args, name)
            for name in (*CHILD_OPTIONS, "rounds", "inference_batches", "tuned_malloc")
        },
        "environment": environment(args, env, parts["torch"][0]),
        "blas": blas_kernels(),
        "load_average_start": parts["load_start"],
        "load_average_end": parts["load_end"],
        "noise": noise_report(parts),
        "numpy": numpy_figures,
        "torch": torch_figures,
        **engine_ratios(numpy_figures, torch_figures),
        "flops": flops,
        "blas_floor": blas_floor(args, parts["matmul"], flops, numpy_figures, torch_figures),
        "profile": parts["profile"],
        "rounds": {engine: parts[engine] for engine in ("numpy", "torch")},
    }
    if "full_epoch_seconds" in numpy_figures and "full_epoch_seconds" in torch_figures:
        result["full_epoch_ratio_numpy_to_torch"] = ratio(
            numpy_figures["full_epoch_seconds"], torch_figures["full_epoch_seconds"]
        )
    result["targets_met"] = targets_met(result)
    return result


def engine_ratios(numpy_figures: dict[str, Any], torch_figures: dict[str, Any]) -> dict[str, Any]:
    """numpy / torch of the epoch time (median, 10th percentile, per round, paired), of the
    inference images/s at each batch size and of the peak RSS, with the epoch targets."""
    paired = paired_ratios(numpy_figures, torch_figures)
    return {
        "ratio_numpy_to_torch": ratio(
            numpy_figures["epoch_seconds"], torch_figures["epoch_seconds"]
        ),
        "ratio_target": TARGET_RATIO,
        "ratio_goal": GOAL_RATIO,
        "ratio_numpy_to_torch_from_p10": ratio(
            numpy_figures["epoch_seconds_from_p10"], torch_figures["epoch_seconds_from_p10"]
        ),
        "ratio_per_round": paired,
        "ratio_numpy_to_torch_paired": statistics.median(paired),
        "inference_ratio_numpy_to_torch": {
            key: ratio(value, torch_figures["inference_images_per_second"][key])
            for key, value in numpy_figures["inference_images_per_second"].items()
        },
        "peak_rss_ratio_numpy_to_torch": ratio(
            numpy_figures["peak_rss_mib"], torch_figures["peak_rss_mib"]
        ),
    }


def blas_floor(
    args: argparse.Namespace,
    matmul: dict[str, Any],
    flops: dict[str, Any],
    numpy_figures: dict[str, Any],
    torch_figures: dict[str, Any],
) -> dict[str, Any]:
    """The seconds an epoch and an inference pass would take at the best square-matmul GFLOP/s,
    and that floor's share of each engine's epoch."""
    gflops = matmul["square"]["gflops_best"]
    floor = flops["train_epoch"] / (gflops * 1e9)
    return {
        "matmul": matmul["square"],
        "epoch_seconds": floor,
        "share_of_numpy_epoch": floor / numpy_figures["epoch_seconds"],
        "share_of_torch_epoch": floor / torch_figures["epoch_seconds"],
        "seed_cnn_gemm_epoch_seconds": matmul["seed_cnn_step_seconds"]
        * steps_per_epoch(args.batch_size),
        "seed_cnn_gemms": matmul["seed_cnn_step"],
        "inference_seconds": flops["inference"] / (gflops * 1e9),
    }


def targets_met(result: dict[str, Any]) -> dict[str, bool]:
    """Issue 3's targets: epoch ratio (and goal), inference at every batch size, peak RSS."""
    return {
        "epoch_ratio": result["ratio_numpy_to_torch"] <= TARGET_RATIO,
        "epoch_ratio_goal": result["ratio_numpy_to_torch"] <= GOAL_RATIO,
        "inference": all(r >= 1.0 for r in result["inference_ratio_numpy_to_torch"].values()),
        "peak_rss": result["peak_rss_ratio_numpy_to_torch"] <= 1.0,
    }


def print_tables(result: dict[str, Any]) -> None:
    """The figures and the per-layer profile as two readable tables."""
    from rich.console import Console

    console = Console()
    noise = result["noise"]
    if not noise["trustworthy"]:
        console.print(
            "[bold red]Other work disturbed these timings[/] (1-minute load average up to "
            f"{noise['max_load_average_1min']:.1f} "
            f"on {noise['cores']} cores; batch times p90/p10 up to "
            f"{max(noise['batch_p90_over_p10'].values()):.1f}): "
            "compare per round, or rerun on an idle machine."
        )
    console.print(figures_table(result))
    console.print(profile_table(result["profile"]))


def figures_table(result: dict[str, Any]) -> Table:
    """numpy, torch and their ratio for each figure, then the BLAS floor."""
    from rich.table import Table

    figures = Table(
        title=f"seed CNN, batch {result['settings']['batch_size']}, "
        f"{result['settings']['threads']} threads "
        f"(load average {result['load_average_start'][0]:.2f} -> "
        f"{result['load_average_end'][0]:.2f})"
    )
    for column in ("figure", "numpy", "torch", "numpy / torch"):
        figures.add_column(column, justify="left" if column == "figure" else "right")
    for row in (*epoch_rows(result), *inference_and_memory_rows(result), *floor_rows(result)):
        figures.add_row(*row)
    return figures


def epoch_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Seconds per training epoch: from the median batch, the 10th-percentile batch, the rounds'
    own ratios, and the measured full epochs when there are any."""
    n, t = result["numpy"], result["torch"]
    rows = [
        (
            "s per training epoch",
            f"{n['epoch_seconds']:.2f}",
            f"{t['epoch_seconds']:.2f}",
            f"{result['ratio_numpy_to_torch']:.2f}",
        ),
        (
            "  from the 10th-percentile batch",
            f"{n['epoch_seconds_from_p10']:.2f}",
            f"{t['epoch_seconds_from_p10']:.2f}",
            f"{result['ratio_numpy_to_torch_from_p10']:.2f}",
        ),
        (
            "  median of the rounds' own ratios",
            "",
            "",
            f"{result['ratio_numpy_to_torch_paired']:.2f}",
        ),
    ]
    if "full_epoch_ratio_numpy_to_torch" in result:
        rows.append(
            (
                "s per full epoch (measured)",
                f"{n['full_epoch_seconds']:.2f}",
                f"{t['full_epoch_seconds']:.2f}",
                f"{result['full_epoch_ratio_numpy_to_torch']:.2f}",
            )
        )
    return rows


def inference_and_memory_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """Inference images/s at each batch size, the peak RSS and the page faults per batch."""
    n, t = result["numpy"], result["torch"]
    rows = [
        (
            f"inference images/s, {key.replace('_', ' ')}",
            f"{value:,.0f}",
            f"{t['inference_images_per_second'][key]:,.0f}",
            f"{result['inference_ratio_numpy_to_torch'][key]:.2f}",
        )
        for key, value in n["inference_images_per_second"].items()
    ]
    return rows + [
        (
            "peak RSS MiB",
            f"{n['peak_rss_mib']:.0f}",
            f"{t['peak_rss_mib']:.0f}",
            f"{result['peak_rss_ratio_numpy_to_torch']:.2f}",
        ),
        (
            "minor page faults per batch",
            f"{n['minor_faults_per_batch']:,.0f}",
            f"{t['minor_faults_per_batch']:,.0f}",
            "",
        ),
    ]


def floor_rows(result: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    """The BLAS floor per epoch, the GEMMs at the seed CNN's shapes, and the floor's share."""
    floor = result["blas_floor"]
    return [
        (
            f"BLAS floor s per epoch ({floor['matmul']['gflops_best']:.0f} GFLOP/s)",
            f"{floor['epoch_seconds']:.2f}",
            "",
            "",
        ),
        (
            "GEMMs at the real shapes, s per epoch",
            f"{floor['seed_cnn_gemm_epoch_seconds']:.2f}",
            "",
            "",
        ),
        (
            "floor / epoch time",
            f"{floor['share_of_numpy_epoch']:.0%}",
            f"{floor['share_of_torch_epoch']:.0%}",
            "",
        ),
    ]


def profile_table(profile: dict[str, Any]) -> Table:
    """The NumPy engine's ms per batch of each layer, forward and backward, and its share."""
    from rich.table import Table

    table = Table(
        title=f"NumPy engine, ms per batch (median of {profile['batches']}); "
        f"train_step {profile['train_step_ms']:.1f} ms"
    )
    for column in ("layer", "forward", "backward", "total", "share"):
        table.add_column(column, justify="left" if column == "layer" else "right")
    total = sum(row["total_ms"] for row in profile["rows"])
    for row in profile["rows"]:
        table.add_row(
            f"{row['name']} ({row['class']})",
            f"{row['forward_ms']:.2f}",
            f"{row['backward_ms']:.2f}",
            f"{row['total_ms']:.2f}",
            f"{row['total_ms'] / total:.0%}",
        )
    return table


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    if args.only:
        return child_main(args)
    env, say = child_environment(args), lambda text: print(text, file=sys.stderr, flush=True)
    parts: dict[str, Any] = {"load_start": os.getloadavg()}
    say("measuring the BLAS floor")
    parts["matmul"] = run_child(args, "matmul", env)
    parts.update(engine_rounds(args, env, say))
    say("profiling the NumPy engine layer by layer")
    parts["profile"] = run_child(args, "profile", env)
    parts["load_end"] = os.getloadavg()
    result = assemble(args, argv, env, parts)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps({k: v for k, v in result.items() if k != "rounds"}, indent=2))
    print_tables(result)
    print(describe(result["blas"]))
    print(f"saved {out}")


def child_main(args: argparse.Namespace) -> None:
    """One part in this process, BLAS limited to --threads; prints its JSON on a marked line."""
    from threadpoolctl import threadpool_limits

    parts = {"numpy": run_numpy, "torch": run_torch, "matmul": run_matmul, "profile": run_profile}
    with threadpool_limits(limits=args.threads, user_api="blas"):
        result = parts[args.only](args)
    print(RESULT_MARK + json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
