"""``cnnlab compare``: the engine beside PyTorch or Keras 3, for a built-in model or a program."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import click
from rich.table import Table

from .. import runs
from ..engine.callbacks import format_logs
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
    from ..training import TrainSettings, load_data

    check_reference(reference, parity, steps)
    settings = TrainSettings(model=model_spec, **options)
    settings.validate()
    data = load_data(settings)
    kind = "parity" if parity else "compare"
    out_dir = Path(out) if out else runs.default_run_dir(f"{kind}-{data.name}")
    if parity:
        print_parity(settings, out_dir, steps, data)
    else:
        compare_builtin(settings, out_dir, data, reference)
    console.print(
        f"Comparison directory: {out_dir}  (report: {out_dir / 'report.html'})", highlight=False
    )


def check_reference(reference: str, parity: bool, steps: int) -> None:
    """Refuse, before any data is read, a reference that is not installed or not offered."""
    from ..reference.keras import keras_available

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


def print_parity(settings: Any, out_dir: Path, steps: int, data: Any) -> None:
    """``--parity``: layer by layer against PyTorch, dropout off, for ``steps`` steps."""
    from .. import compare as comparison
    from ..reference.torch import format_parity

    result = comparison.parity(settings, out_dir, steps=steps, data=data)
    console.print(format_parity(result["rows"]), highlight=False)


def compare_builtin(settings: Any, out_dir: Path, data: Any, reference: str) -> None:
    """Train a built-in model on both engines, with a progress bar for each."""
    from .. import compare as comparison
    from ..progress import EpochProgress

    progress = {
        "numpy": [EpochProgress(err_console)],
        "reference": [EpochProgress(err_console, label=f"{reference} epoch")],
    }
    summary = comparison.compare(settings, out_dir, progress, data=data, reference=reference)
    print_comparison(summary)


def compare_program(
    program_and_args: tuple[str, ...], reference: str, out: str | None, options: dict[str, Any]
) -> None:
    """``cnnlab compare PROGRAM.py``: the program on the engine, replayed on Keras 3."""
    from ..program_compare import compare_program as run_comparison

    program, *args = program_and_args
    context = click.get_current_context()
    refuse_builtin_options(context)
    check_program(program)
    if context.get_parameter_source("reference").name != "COMMANDLINE":
        reference = "keras"
    epochs = program_epochs(context, options["epochs"])
    out_dir = Path(out) if out else runs.default_run_dir(f"compare-{Path(program).stem}")

    def reference_epoch_line(epoch: int, epochs_: int, logs: dict[str, float]) -> None:
        err_console.print(
            f"{reference} epoch {epoch + 1}/{epochs_}{format_logs(logs)}", highlight=False
        )

    summary = run_comparison(
        program, args, out_dir, epochs=epochs, progress=reference_epoch_line, reference=reference
    )
    print_program_comparison(summary, out_dir)


BUILTIN_ONLY = (
    "model_spec",
    "dataset",
    "batch_size",
    "optimizer",
    "learning_rate",
    "validation_split",
    "train_size",
    "test_size",
)


def refuse_builtin_options(context: click.Context) -> None:
    """A program brings its own settings: options meant for a built-in model are refused."""
    given = [n for n in BUILTIN_ONLY if context.get_parameter_source(n).name == "COMMANDLINE"]
    if given:
        raise CnnlabError(
            "with a program, its own settings are used; leave out "
            f"{', '.join('--' + g.replace('_', '-').replace('-spec', '') for g in given)}"
        )


def check_program(program: str) -> None:
    """A .py file, and Keras 3 and PyTorch installed to replay it."""
    from ..reference.keras import keras_available

    if not program.endswith(".py"):
        raise CnnlabError(
            f"{program}: expected a Python program (PROGRAM.py), or options for a built-in model"
        )
    if importlib.util.find_spec("torch") is None or not keras_available():
        raise CnnlabError(
            "cnnlab compare PROGRAM.py needs Keras 3 and PyTorch: pip install keras torch"
        )


def program_epochs(context: click.Context, epochs: int) -> int | None:
    """--epochs when given (every fit of the program is shortened to it), else None."""
    if context.get_parameter_source("epochs").name != "COMMANDLINE":
        return None
    if epochs < 1:
        raise CnnlabError(f"--epochs must be at least 1, received {epochs}")
    return epochs


def print_program_comparison(summary: dict[str, Any], out_dir: Path) -> None:
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
    from ..compare import metric_rows

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
