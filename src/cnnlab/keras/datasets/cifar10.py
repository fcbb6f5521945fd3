"""keras.datasets.cifar10: ``load_data()`` from ``cnnlab.datasets.cifar10``."""

from __future__ import annotations

from cnnlab.keras.datasets import dataset_getattr

__getattr__ = dataset_getattr("cifar10")
