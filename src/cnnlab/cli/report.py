"""``cnnlab report`` and ``explain``: reports and explanations of finished work."""

from __future__ import annotations

from pathlib import Path

import click

from .. import runs
from ..errors import CnnlabError
from .app import (
    cli,
    console,
    data_dir_option,
)
from .train import check_input_shape, run_dataset


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
    from ..report import render_report

    console.print(f"Report: {render_report(run)}", highlight=False)


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
    from ..explain import explain_image
    from ..report import render_run_report
    from ..training import TrainSettings, load_data

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
