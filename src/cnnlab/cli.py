"""The ``cnnlab`` command.

Every command prints a progress bar on long work, writes into a run directory (``--out``,
default ``runs/<timestamp>-<name>``) and, on bad input, exits with code 2 and one line
saying what is wrong (the traceback only with ``--debug``).
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from . import __version__, models, runs
from .datasets import DATASETS
from .engine.callbacks import format_logs
from .engine.optimizers import OPTIMIZERS
from .errors import CnnlabError

OPTIMIZER_CHOICES = list(OPTIMIZERS)  # the engine's registry of optimizers

# markup off: user text (file names, dataset names) is printed as given, "[x]" included
console = Console(soft_wrap=True, markup=False)
err_console = Console(stderr=True, soft_wrap=True, markup=False)
DATASET_CHOICES = ", ".join(DATASETS)  # the built-in datasets, from cnnlab.datasets

EXAMPLES = """
\b
Examples:
  cnnlab train                                  # the seed MNIST CNN, 15 epochs
  cnnlab train --dataset digits --epochs 5      # no download needed
  cnnlab evaluate runs/20261122-101500-mnist
  cnnlab predict runs/20261122-101500-mnist digit.png
"""


@click.group(
    help="cnnlab: a laboratory for convolutional neural networks.\n" + EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="cnnlab")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
def cli(debug: bool) -> None:
    from .connect import connect_engine

    # .keras files and the BLAS thread count, for every command that reaches the engine
    connect_engine()


def data_dir_option(function: Any) -> Any:
    return click.option(
        "--data-dir",
        type=click.Path(file_okay=False),
        default=None,
        help="Folder with one sub-folder per dataset (default: $CNNLAB_DATA_DIR, else "
        "~/.cache/cnnlab).",
    )(function)


def training_options(seed_help: str) -> Callable[[Any], Any]:
    """--epochs, --batch-size, --optimizer, --learning-rate, --validation-split and --seed, as
    train and compare share them (the optimizers from the engine's registry)."""
    options = [
        click.option(
            "--epochs",
            type=int,
            default=15,
            show_default=True,
            help="Passes over the training data.",
        ),
        click.option(
            "--batch-size",
            type=int,
            default=128,
            show_default=True,
            help="Images per gradient step.",
        ),
        click.option(
            "--optimizer",
            default="adam",
            show_default=True,
            type=click.Choice(OPTIMIZER_CHOICES),
            help="Optimizer, with Keras defaults.",
        ),
        click.option(
            "--learning-rate",
            type=float,
            default=None,
            help="Learning rate (default: the optimizer's Keras default).",
        ),
        click.option(
            "--validation-split",
            type=float,
            default=0.1,
            show_default=True,
            help="Last fraction of the training data held out for validation.",
        ),
        click.option("--seed", type=int, default=0, show_default=True, help=seed_help),
    ]

    def apply(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function

    return apply


# --------------------------------------------------------------------------- train
@cli.command(
    help="""Train a model and write a run directory (model, history, metrics, figures, report).

\b
Default: the seed MNIST CNN (Conv32-Pool-Conv64-Pool-Flatten-Dropout-Dense10), Adam,
batch 128, 15 epochs, validation split 0.1, as the classic Keras example.

\b
Examples:
  cnnlab train
  cnnlab train --dataset digits --epochs 10 --out runs/digits
  cnnlab train --model seed-cnn --train-size 5000 --epochs 2 --engine torch
  cnnlab train --model my_model.json --dataset my_data.npz
"""
)
@click.option(
    "--dataset",
    default="mnist",
    show_default=True,
    help=f"{DATASET_CHOICES}, or a path to an .npz file (x_train, y_train, x_test, y_test).",
)
@click.option(
    "--model",
    "model_spec",
    default=None,
    help=f"Built-in ({', '.join(models.BUILTIN_MODELS)}) or a JSON/TOML model file in the "
    "get_config format. Default: seed-cnn (seed-cnn-same for images under 10 pixels).",
)
@training_options("Seed of initialisation, shuffling and dropout (same seed, same result).")
@click.option(
    "--engine",
    default="numpy",
    show_default=True,
    type=click.Choice(["numpy", "torch"]),
    help="numpy (cnnlab's own engine) or torch (the PyTorch reference).",
)
@click.option("--train-size", type=int, default=None, help="Use only the first N training images.")
@click.option("--test-size", type=int, default=None, help="Use only the first N test images.")
@data_dir_option
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Run directory (default: runs/<timestamp>-<dataset>).",
)
@click.option(
    "--resume",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Continue an interrupted run from its last finished epoch, with its saved settings "
    "(other options are ignored).",
)
@click.option(
    "--overwrite", is_flag=True, help="Replace a finished run already in --out (refused otherwise)."
)
def train(
    model_spec: str | None, out: str | None, resume: str | None, overwrite: bool, **options: Any
) -> None:
    from .progress import EpochProgress
    from .training import TrainSettings, check_run_dir, prepare, resume_settings
    from .training import train as run_training

    settings = (
        resume_settings(Path(resume)) if resume else TrainSettings(model=model_spec, **options)
    )
    run = prepare(settings)
    out = resume or out
    run_dir = runs.prepare_run_dir(Path(out) if out else runs.default_run_dir(run.data.name))
    check_run_dir(run_dir, bool(resume), overwrite)  # refused before the summary, not after
    run.model.summary(print_fn=lambda line: console.print(line, highlight=False))
    result = run_training(
        run, run_dir, [EpochProgress(err_console)], resume=bool(resume), overwrite=overwrite
    )
    print_metrics(result.metrics)
    console.print(
        f"Run directory: {result.run_dir}  (report: {result.run_dir / 'report.html'})",
        highlight=False,
    )


def print_metrics(metrics: dict[str, Any]) -> None:
    table = Table(title="Test metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in (
        "test_accuracy",
        "test_loss",
        "precision_macro",
        "recall_macro",
        "f1_macro",
        "roc_auc_ovr",
        "params",
    ):
        value = metrics.get(key)
        table.add_row(
            key,
            "n/a" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.4f}",
        )
    if metrics.get("epoch_seconds"):
        table.add_row(
            "seconds per epoch (median)", f"{float(np.median(metrics['epoch_seconds'])):.1f}"
        )
    console.print(table)


# ------------------------------------------------------------------------ evaluate
@cli.command(
    help="""Metrics of a trained model on a dataset's test images.

\b
Examples:
  cnnlab evaluate runs/20261122-101500-mnist
  cnnlab evaluate runs/my-run --dataset my_data.npz --json metrics.json
"""
)
@click.argument("run", type=click.Path())
@click.option(
    "--dataset",
    default=None,
    help=f"Dataset to evaluate on: {DATASET_CHOICES} or an .npz file (default: the run's own).",
)
@click.option("--test-size", type=int, default=None, help="Use only the first N test images.")
@data_dir_option
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False),
    default=None,
    help="Also write the metrics to this JSON file.",
)
def evaluate(
    run: str,
    dataset: str | None,
    test_size: int | None,
    data_dir: str | None,
    json_path: str | None,
) -> None:
    from .evaluation import evaluate_model, run_facts
    from .training import TrainSettings, load_data

    model = runs.load_run_model(run)
    if dataset is None:
        dataset, data_dir = run_dataset(Path(run), data_dir)
    settings = TrainSettings(dataset=dataset, test_size=test_size, train_size=2, data_dir=data_dir)
    settings.validate()
    data = load_data(settings)
    check_input_shape(model, data)
    evaluation = evaluate_model(model, data.x_test, data.y_test, data.class_names)
    metrics = evaluation.metrics(**run_facts(model, [], "numpy", data.name))
    print_metrics(metrics)
    if json_path:
        runs.write_json(Path(json_path), metrics)


def run_dataset(run: Path, data_dir: str | None) -> tuple[str, str | None]:
    """The dataset a run was trained on, as given to ``train`` (a name or a path), and its data
    dir."""
    if not run.is_dir():
        return "mnist", data_dir
    config = runs.read_json(run, "config.json")
    training = config.get("training") or {}
    dataset = training.get("dataset") or config.get("dataset")
    if not isinstance(dataset, str):
        raise CnnlabError(f"{run / 'config.json'} names no dataset; give --dataset")
    data_dir = data_dir or training.get("data_dir")
    return dataset, data_dir if isinstance(data_dir, str) else None


def check_input_shape(model: Any, data: Any) -> None:
    if tuple(model.input_shape) != data.input_shape:
        raise CnnlabError(
            f"the model expects images of shape {tuple(model.input_shape)}, the dataset has "
            f"{data.input_shape}"
        )
    if model.output_shape[-1] != data.num_classes:
        raise CnnlabError(
            f"the model has {model.output_shape[-1]} outputs, the dataset has {data.num_classes} "
            "classes"
        )


# ------------------------------------------------------------------------- predict
@cli.command(
    help="""Classes and probabilities for image files (PNG, JPEG, any size).

Each image is converted to the model's input: grey (or RGB), resized, scaled to 0..1.
MNIST digits are light on dark; with --invert auto (the default) an image whose mean is
light is inverted first, so a dark digit on white paper works.

\b
Example:
  cnnlab predict runs/20261122-101500-mnist three.png seven.jpg --top 3
"""
)
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option(
    "--top", type=int, default=3, show_default=True, help="How many classes to list per image."
)
@click.option(
    "--invert",
    type=click.Choice(["auto", "yes", "no"]),
    default="auto",
    show_default=True,
    help="Invert light backgrounds.",
)
def predict(run: str, images: tuple[str, ...], top: int, invert: str) -> None:
    from .images import load_image

    model = runs.load_run_model(run)
    names = class_names_of(Path(run), model.output_shape[-1])
    batch = np.stack([load_image(Path(p), model.input_shape, invert) for p in images])
    probabilities = model.predict(batch, verbose=0)
    for path, probs in zip(images, probabilities):
        order = np.argsort(probs)[::-1][: max(1, top)]
        ranked = ", ".join(f"{names[k]}: {probs[k]:.3f}" for k in order)
        console.print(f"{path}: {names[order[0]]}  ({ranked})", highlight=False)


def class_names_of(run: Path, count: int) -> list[str]:
    """The class names saved with a run, else 0..K-1."""
    metrics_path = run / "metrics.json"
    if run.is_dir() and metrics_path.is_file():
        names = runs.read_json(run, "metrics.json").get("class_names")
        if names and len(names) == count:
            return [str(n) for n in names]
    return [str(k) for k in range(count)]


# ------------------------------------------------------------------------- summary
@cli.command(
    help="""Print the layer table of a run's model, a model file, or a built-in model.

\b
Examples:
  cnnlab summary runs/20261122-101500-mnist
  cnnlab summary seed-cnn
  cnnlab summary seed-dense --input-shape 2 --classes 2
"""
)
@click.argument("model")
@click.option(
    "--input-shape",
    default=None,
    help="For a built-in or config file: input shape, e.g. 28,28,1 (default 28,28,1; 2 for "
    "seed-dense).",
)
@click.option(
    "--classes",
    type=int,
    default=None,
    help="For a built-in or config file: number of classes (default 10; 2 for seed-dense).",
)
def summary(model: str, input_shape: str | None, classes: int | None) -> None:
    path = Path(model)
    if model not in models.BUILTIN_MODELS and (
        path.is_dir() or path.suffix == Path(runs.MODEL_FILE).suffix
    ):
        built = runs.load_run_model(path)
    else:
        dense = model == "seed-dense"
        shape = parse_shape(input_shape) if input_shape else ((2,) if dense else (28, 28, 1))
        classes = classes or (2 if dense else 10)
        built = models.build_model(models.model_config(model, shape, classes), classes, seed=0)
    built.summary(print_fn=lambda line: console.print(line, highlight=False))


def parse_shape(text: str) -> tuple[int, ...]:
    try:  # 28,28,1 or 28x28x1
        shape = tuple(int(part) for part in text.replace("x", ",").split(","))
    except ValueError:
        raise CnnlabError(
            f"input shape {text!r} is not a list of integers such as 28,28,1"
        ) from None
    if not shape or min(shape) <= 0:
        raise CnnlabError(f"input shape {text!r} must hold positive integers")
    return shape


# ------------------------------------------------------------------------- explore
@cli.command(
    help=f"""Look at a dataset: samples per class, class distribution, pixel intensities, mean
images.

DATASET is {DATASET_CHOICES}, or a path to an .npz file or a folder of IDX files.

Prints shapes, dtype, value range and counts, and writes the figures and a report.

\b
Examples:
  cnnlab explore mnist
  cnnlab explore cifar10
  cnnlab explore digits --per-class 8 --out runs/digits-explore
"""
)
@click.argument("dataset")
@click.option(
    "--per-class", type=int, default=5, show_default=True, help="Samples shown per class."
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Which random samples are shown."
)
@data_dir_option
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Output directory (default: runs/<timestamp>-explore-<dataset>).",
)
def explore(dataset: str, per_class: int, seed: int, data_dir: str | None, out: str | None) -> None:
    from .datasets import load_dataset
    from .explore import describe, write_exploration

    if per_class < 1:
        raise CnnlabError(f"--per-class must be at least 1, received {per_class}")
    data = load_dataset(dataset, data_dir=data_dir)
    out_dir = runs.prepare_run_dir(
        Path(out) if out else runs.default_run_dir(f"explore-{data.name}")
    )
    table = Table(title=f"Dataset {data.name} ({data.source})")
    for column in ("split", "images", "shape", "dtype", "min", "max", "classes"):
        table.add_column(column)
    for row in describe(data):
        table.add_row(*[str(v) for v in row])
    console.print(table)
    report = write_exploration(data, out_dir, per_class=per_class, seed=seed)
    console.print(f"Figures and report: {out_dir}  (report: {report})", highlight=False)


# -------------------------------------------------------------------------- report
@cli.command(
    help="""(Re)build the self-contained report.html of any directory cnnlab writes, without
retraining.

The directory says what it is (the "kind" in its config.json, comparison.json or parity.json):
a run (cnnlab train), an approximation (cnnlab approx), a comparison of built-in models or
of a program (cnnlab compare), a parity check (cnnlab compare --parity), or a study (a study
directory holding study.sqlite, or the .sqlite file; its report is written beside it).

\b
Examples:
  cnnlab report runs/20261122-101500-mnist
  cnnlab report runs/20261122-103000-compare-my_program
  cnnlab report runs/study-seed-study
"""
)
@click.argument("run", type=click.Path())
def report(run: str) -> None:
    from .report import render_report

    console.print(f"Report: {render_report(run)}", highlight=False)


# ------------------------------------------------------------------------- explain
@cli.command(
    help="""Look inside a trained model: feature maps of every conv/pool layer and a saliency map.

For test image number --index of the run's dataset, writes figures/feature_maps.png and
figures/saliency.png into the run directory and rebuilds its report.html.

\b
Example:
  cnnlab explain runs/20261122-101500-mnist --index 7
"""
)
@click.argument("run", type=click.Path(exists=True, file_okay=False))
@click.option("--index", type=int, default=0, show_default=True, help="Which test image.")
@data_dir_option
def explain(run: str, index: int, data_dir: str | None) -> None:
    from .explain import explain_image
    from .report import render_run_report
    from .training import TrainSettings, load_data

    run_dir = Path(run)
    model = runs.load_run_model(run_dir)
    dataset, data_dir = run_dataset(run_dir, data_dir)
    data = load_data(
        TrainSettings(dataset=dataset, data_dir=data_dir, train_size=2)
    )  # only the test images are used
    if not 0 <= index < len(data.x_test):
        raise CnnlabError(
            f"--index {index} is out of range: the test set has {len(data.x_test)} images"
        )
    check_input_shape(model, data)
    shown = explain_image(
        model,
        data.x_test[index],
        data.class_names[data.y_test[index]],
        data.class_names,
        run_dir / "figures",
    )
    render_run_report(run_dir)
    console.print(
        f"Test image {index}: true {shown['true']}, predicted {shown['predicted']}; "
        f"feature maps of {', '.join(shown['layers']) or 'no spatial layer'}; figures in "
        f"{run_dir / 'figures'}",
        highlight=False,
    )


# -------------------------------------------------------------------------- approx
@cli.command(
    help="""Train a network to approximate a function of (x, y); show the original beside the
prediction.

--function is a built-in (ring-band, circle, xor, spiral, checkerboard, sine) or an
expression in x and y with numbers, pi, e, + - * / // % **, comparisons, & | ~, and, or,
not, and the functions abs sin cos tan tanh exp log sqrt floor ceil sign minimum maximum
arctan2 hypot where (nothing else is accepted; the text is never run by Python).
Boolean or integer results are classes (softmax, cross-entropy, accuracy); real results
a regression (one linear output, MSE, R^2). Defaults: seed 000's ring-band on [0,1]^2,
50,000 points, the seed-dense network, Adam, batch 128, 15 epochs.

\b
Models: seed-dense (Dense64-Dense64-Flatten-Dropout-Dense), patch-cnn (a small CNN
on a k x k patch of the coordinate grid around each point), or a JSON/TOML model file.

\b
Examples:
  cnnlab approx                                             # the seed: ring-band
  cnnlab approx --function spiral --epochs 30
  cnnlab approx --function "(x**2 + y**2 < 1) & (abs(x - y) > 0.15)" --domain 0,1,0,1
  cnnlab approx --function "sin(3*x) * cos(3*y)"            # a regression
  cnnlab approx --function xor --model patch-cnn --samples 10000
"""
)
@click.option(
    "--function",
    "function",
    default="ring-band",
    show_default=True,
    help="Built-in name or an expression in x and y (quote it).",
)
@click.option(
    "--samples",
    type=int,
    default=50_000,
    show_default=True,
    help="Points sampled from the domain (train + test).",
)
@click.option(
    "--domain",
    default=None,
    help="x_low,x_high,y_low,y_high (default: the function's; [-1,1]^2 for expressions).",
)
@click.option(
    "--sampling",
    type=click.Choice(["uniform", "grid"]),
    default="uniform",
    show_default=True,
    help="Uniform random points or a regular lattice.",
)
@click.option(
    "--noise",
    type=float,
    default=0.0,
    show_default=True,
    help="Training targets only: share of labels flipped (classes) or std of gaussian noise "
    "(regression).",
)
@click.option(
    "--test-fraction",
    type=float,
    default=0.1,
    show_default=True,
    help="Share of the points held out for testing.",
)
@click.option(
    "--validation-split",
    type=float,
    default=0.1,
    show_default=True,
    help="Last share of the training points held out for validation.",
)
@click.option(
    "--model",
    default="seed-dense",
    show_default=True,
    help="seed-dense, patch-cnn, or a JSON/TOML model file (input: the 2 scaled coordinates).",
)
@click.option(
    "--patch-size",
    type=int,
    default=5,
    show_default=True,
    help="patch-cnn only: the side of the coordinate patch (odd, at least 3).",
)
@click.option(
    "--epochs", type=int, default=15, show_default=True, help="Passes over the training points."
)
@click.option(
    "--batch-size", type=int, default=128, show_default=True, help="Points per gradient step."
)
@click.option(
    "--optimizer",
    default="adam",
    show_default=True,
    type=click.Choice(OPTIMIZER_CHOICES),
    help="Optimizer, with Keras defaults.",
)
@click.option(
    "--learning-rate",
    type=float,
    default=None,
    help="Learning rate (default: the optimizer's Keras default).",
)
@click.option(
    "--seed",
    type=int,
    default=0,
    show_default=True,
    help="Seed of sampling, initialisation, shuffling and dropout.",
)
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Run directory (default: runs/<timestamp>-approx-<function>).",
)
def approx(out: str | None, **options: Any) -> None:
    from .approx import ApproxSettings, headline, prepare, run_approx
    from .progress import EpochProgress

    problem = prepare(ApproxSettings(**options))
    function = problem.function
    console.print(
        f"Function {function.name} ({function.kind}) on {function.domain}: "
        f"{len(problem.x_train):,} training and {len(problem.x_test):,} test points",
        highlight=False,
    )
    problem.model.summary(print_fn=lambda line: console.print(line, highlight=False))
    name = "expression" if function.name == function.formula else function.name
    run_dir = Path(out) if out else runs.default_run_dir(f"approx-{name}")
    result = run_approx(problem, run_dir, [EpochProgress(err_console)])
    console.print(f"Test: {headline(result.metrics)}", highlight=False)
    console.print(
        f"Run directory: {result.run_dir}  (report: {result.run_dir / 'report.html'})",
        highlight=False,
    )


# --------------------------------------------------------------------------- study
@cli.command(
    help="""Run a hyperparameter study: every trial of a spec, each stored in SQLite as it ends.

SPEC is a TOML file or a built-in spec: seed-study (pool size, number of kernels, strides
and padding of the seed CNN on an MNIST subset). Trials run in --jobs worker processes
here, or as Ray tasks on a cluster with --ray. Shapes that cannot fit are recorded as
invalid, errors as failed; the study goes on. Running the same command again resumes:
finished trials are kept, unfinished ones run. At the end: OUT/report.html.

\b
A spec (axes address "layer.argument"; "a,b.arg" or "conv2d*.arg" address several layers):
  model = "seed-cnn"                # built-in or model file
  mode = "random"                   # or "grid" (every combination)
  n_trials = 16
  repeats = 2                       # seeds per configuration
  [training]
  dataset = "mnist"
  epochs = 2
  train_size = 3000
  [axes]
  "max_pooling2d.pool_size" = [2, 3, 4]
  "conv2d.filters" = [8, 16, 32]
  "conv2d,conv2d_1.padding" = ["valid", { conv2d = "same", conv2d_1 = "valid" }, "same"]

\b
Examples:
  cnnlab study seed-study --jobs 2
  cnnlab study my_study.toml --ray auto --out runs/my-study
  cnnlab report runs/study-seed-study
"""
)
@click.argument("spec")
@click.option(
    "--jobs",
    type=int,
    default=None,
    help="Worker processes on this machine (default: the number of cores).",
)
@click.option(
    "--threads",
    type=int,
    default=None,
    help="BLAS threads per worker (default: cores // jobs, so workers never oversubscribe).",
)
@click.option(
    "--ray",
    "ray_address",
    default=None,
    help="Run the trials as Ray tasks on the cluster at this address (auto, HOST:PORT; local "
    "starts a throwaway one).",
)
@click.option(
    "--db",
    type=click.Path(dir_okay=False),
    default=None,
    help="The study's SQLite file (default: OUT/study.sqlite).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Study directory: database, figures, report (default: runs/study-<name>).",
)
@data_dir_option
def study(
    spec: str,
    jobs: int | None,
    threads: int | None,
    ray_address: str | None,
    db: str | None,
    out: str | None,
    data_dir: str | None,
) -> None:
    from .study.report import render_study_report
    from .study.runners import LocalRunner, RayRunner, open_store, prepare_data, run_study
    from .study.spec import load_spec
    from .study.store import DB_NAME, default_study_dir
    from .training import Interrupted

    if (jobs is not None or threads is not None) and ray_address:
        raise CnnlabError(
            "--jobs/--threads and --ray exclude each other: Ray gives each trial one CPU of the "
            "cluster"
        )
    study_spec = load_spec(spec)
    runner = RayRunner(ray_address) if ray_address else LocalRunner(jobs, threads)
    out_dir = Path(out) if out else default_study_dir(study_spec.name)
    db_path = Path(db) if db else out_dir / DB_NAME
    data = prepare_data(study_spec, data_dir)
    with open_store(study_spec, db_path) as store:
        left, total = len(store.unfinished()), sum(store.counts().values())
        console.print(
            f"Study {study_spec.name}: {total} trials, {left} to run, on {runner.describe()}; "
            f"database {db_path}",
            highlight=False,
        )
        try:
            counts = run_study(study_spec, store, runner, data, err_console)
        except KeyboardInterrupt:
            kept = store.counts()
            finished = sum(kept[s] for s in ("done", "failed", "invalid"))
            raise Interrupted(
                f"interrupted: {finished} of {total} trials finished, kept in {db_path}; "
                "go on with the same command"
            ) from None
    report_path = render_study_report(db_path, out_dir)
    print_study(db_path)
    summary = ", ".join(
        f"{counts[s]} {s}" for s in ("done", "invalid", "failed", "running", "pending") if counts[s]
    )
    console.print(f"Trials: {summary}. Report: {report_path}", highlight=False)


def print_study(db_path: Path, top: int = 10) -> None:
    """The best finished trials of a study as a table."""
    from .study.report import trial_rows
    from .study.store import StudyStore

    with StudyStore(db_path, create=False) as store:
        axes = list(store.study()["spec"]["axes"])
        rows = [
            r for r in trial_rows({a: [] for a in axes}, store.trials()) if r["status"] == "done"
        ]
    rows.sort(key=lambda r: -r["accuracy"])
    arguments = [
        axis.rsplit(".", 1)[-1] for axis in axes
    ]  # "pool_size" for "max_pooling2d.pool_size", if unique
    headers = [
        arg if arguments.count(arg) == 1 else axis
        for axis, arg in zip(axes, arguments, strict=True)
    ]
    renamed = [
        f"{header} = {axis}" for header, axis in zip(headers, axes, strict=True) if header != axis
    ]
    table = Table(
        title=f"Best {min(top, len(rows))} of {len(rows)} finished trials",
        caption="; ".join(renamed) or None,
    )
    for header in headers:
        table.add_column(header, min_width=len(header), overflow="fold")
    for column in ("seed", "accuracy", "params", "seconds"):
        table.add_column(column, justify="right", no_wrap=True)
    for row in rows[:top]:
        table.add_row(
            *[row[a].replace(",", ", ") for a in axes],
            str(row["seed"]),
            f"{row['accuracy']:.4f}",
            f"{row['params']:,}",
            f"{row['seconds']:.1f}",
        )
    wide = (
        console if console.is_terminal else Console(width=120, markup=False, file=console.file)
    )  # a log file
    wide.print(table)


# ------------------------------------------------------------------------- compare
@cli.command(
    help="""Train the same network in cnnlab's NumPy engine and in a framework, and compare them
side by side.

With a PROGRAM.py: your own Keras program runs unmodified on the NumPy engine, and the model
it trains is trained again by real Keras 3 from the same initial weights on the same batches
(ARGS after -- go to the program). Without one: a built-in model (--model) on --dataset.

Both start from identical weights and see identical batches (only dropout masks differ).
Writes both models, comparison.json (accuracy, precision, recall, F1, ROC-AUC, loss,
parameters, seconds per epoch, peak memory, agreement), figures and report.html.
With --parity: dropout off, compares every layer's output, the loss, every gradient and
the weights after --steps optimizer steps, and reports the largest differences.

\b
Examples:
  cnnlab compare --dataset digits --epochs 5
  cnnlab compare --train-size 10000 --epochs 3
  cnnlab compare --parity --steps 100
  cnnlab compare mnist_convnet.py --epochs 1
  cnnlab compare my_program.py -- --its-own-option 3
"""
)
@click.argument("program_and_args", nargs=-1, type=click.UNPROCESSED)
@click.option(
    "--dataset", default="mnist", show_default=True, help=f"{DATASET_CHOICES}, or an .npz file."
)
@click.option(
    "--model",
    "model_spec",
    default=None,
    help="Built-in model or a JSON/TOML model file (default as for train).",
)
@training_options("Seed of the shared initial weights and batch order.")
@click.option("--train-size", type=int, default=None, help="Use only the first N training images.")
@click.option("--test-size", type=int, default=None, help="Use only the first N test images.")
@click.option(
    "--reference",
    type=click.Choice(["torch", "keras"]),
    default="torch",
    show_default=True,
    help="The framework to compare with: PyTorch, or Keras 3 where it is installed. With a "
    "PROGRAM.py the default is keras; torch replays Sequential models.",
)
@click.option(
    "--parity",
    is_flag=True,
    help="Compare outputs, loss, gradients and weights layer by layer instead of training.",
)
@click.option(
    "--steps",
    type=int,
    default=100,
    show_default=True,
    help="With --parity: optimizer steps before the weights are compared.",
)
@data_dir_option
@click.option(
    "--out",
    type=click.Path(),
    default=None,
    help="Output directory (default: runs/<timestamp>-compare-<dataset>).",
)
def compare(
    program_and_args: tuple[str, ...],
    model_spec: str | None,
    reference: str,
    parity: bool,
    steps: int,
    out: str | None,
    **options: Any,
) -> None:
    if program_and_args:
        return compare_program(program_and_args, reference, out, options)
    from . import compare as comparison
    from .reference.keras import keras_available
    from .training import TrainSettings, load_data

    if importlib.util.find_spec("torch") is None:  # both references run on PyTorch
        raise CnnlabError("cnnlab compare needs PyTorch: pip install 'cnnlab[torch]'")
    if reference == "keras" and not keras_available():
        raise CnnlabError(
            "--reference keras needs Keras 3, which is not installed (pip install keras); or use "
            "--reference torch"
        )
    if parity and reference != "torch":
        raise CnnlabError("--parity compares with PyTorch only; leave out --reference")
    if steps < 1:
        raise CnnlabError(f"--steps must be at least 1, received {steps}")
    settings = TrainSettings(model=model_spec, **options)
    settings.validate()
    data = load_data(settings)
    out_dir = (
        Path(out)
        if out
        else runs.default_run_dir(f"{'parity' if parity else 'compare'}-{data.name}")
    )
    if parity:
        result = comparison.parity(settings, out_dir, steps=steps, data=data)
        from .reference.torch import format_parity

        console.print(format_parity(result["rows"]), highlight=False)
    else:
        from .progress import EpochProgress

        def reference_epoch_line(epoch: int, logs: dict[str, float]) -> None:
            err_console.print(
                f"{reference} epoch {epoch + 1}/{settings.epochs}{format_logs(logs)}",
                highlight=False,
            )

        summary = comparison.compare(
            settings,
            out_dir,
            {
                "numpy": [EpochProgress(err_console)],
                "reference": [reference_epoch_line],
            },
            data=data,
            reference=reference,
        )
        print_comparison(summary)
    console.print(
        f"Comparison directory: {out_dir}  (report: {out_dir / 'report.html'})", highlight=False
    )


def compare_program(
    program_and_args: tuple[str, ...], reference: str, out: str | None, options: dict[str, Any]
) -> None:
    """``cnnlab compare PROGRAM.py``: the program on the engine, replayed on Keras 3."""
    from .program_compare import compare_program as run_comparison
    from .reference.keras import keras_available

    program, *args = program_and_args
    context = click.get_current_context()
    given = [
        name
        for name in (
            "model_spec",
            "dataset",
            "batch_size",
            "optimizer",
            "learning_rate",
            "validation_split",
            "train_size",
            "test_size",
        )
        if context.get_parameter_source(name).name == "COMMANDLINE"
    ]
    if given:
        raise CnnlabError(
            "with a program, its own settings are used; leave out "
            f"{', '.join('--' + g.replace('_', '-').replace('-spec', '') for g in given)}"
        )
    reference = (
        reference if context.get_parameter_source("reference").name == "COMMANDLINE" else "keras"
    )
    if not program.endswith(".py"):
        raise CnnlabError(
            f"{program}: expected a Python program (PROGRAM.py), or options for a built-in model"
        )
    if importlib.util.find_spec("torch") is None or not keras_available():
        raise CnnlabError(
            "cnnlab compare PROGRAM.py needs Keras 3 and PyTorch: pip install keras torch"
        )
    epochs = (
        options["epochs"] if context.get_parameter_source("epochs").name == "COMMANDLINE" else None
    )
    if epochs is not None and epochs < 1:
        raise CnnlabError(f"--epochs must be at least 1, received {epochs}")
    out_dir = Path(out) if out else runs.default_run_dir(f"compare-{Path(program).stem}")

    def reference_epoch_line(epoch: int, epochs_: int, logs: dict[str, float]) -> None:
        err_console.print(
            f"{reference} epoch {epoch + 1}/{epochs_}{format_logs(logs)}", highlight=False
        )

    summary = run_comparison(
        program, args, out_dir, epochs=epochs, progress=reference_epoch_line, reference=reference
    )
    if "engines" in summary:
        print_comparison(summary)
    worst = max((row["output_max_rel"] for row in summary["parity"]), default=0.0)
    console.print(
        "Parity at the initial weights: largest relative difference of a layer output "
        f"{worst:.2g}.",
        highlight=False,
    )
    console.print(
        f"Comparison directory: {out_dir}  (report: {out_dir / 'report.html'})", highlight=False
    )


def print_comparison(summary: dict[str, Any]) -> None:
    from .compare import metric_rows

    table = Table(title=f"NumPy engine vs {summary['reference_name']} on {summary['dataset']}")
    for column in ("metric", "numpy", summary["reference"]):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for label, *values in metric_rows(summary):
        table.add_row(
            label,
            *(
                "n/a" if v is None else f"{v:,}" if isinstance(v, int) else f"{v:.4f}"
                for v in values
            ),
        )
    console.print(table)
    agree = summary["agreement"]
    console.print(
        f"Same prediction on {agree['same_prediction_share']:.2%} of the test images; largest "
        "probability "
        f"difference {agree['max_abs_prob_diff']:.3g}. {summary['note']}",
        highlight=False,
    )


# ----------------------------------------------------------------------------- run
@cli.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    help="""Run an unmodified Keras / tf.keras program on cnnlab's engine.

`import keras`, `from tensorflow import keras`, `tf.keras...` all lead to cnnlab.keras;
`import tensorflow as tf` gives tf.keras and a few NumPy helpers (tf.nn.softmax, tf.argmax,
...). ARGS go to the program (its sys.argv); its exit code and traceback are its own.
With --engine keras the same program runs on real Keras 3 (torch backend), for comparison.

\b
Examples:
  cnnlab run mnist_convnet.py
  cnnlab run train.py --epochs 3          # --epochs is the program's option
  cnnlab run --engine keras mnist_convnet.py
""",
)
@click.option(
    "--engine",
    type=click.Choice(["numpy", "keras"]),
    default="numpy",
    show_default=True,
    help="numpy (cnnlab's engine) or keras (real Keras 3 on PyTorch, where installed).",
)
@click.argument("program", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(engine: str, program: str, args: tuple[str, ...]) -> int:
    from .keras_run import run_program

    return run_program(program, args, engine)


# ----------------------------------------------------------------------------- lab
@cli.command(
    help="""A local web lab: the playground, your runs' models from the inside, your studies.

Serves DIR (default runs/) on http://127.0.0.1:8765 and opens the browser; the URL carries
a token (as Jupyter's). Only files inside DIR are read or written. Ctrl-C stops it.

\b
Examples:
  cnnlab lab
  cnnlab lab runs --port 9000 --no-browser
"""
)
@click.argument("directory", default="runs", type=click.Path(file_okay=False))
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (another than loopback only when you mean it).",
)
@click.option("--port", type=int, default=8765, show_default=True, help="Port (0: any free port).")
@click.option("--no-browser", is_flag=True, help="Do not open a browser.")
def lab(directory: str, host: str, port: int, no_browser: bool) -> None:
    from .lab.server import serve

    try:
        serve(
            Path(directory),
            host=host,
            port=port,
            open_browser=not no_browser,
            echo=lambda line: console.print(line, highlight=False),
        )
    except KeyboardInterrupt:  # uvicorn hands Ctrl-C on after its clean shutdown
        pass
    console.print("cnnlab lab: stopped", highlight=False)


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((i for i, arg in enumerate(argv) if not arg.startswith("-")), len(argv))
    own = (
        argv[: command + 1] if argv[command : command + 1] == ["run"] else argv
    )  # the rest is the program's
    debug = "--debug" in own
    if debug:  # accepted after the subcommand too: `cnnlab train ... --debug`
        argv = ["--debug", *(arg for arg in own if arg != "--debug"), *argv[len(own) :]]
    try:
        code = cli.main(args=argv, prog_name="cnnlab", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.exceptions.NoArgsIsHelpError as err:
        err.show()
        return 2
    except click.UsageError as err:
        command = err.ctx.command_path if err.ctx else "cnnlab"
        print(f"cnnlab: error: {err.format_message()} (see '{command} --help')", file=sys.stderr)
        return 2
    except click.ClickException as err:
        print(f"cnnlab: error: {err.format_message()}", file=sys.stderr)
        return 2
    except (KeyboardInterrupt, click.exceptions.Abort) as err:
        reason = err.__cause__ or err  # click wraps Ctrl-C in Abort; the message is on the cause
        print(f"cnnlab: {str(reason) or 'interrupted'}", file=sys.stderr)
        return 130
    except (CnnlabError, ValueError, OSError) as err:
        if debug:
            traceback.print_exc()
        hint = (
            ""
            if isinstance(err, (CnnlabError, OSError)) or debug
            else " (run with --debug for the traceback)"
        )
        print(f"cnnlab: error: {err}{hint}", file=sys.stderr)
        return 2


def entry_point() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry_point()
