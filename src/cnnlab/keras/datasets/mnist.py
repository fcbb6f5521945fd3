"""keras.datasets.mnist: ``load_data()`` from ``cnnlab.datasets.mnist``."""

from __future__ import annotations

from cnnlab.keras.datasets import dataset_getattr

__getattr__ = dataset_getattr("mnist")
