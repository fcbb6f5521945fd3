"""``cnnlab approx``: a network learns a function of two variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from .. import runs
from .app import (
    OPTIMIZER_CHOICES,
    cli,
    console,
    err_console,
)


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
    from ..approx import ApproxSettings, headline, prepare, run_approx
    from ..progress import EpochProgress

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
