"""Datasets: MNIST, Fashion-MNIST, CIFAR-10, scikit-learn's 8x8 digits, and a user's own
``.npz`` or IDX folder.

Keras-style loaders return ``((x_train, y_train), (x_test, y_test))``::

    from cnnlab.datasets import mnist           # as `from keras.datasets import mnist`
    (x_train, y_train), (x_test, y_test) = mnist.load_data()

:func:`load_dataset` wraps any of them in a :class:`Dataset` with class names and the
source, for the command line's ``--dataset NAME|PATH`` (NAME one of :data:`DATASETS`).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np

from cnnlab.datasets import cifar10, digits, fashion_mnist, mnist
from cnnlab.datasets.datadir import resolve_data_dir
from cnnlab.datasets.npz import SplitPair, load_class_names, load_npz
from cnnlab.datasets.preprocessing import prepare_images
from cnnlab.errors import DatasetError

# The built-in datasets by name: the one list the command line's help and checks come from.
DATASETS = ("mnist", "fashion_mnist", "cifar10", "digits")
# Those kept in the data directory (downloaded when absent), by name.
DATA_DIR_DATASETS = {"mnist": mnist, "fashion_mnist": fashion_mnist, "cifar10": cifar10}

__all__ = [
    "DATASETS",
    "Dataset",
    "cifar10",
    "digits",
    "fashion_mnist",
    "load_dataset",
    "mnist",
    "prepare_images",
    "resolve_data_dir",
]


@dataclasses.dataclass
class Dataset:
    """A labelled image dataset split into training and test sets.

    ``x_*``: images (N, H, W) or (N, H, W, C) as loaded (uint8 for the built-ins);
    ``y_*``: integer labels (N,); ``class_names[k]`` names label ``k``; ``source`` is the
    file or folder the arrays came from, or ``"scikit-learn"``.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    source: str

    @property
    def num_classes(self) -> int:
        """Number of classes (the length of ``class_names``)."""
        return len(self.class_names)


def load_dataset(
    name_or_path: str | os.PathLike[str],
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
) -> Dataset:
    """Load a built-in dataset by name (one of :data:`DATASETS`) or a dataset from a path.

    A path is an ``.npz`` file with ``x_train, y_train, x_test, y_test`` (and optionally
    ``class_names``), or a folder holding MNIST-format IDX files. ``data_dir`` and
    ``download`` apply to the datasets of the data directory (MNIST, Fashion-MNIST,
    CIFAR-10; see their ``load_data``). Labels are (N,) (CIFAR-10's (N, 1) flattened).
    """
    name = str(name_or_path).strip()
    module = DATA_DIR_DATASETS.get(name.lower())
    if module is not None:
        split, source = module.load_with_source(data_dir=data_dir, download=download)
        return make_dataset(name.lower(), split, module.CLASS_NAMES, str(source))
    if name.lower() == "digits":
        return make_dataset("digits", digits.load_data(), digits.CLASS_NAMES, "scikit-learn")
    path = Path(name).expanduser()
    if path.suffix == ".npz" or path.exists() or "/" in name or os.sep in name:
        return load_dataset_path(path)
    raise DatasetError(
        f"unknown dataset {name!r}: choose one of {', '.join(DATASETS)}, or give a path to a "
        ".npz file with x_train, y_train, x_test, y_test"
    )


def load_dataset_path(path: Path) -> Dataset:
    """A dataset from an ``.npz`` file or a folder of MNIST-format IDX files."""
    if path.is_dir():
        split = mnist.load_data(path=path)
        return make_dataset(path.resolve().name, split, mnist.CLASS_NAMES, str(path))
    if not path.exists():
        raise DatasetError(
            f"{path}: file not found; expected an .npz file with x_train, y_train, x_test, y_test"
        )
    if path.suffix != ".npz":
        raise DatasetError(
            f"{path}: not an .npz file; expected an .npz file with x_train, y_train, x_test, "
            "y_test (np.savez) or a folder of MNIST-format IDX files"
        )
    split = load_npz(path)
    (_, y_train), (_, y_test) = split
    num_classes = int(max(y_train.max(), y_test.max())) + 1
    return make_dataset(path.stem, split, load_class_names(path, num_classes), str(path))


def make_dataset(name: str, split: SplitPair, class_names: list[str], source: str) -> Dataset:
    """Wrap a Keras-style ``((x_train, y_train), (x_test, y_test))`` in a :class:`Dataset`.

    Column labels (N, 1), as CIFAR-10's, become (N,).
    """
    (x_train, y_train), (x_test, y_test) = split
    y_train, y_test = label_vector(y_train), label_vector(y_test)
    return Dataset(name, x_train, y_train, x_test, y_test, list(class_names), source)


def label_vector(labels: np.ndarray) -> np.ndarray:
    """Labels (N, 1) -> (N,); other shapes unchanged."""
    return labels.reshape(-1) if labels.ndim == 2 and labels.shape[1] == 1 else labels
