"""Fashion-MNIST (Zalando's clothing images), a drop-in for ``keras.datasets.fashion_mnist``.

The same format as MNIST: ``load_data()`` reads the four IDX files of the official
distribution (gzip-compressed or not; the same file names as MNIST) from
``<data dir>/fashion_mnist/`` (see :mod:`cnnlab.datasets.datadir`). When any is missing it
downloads it from the mirrors below, verifying the SHA-256 and size of the ``.gz`` file.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnlab.datasets.datadir import dataset_dir
from cnnlab.datasets.idx import read_idx
from cnnlab.datasets.mnist import FILES, check_label_range, find_idx_file
from cnnlab.datasets.npz import SplitPair
from cnnlab.errors import DatasetError

FOLDER = "fashion_mnist"
# SHA-256 and size in bytes of each official .gz file, from TensorFlow Datasets'
# tensorflow_datasets/url_checksums/fashion_mnist.txt (the files served at
# http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/, also in data/fashion/ of
# github.com/zalandoresearch/fashion-mnist, whose README gives their MD5s).
FILE_SHA256 = {
    "train-images-idx3-ubyte": "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
    "train-labels-idx1-ubyte": "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
    "t10k-images-idx3-ubyte": "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
    "t10k-labels-idx1-ubyte": "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
}
FILE_SIZES = {
    "train-images-idx3-ubyte": 26421880,
    "train-labels-idx1-ubyte": 29515,
    "t10k-images-idx3-ubyte": 4422102,
    "t10k-labels-idx1-ubyte": 5148,
}
# Zalando's repository, Zalando's S3 bucket, Keras's copy (kept only if its bytes match).
MIRRORS = (
    "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
)
MIRRORS_ENV = "CNNLAB_FASHION_MNIST_MIRRORS"
IMAGE_SIZE = (28, 28)
OFFICIAL_COUNTS = {"train": 60000, "test": 10000}
# Keras's names (keras.datasets.fashion_mnist), label 0 to 9.
CLASS_NAMES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]  # fmt: skip

HOW_TO_FIX = (
    f"To fix: set --data-dir or CNNLAB_DATA_DIR to a folder holding {FOLDER}/ with the four "
    f"IDX files ({', '.join(name + '.gz' for name in FILES.values())}) from "
    "https://github.com/zalandoresearch/fashion-mnist, or use the bundled digits dataset "
    "(--dataset digits)."
)


def load_data(
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> SplitPair:
    """Load Fashion-MNIST as ``((x_train, y_train), (x_test, y_test))``, like Keras.

    x: uint8 (60000, 28, 28) and (10000, 28, 28), pixels 0..255; y: uint8 (60000,),
    (10000,), classes 0..9 named by :data:`CLASS_NAMES`. The files come from
    ``<data dir>/fashion_mnist/``, downloaded there first when absent and ``download`` is
    true; ``mirrors`` (base URLs) override ``$CNNLAB_FASHION_MNIST_MIRRORS`` and
    :data:`MIRRORS`. Raises :class:`DatasetError` saying how to fix the problem.
    """
    return load_with_source(data_dir, download, mirrors)[0]


def load_with_source(
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[SplitPair, Path]:
    """Like :func:`load_data`, and also the folder the files came from."""
    folder = dataset_dir(FOLDER, data_dir)
    if missing_files(folder):
        if not download:
            raise not_found_error(folder)
        download_missing(folder, mirrors)
    return load_idx_folder(folder), folder


def missing_files(folder: Path) -> list[str]:
    """The ``.gz`` names of the IDX files ``folder`` lacks (neither compressed nor plain)."""
    return [f"{name}.gz" for name in FILES.values() if find_idx_file(folder, name) is None]


def not_found_error(folder: Path) -> DatasetError:
    """The error for a data folder without (all of) Fashion-MNIST when downloading is off."""
    missing = missing_files(folder)
    found = "no IDX files" if len(missing) == len(FILES) else f"missing {', '.join(missing)}"
    return DatasetError(
        f"Fashion-MNIST not found in {folder} ({found}) and downloading is off. {HOW_TO_FIX}"
    )


def load_idx_folder(folder: Path) -> SplitPair:
    """Read and check the four IDX files of ``folder``."""
    split = {}
    for part in ("train", "test"):
        images = read_part_file(folder, f"x_{part}", ndim=3)
        labels = read_part_file(folder, f"y_{part}", ndim=1)
        check_part(folder, part, images.shape, labels.shape)
        check_label_range(str(folder / FILES[f"y_{part}"]), labels)
        split[part] = (images, labels)
    return split["train"], split["test"]


def read_part_file(folder: Path, key: str, ndim: int) -> np.ndarray:
    """One IDX file of the folder, by its key in :data:`FILES` (``x_train``, ...)."""
    path = find_idx_file(folder, FILES[key])
    if path is None:
        raise DatasetError(f"{folder}: Fashion-MNIST file missing: {FILES[key]}(.gz). {HOW_TO_FIX}")
    return read_idx(path, ndim=ndim)


def check_part(
    folder: Path, part: str, image_shape: tuple[int, ...], label_shape: tuple[int, ...]
) -> None:
    """28x28 images, one label per image, at most the official number of images."""
    where = f"{folder}: {FILES[f'x_{part}']}"
    if image_shape[1:] != IMAGE_SIZE:
        raise DatasetError(
            f"{where}: images have shape {image_shape}, expected (N, 28, 28) for Fashion-MNIST"
        )
    if image_shape[0] > OFFICIAL_COUNTS[part]:
        raise DatasetError(
            f"{where}: {image_shape[0]} images, more than the {OFFICIAL_COUNTS[part]} of the "
            f"official {part} set"
        )
    if label_shape[0] != image_shape[0]:
        raise DatasetError(
            f"{where} holds {image_shape[0]} images but {FILES[f'y_{part}']} holds "
            f"{label_shape[0]} labels; expected one label per image"
        )


def download_missing(folder: Path, mirrors: Sequence[str] | None = None) -> None:
    """Download each ``.gz`` file that ``folder`` lacks, verified, into ``folder``."""
    from cnnlab.datasets.download import (  # urllib: only now
        download_file,
        resolve_mirrors,
    )

    base_urls = resolve_mirrors(mirrors, MIRRORS_ENV, MIRRORS)
    for name in FILES.values():
        if find_idx_file(folder, name) is not None:
            continue
        urls = [f"{base.rstrip('/')}/{name}.gz" for base in base_urls]
        try:
            download_file(
                urls, folder / f"{name}.gz", FILE_SHA256[name],
                decompressed_sha256=False, size=FILE_SIZES[name],
            )  # fmt: skip
        except DatasetError as error:
            raise DatasetError(
                f"Fashion-MNIST is not in {folder} and could not be downloaded: {error}\n"
                + HOW_TO_FIX
            ) from None
