"""``cnnlab compare PROGRAM.py`` as one function: run and record on the engine, replay on the
reference, summarize, write the comparison directory and its report."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .. import runs
from ..errors import CnnlabError
from .record import Recorder
from .replay import replay_keras, replay_torch
from .report import render_program_report, write_program_figures
from .summary import summarize


def compare_program(
    program: str | Path,
    args: Sequence[str],
    out_dir: Path,
    epochs: int | None = None,
    progress: Any = None,
    reference: str = "keras",
) -> dict[str, Any]:
    """Run, record, replay on the reference (Keras 3, or the PyTorch twin for Sequential models),
    compare; writes the comparison directory, returns comparison.json."""
    from ..keras_run import run_program

    out_dir = runs.prepare_run_dir(out_dir)
    recorder = Recorder(out_dir, epochs)
    with recorder.watching():
        code = run_program(program, args, engine="numpy")
    if code != 0:
        raise CnnlabError(
            f"{program} exited with code {code} on the NumPy engine; fix that first (cnnlab run "
            f"{program})"
        )
    if recorder.model is None:
        raise CnnlabError(
            f"{program} trained no model (it never called model.fit), so there is nothing to "
            "compare; "
            "a program with its own training loop cannot be replayed"
        )
    replay = (replay_keras if reference == "keras" else replay_torch)(recorder, progress)
    summary = summarize(recorder, replay, Path(program).name)
    recorder.model.save(out_dir / "numpy.cnnlab")
    replay.save(out_dir)
    runs.write_json(out_dir / "comparison.json", summary)
    write_program_figures(out_dir, summary)
    render_program_report(out_dir)
    return summary
