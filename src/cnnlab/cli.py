"""The ``cnnlab`` command.

Every command prints a progress bar on long work, writes into a run directory (``--out``,
default ``runs/<timestamp>-<name>``) and, on bad input, exits with code 2 and one line
saying what is wrong (the traceback only with ``--debug``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from . import __version__, models, runs
from .errors import CnnlabError

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)

EXAMPLES = """
\b
Examples:
  cnnlab train                                  # the seed MNIST CNN, 15 epochs
  cnnlab train --dataset digits --epochs 5      # no download needed
  cnnlab evaluate runs/20261122-101500-mnist
  cnnlab predict runs/20261122-101500-mnist digit.png
"""


@click.group(help="cnnlab: a laboratory for convolutional neural networks.\n" + EXAMPLES,
             context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="cnnlab")
@click.option("--debug", is_flag=True, help="Show the full traceback of an error.")
def cli(debug: bool) -> None:
    pass


def data_dir_option(function: Any) -> Any:
    return click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                        help="Folder with one sub-folder per dataset (default: $CNNLAB_DATA_DIR, else ~/.cache/cnnlab).")(function)


# --------------------------------------------------------------------------- train
@cli.command(help="""Train a model and write a run directory (model, history, metrics, figures, report).

\b
Default: the seed MNIST CNN (Conv32-Pool-Conv64-Pool-Flatten-Dropout-Dense10), Adam,
batch 128, 15 epochs, validation split 0.1, as the classic Keras example.

\b
Examples:
  cnnlab train
  cnnlab train --dataset digits --epochs 10 --out runs/digits
  cnnlab train --model seed-cnn --train-size 5000 --epochs 2 --engine torch
  cnnlab train --model my_model.json --dataset my_data.npz
""")
@click.option("--dataset", default="mnist", show_default=True, help="mnist, digits, or a path to an .npz file (x_train, y_train, x_test, y_test).")
@click.option("--model", "model_spec", default=None, help=f"Built-in ({', '.join(models.BUILTIN_MODELS)}) or a JSON/TOML model file in the get_config format. Default: seed-cnn (seed-cnn-same for images under 10 pixels).")
@click.option("--epochs", type=int, default=15, show_default=True, help="Passes over the training data.")
@click.option("--batch-size", type=int, default=128, show_default=True, help="Images per gradient step.")
@click.option("--optimizer", default="adam", show_default=True, type=click.Choice(["adam", "sgd", "rmsprop"]), help="Optimizer, with Keras defaults.")
@click.option("--learning-rate", type=float, default=None, help="Learning rate (default: the optimizer's Keras default).")
@click.option("--validation-split", type=float, default=0.1, show_default=True, help="Last fraction of the training data held out for validation.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of initialisation, shuffling and dropout (same seed, same result).")
@click.option("--engine", default="numpy", show_default=True, type=click.Choice(["numpy", "torch"]), help="numpy (cnnlab's own engine) or torch (the PyTorch reference).")
@click.option("--train-size", type=int, default=None, help="Use only the first N training images.")
@click.option("--test-size", type=int, default=None, help="Use only the first N test images.")
@data_dir_option
@click.option("--out", type=click.Path(), default=None, help="Run directory (default: runs/<timestamp>-<dataset>).")
def train(model_spec: str | None, out: str | None, **options: Any) -> None:
    from .training import TrainSettings, build_compiled_model, load_data, train as run_training

    settings = TrainSettings(model=model_spec, **options)
    settings.validate()
    data = load_data(settings)
    model, _ = build_compiled_model(settings, data)
    model.summary(print_fn=lambda line: console.print(line, highlight=False))
    run_dir = Path(out) if out else runs.default_run_dir(data.name)
    steps = -(-int(len(data.x_train) * (1 - settings.validation_split)) // settings.batch_size)
    from .progress import EpochProgress

    result = run_training(settings, run_dir, [EpochProgress(steps, settings.epochs, err_console)], data=data)
    print_metrics(result.metrics)
    console.print(f"Run directory: {result.run_dir}  (report: {result.run_dir / 'report.html'})", highlight=False)


def print_metrics(metrics: dict[str, Any]) -> None:
    table = Table(title="Test metrics")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("test_accuracy", "test_loss", "precision_macro", "recall_macro", "f1_macro", "roc_auc_ovr", "params"):
        value = metrics.get(key)
        table.add_row(key, "n/a" if value is None else f"{value:,}" if isinstance(value, int) else f"{value:.4f}")
    if metrics.get("epoch_seconds"):
        table.add_row("seconds per epoch (median)", f"{float(np.median(metrics['epoch_seconds'])):.1f}")
    console.print(table)


# ------------------------------------------------------------------------ evaluate
@cli.command(help="""Metrics of a trained model on a dataset's test images.

\b
Examples:
  cnnlab evaluate runs/20261122-101500-mnist
  cnnlab evaluate runs/my-run --dataset my_data.npz --json metrics.json
""")
@click.argument("run", type=click.Path())
@click.option("--dataset", default=None, help="Dataset to evaluate on (default: the run's own).")
@click.option("--test-size", type=int, default=None, help="Use only the first N test images.")
@data_dir_option
@click.option("--json", "json_path", type=click.Path(dir_okay=False), default=None, help="Also write the metrics to this JSON file.")
def evaluate(run: str, dataset: str | None, test_size: int | None, data_dir: str | None, json_path: str | None) -> None:
    from .engine import load_model
    from .training import PreparedData, TrainSettings, evaluate as evaluate_model, load_data

    model = load_model(runs.model_path(run))
    if dataset is None:
        dataset = runs.read_json(Path(run), "config.json")["dataset"] if Path(run).is_dir() else "mnist"
    settings = TrainSettings(dataset=dataset, test_size=test_size, train_size=2, data_dir=data_dir)
    settings.validate()
    data = load_data(settings)
    check_input_shape(model, data)
    metrics, _ = evaluate_model(model, data, settings, [])
    print_metrics(metrics)
    if json_path:
        runs.write_json(Path(json_path), metrics)


def check_input_shape(model: Any, data: Any) -> None:
    if tuple(model.input_shape) != data.input_shape:
        raise CnnlabError(f"the model expects images of shape {tuple(model.input_shape)}, the dataset has {data.input_shape}")
    if model.output_shape[-1] != data.num_classes:
        raise CnnlabError(f"the model has {model.output_shape[-1]} outputs, the dataset has {data.num_classes} classes")


# ------------------------------------------------------------------------- predict
@cli.command(help="""Classes and probabilities for image files (PNG, JPEG, any size).

Each image is converted to the model's input: grey (or RGB), resized, scaled to 0..1.
MNIST digits are light on dark; with --invert auto (the default) an image whose mean is
light is inverted first, so a dark digit on white paper works.

\b
Example:
  cnnlab predict runs/20261122-101500-mnist three.png seven.jpg --top 3
""")
@click.argument("run", type=click.Path())
@click.argument("images", nargs=-1, required=True, type=click.Path())
@click.option("--top", type=int, default=3, show_default=True, help="How many classes to list per image.")
@click.option("--invert", type=click.Choice(["auto", "yes", "no"]), default="auto", show_default=True, help="Invert light backgrounds.")
def predict(run: str, images: tuple[str, ...], top: int, invert: str) -> None:
    from .engine import load_model
    from .images import load_image

    model = load_model(runs.model_path(run))
    names = class_names_of(Path(run), model.output_shape[-1])
    batch = np.stack([load_image(Path(p), model.input_shape, invert) for p in images])
    probabilities = model.predict(batch)
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
@cli.command(help="""Print the layer table of a run's model, a model file, or a built-in model.

\b
Examples:
  cnnlab summary runs/20261122-101500-mnist
  cnnlab summary seed-cnn
  cnnlab summary seed-dense --input-shape 2 --classes 2
""")
@click.argument("model")
@click.option("--input-shape", default=None, help="For a built-in or config file: input shape, e.g. 28,28,1 (default 28,28,1; 2 for seed-dense).")
@click.option("--classes", type=int, default=None, help="For a built-in or config file: number of classes (default 10; 2 for seed-dense).")
def summary(model: str, input_shape: str | None, classes: int | None) -> None:
    from .engine import load_model

    path = Path(model)
    if model not in models.BUILTIN_MODELS and (path.is_dir() or path.suffix == runs.MODEL_FILE.split(".")[-1] or path.suffix == ".cnnlab"):
        built = load_model(runs.model_path(path))
    else:
        dense = model == "seed-dense"
        shape = parse_shape(input_shape) if input_shape else ((2,) if dense else (28, 28, 1))
        classes = classes or (2 if dense else 10)
        built = models.build_model(models.model_config(model, shape, classes), classes, seed=0)
    built.summary(print_fn=lambda line: console.print(line, highlight=False))


def parse_shape(text: str) -> tuple[int, ...]:
    try:
        shape = tuple(int(part) for part in text.replace("x", ",").split(",") if part.strip())
    except ValueError:
        raise CnnlabError(f"input shape {text!r} is not a list of integers such as 28,28,1") from None
    if not shape or min(shape) <= 0:
        raise CnnlabError(f"input shape {text!r} must hold positive integers")
    return shape


# ------------------------------------------------------------------------- explore
@cli.command(help="""Look at a dataset: samples per class, class distribution, pixel intensities, mean images.

Prints shapes, dtype, value range and counts, and writes the figures and a report.

\b
Examples:
  cnnlab explore mnist
  cnnlab explore digits --per-class 8 --out runs/digits-explore
""")
@click.argument("dataset")
@click.option("--per-class", type=int, default=5, show_default=True, help="Samples shown per class.")
@click.option("--seed", type=int, default=0, show_default=True, help="Which random samples are shown.")
@data_dir_option
@click.option("--out", type=click.Path(), default=None, help="Output directory (default: runs/<timestamp>-explore-<dataset>).")
def explore(dataset: str, per_class: int, seed: int, data_dir: str | None, out: str | None) -> None:
    from .datasets import load_dataset
    from .explore import describe, write_exploration

    if per_class < 1:
        raise CnnlabError(f"--per-class must be at least 1, received {per_class}")
    data = load_dataset(dataset, data_dir=data_dir)
    out_dir = runs.prepare_run_dir(Path(out) if out else runs.default_run_dir(f"explore-{data.name}"))
    table = Table(title=f"Dataset {data.name} ({data.source})")
    for column in ("split", "images", "shape", "dtype", "min", "max", "classes"):
        table.add_column(column)
    for row in describe(data):
        table.add_row(*[str(v) for v in row])
    console.print(table)
    report = write_exploration(data, out_dir, per_class=per_class, seed=seed)
    console.print(f"Figures and report: {out_dir}  (report: {report})", highlight=False)


# -------------------------------------------------------------------------- report
@cli.command(help="""(Re)build the self-contained report.html of a run directory from its files, without retraining.

\b
Example:
  cnnlab report runs/20261122-101500-mnist
""")
@click.argument("run", type=click.Path())
def report(run: str) -> None:
    from .report import render_run_report

    path = render_run_report(Path(run))
    console.print(f"Report: {path}", highlight=False)


# ---------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 bad input, 130 interrupted)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    try:
        code = cli.main(args=argv, prog_name="cnnlab", standalone_mode=False)
        return code if isinstance(code, int) else 0
    except click.ClickException as err:
        err.show()
        return 2
    except (KeyboardInterrupt, click.exceptions.Abort):
        print("cnnlab: interrupted", file=sys.stderr)
        return 130
    except (CnnlabError, ValueError, OSError) as err:
        if debug:
            raise
        hint = "" if isinstance(err, CnnlabError) else " (run with --debug for the traceback)"
        print(f"cnnlab: error: {err}{hint}", file=sys.stderr)
        return 2


def entry_point() -> None:
    sys.exit(main())
