"""How a data set is cut for training: the validation split and the number of batches.

The one place these counts are made; the engine's fit/evaluate/predict, the progress bars
(through Keras's ``params["steps"]``) and the checks before a run all use them.
"""

from __future__ import annotations

import math


def training_count(samples: int, validation_split: float) -> int:
    """How many of ``samples`` are trained on: Keras's rule keeps the first
    ``floor(samples * (1 - validation_split))`` and validates on the rest."""
    return int(math.floor(samples * (1.0 - validation_split)))


def steps_per_epoch(samples: int, batch_size: int) -> int:
    """Batches in one pass over ``samples``: the last one may be short."""
    return math.ceil(samples / batch_size)
