"""``cnnlab run`` and ``lab``: the learner's own Keras program, and the browser lab."""

from __future__ import annotations

from pathlib import Path

import click

from .app import (
    cli,
    console,
)


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
    from ..keras_run import run_program

    return run_program(program, args, engine)


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
    from ..lab.server import serve

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
