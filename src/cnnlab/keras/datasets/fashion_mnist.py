"""keras.datasets.fashion_mnist: ``load_data()`` from ``cnnlab.datasets.fashion_mnist``."""

from __future__ import annotations

from cnnlab.keras.datasets import dataset_getattr

__getattr__ = dataset_getattr("fashion_mnist")
