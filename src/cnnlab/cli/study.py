"""``cnnlab study``: a hyperparameter study, and the table of its best trials."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from ..errors import CnnlabError
from .app import (
    cli,
    console,
    data_dir_option,
    err_console,
)


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
    from ..study.report import render_study_report
    from ..study.runners import LocalRunner, RayRunner, prepare_data
    from ..study.spec import load_spec
    from ..study.store import DB_NAME, default_study_dir

    if (jobs is not None or threads is not None) and ray_address:
        raise CnnlabError(
            "--jobs/--threads and --ray exclude each other: Ray gives each trial one CPU of the "
            "cluster"
        )
    study_spec = load_spec(spec)
    runner = RayRunner(ray_address) if ray_address else LocalRunner(jobs, threads)
    out_dir = Path(out) if out else default_study_dir(study_spec.name)
    db_path = Path(db) if db else out_dir / DB_NAME
    counts = run_trials(study_spec, db_path, runner, prepare_data(study_spec, data_dir))
    report_path = render_study_report(db_path, out_dir)
    print_study(db_path)
    summary = ", ".join(
        f"{counts[s]} {s}" for s in ("done", "invalid", "failed", "running", "pending") if counts[s]
    )
    console.print(f"Trials: {summary}. Report: {report_path}", highlight=False)


def run_trials(study_spec: Any, db_path: Path, runner: Any, data: Any) -> Any:
    """Run the study's unfinished trials into its database; returns the counts per status.
    Ctrl-C says how many trials are kept and how to go on."""
    from ..study.runners import open_store, run_study
    from ..training import Interrupted

    with open_store(study_spec, db_path) as store:
        left, total = len(store.unfinished()), sum(store.counts().values())
        console.print(
            f"Study {study_spec.name}: {total} trials, {left} to run, on {runner.describe()}; "
            f"database {db_path}",
            highlight=False,
        )
        try:
            return run_study(study_spec, store, runner, data, err_console)
        except KeyboardInterrupt:
            kept = store.counts()
            finished = sum(kept[s] for s in ("done", "failed", "invalid"))
            raise Interrupted(
                f"interrupted: {finished} of {total} trials finished, kept in {db_path}; "
                "go on with the same command"
            ) from None


def print_study(db_path: Path, top: int = 10) -> None:
    """The best finished trials of a study as a table."""
    from ..study.report import trial_rows
    from ..study.store import StudyStore

    with StudyStore(db_path, create=False) as store:
        axes = list(store.study()["spec"]["axes"])
        rows = [
            r for r in trial_rows({a: [] for a in axes}, store.trials()) if r["status"] == "done"
        ]
    rows.sort(key=lambda r: -r["accuracy"])
    headers = axis_headers(axes)
    renamed = [f"{h} = {axis}" for h, axis in zip(headers, axes, strict=True) if h != axis]
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


def axis_headers(axes: list[str]) -> list[str]:
    """Column names of the axes: "pool_size" for "max_pooling2d.pool_size" where that argument
    name is unique, else the whole address."""
    arguments = [axis.rsplit(".", 1)[-1] for axis in axes]
    return [arg if arguments.count(arg) == 1 else axis for axis, arg in zip(axes, arguments)]
