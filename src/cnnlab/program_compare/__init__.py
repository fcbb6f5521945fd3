"""``cnnlab compare PROGRAM.py``: a learner's own Keras program on the engine and on Keras 3.

1. **Record.** The program runs unmodified on the NumPy engine (``cnnlab run``'s import hook)
   while a ``Recorder`` watches the first model it trains: the model as ``fit`` starts (config,
   initial weights, compile settings: saved as ``initial.keras``), each ``fit`` call (data,
   batch size, epochs actually run, validation split or data, the state of the shuffling
   generator, the learning rate of each epoch, as callbacks may change it), and the data of
   its last ``evaluate`` (else ``predict``, else its validation data).
2. **Replay.** Real Keras 3 (torch backend) loads ``initial.keras`` (same weights, same
   optimizer, loss and metrics) and trains on the same batches in the same order: each epoch's
   permutation comes from a copy of the engine's generator; each epoch runs with the engine's
   learning rate of that epoch.
3. **Compare.** Both trained models predict the evaluation data; the comparison directory
   holds what ``cnnlab compare`` writes for built-in models (metrics side by side, confusion
   matrices, per-class scores, ROC, agreement, curves, seconds per epoch, memory) and a
   per-layer parity table at the initial weights (each layer's output and its weights'
   gradients on the first batch, dropout off).

Modules, in the order of one comparison:

```
record.py    FitCall and the Recorder: the program's fits on the engine, initial.keras
replay.py    the recorded fits replayed on Keras 3 or on the PyTorch twin (Replay)
parity.py    per-layer parity at the initial weights, engine against Keras 3
summary.py   comparison.json: evaluation data, metrics of both engines, agreement, notes
report.py    the figures and report.html (``cnnlab report DIR``)
command.py   compare_program: the command from end to end
```
"""

from __future__ import annotations

from .command import compare_program
from .parity import parity_at_start, relative_difference
from .record import FitCall, LearningRateLog, Recorder, bind_fit_arguments, first_batch
from .replay import Replay, replay_keras, replay_on_keras, replay_torch
from .report import render_program_report, write_program_figures
from .summary import PROGRAM_NOTE, summarize

__all__ = [
    "PROGRAM_NOTE",
    "FitCall",
    "LearningRateLog",
    "Recorder",
    "Replay",
    "bind_fit_arguments",
    "compare_program",
    "first_batch",
    "parity_at_start",
    "relative_difference",
    "render_program_report",
    "replay_keras",
    "replay_on_keras",
    "replay_torch",
    "summarize",
    "write_program_figures",
]
