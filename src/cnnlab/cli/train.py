"""``cnnlab train``, ``evaluate``, ``predict`` and ``summary``: a model and its run directory."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.table import Table

from .. import models, runs
from ..errors import CnnlabError
from .app import (
    DATASET_CHOICES,
    cli,
    console,
    data_dir_option,
    err_console,
    training_options,
)


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
    from ..progress import EpochProgress
    from ..training import TrainSettings, check_run_dir, prepare, resume_settings
    from ..training import train as run_training

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
    from ..evaluation import HEADLINE

    for key in (*HEADLINE, "params"):
        value = metrics.get(key)
        table.add_row(
            key,
            "n/a" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.4f}",
        )
    if metrics.get("epoch_seconds"):
        table.add_row(
            "seconds per epoch (median)", f"{float(np.median(metrics['epoch_seconds'])):.3g}"
        )
    console.print(table)


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
    from ..evaluation import evaluate_model, run_facts
    from ..training import TrainSettings, load_data

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
    from ..images import load_image

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
