"""The ``cnnlab`` command group, its shared options and consoles.

Every command prints a progress bar on long work, writes into a run directory (``--out``,
default ``runs/<timestamp>-<name>``) and, on bad input, exits with code 2 and one line
saying what is wrong (the traceback only with ``--debug``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click
from rich.console import Console

from .. import __version__
from ..datasets import DATASETS
from ..engine.optimizers import OPTIMIZERS

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
    from ..connect import connect_engine

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


# --epochs, --batch-size, --optimizer, --learning-rate and --validation-split, as train and compare
# share them (the optimizer choices from the engine's registry)
TRAINING_OPTIONS = [
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
]


def training_options(seed_help: str) -> Callable[[Any], Any]:
    """The shared TRAINING_OPTIONS and --seed with the command's own help."""
    options = [
        *TRAINING_OPTIONS,
        click.option("--seed", type=int, default=0, show_default=True, help=seed_help),
    ]

    def apply(function: Any) -> Any:
        for option in reversed(options):
            function = option(function)
        return function

    return apply
