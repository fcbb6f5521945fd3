"""``cnnlab explore``: a dataset's pictures and statistics."""

from __future__ import annotations

from pathlib import Path

import click
from rich.table import Table

from .. import runs
from ..errors import CnnlabError
from .app import (
    DATASET_CHOICES,
    cli,
    console,
    data_dir_option,
)


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
    from ..datasets import load_dataset
    from ..explore import describe, write_exploration

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
