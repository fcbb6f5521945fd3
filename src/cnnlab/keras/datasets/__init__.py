"""keras.datasets: ``mnist``, ``fashion_mnist``, ``cifar10``, each a module with ``load_data()``.

Each delegates to ``cnnlab.datasets.<name>`` (files in the data directory, Keras's shapes and
dtypes); any other Keras dataset fails with one line.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import Any

from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.keras.namespace import keras_module

DATASETS = ("mnist", "fashion_mnist", "cifar10")


def dataset_module(name: str) -> ModuleType:
    """``cnnlab.datasets.<name>``, or one line saying this build has no such dataset yet."""
    try:
        return importlib.import_module(f"cnnlab.datasets.{name}")
    except ModuleNotFoundError as err:
        if err.name != f"cnnlab.datasets.{name}":
            raise
        raise UnsupportedKerasFeature(
            f"keras.datasets.{name} is not available in this cnnlab build"
        ) from None


def dataset_getattr(name: str) -> Any:
    """The ``__getattr__`` of ``cnnlab.keras.datasets.<name>``: names of
    ``cnnlab.datasets.<name>``."""

    def __getattr__(attribute: str) -> Any:
        if attribute.startswith("__") and attribute.endswith("__"):
            raise AttributeError(
                f"module 'cnnlab.keras.datasets.{name}' has no attribute {attribute!r}"
            )
        return getattr(dataset_module(name), attribute)

    return __getattr__


def resolve_datasets() -> dict[str, Any]:
    return {name: importlib.import_module(f"{__name__}.{name}") for name in DATASETS}


__getattr__, __dir__ = keras_module(__name__, "keras.datasets", resolve_datasets, "datasets")
