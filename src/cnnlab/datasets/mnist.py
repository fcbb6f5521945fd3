"""MNIST handwritten digits, a drop-in for ``keras.datasets.mnist``.

``load_data()`` looks in ``<data dir>/mnist/`` (see :mod:`cnnlab.datasets.datadir`) for the
four IDX files of the original distribution (gzip-compressed or not) or a Keras
``mnist.npz``. When none are there it downloads the IDX files from the mirrors below,
verifying each against the SHA-256 of its uncompressed payload.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnlab.datasets.datadir import dataset_dir
from cnnlab.datasets.idx import read_idx
from cnnlab.datasets.npz import SplitPair, load_npz
from cnnlab.errors import DatasetError

# IDX file name (without .gz) of each array of the Keras result.
FILES = {
    "x_train": "train-images-idx3-ubyte",
    "y_train": "train-labels-idx1-ubyte",
    "x_test": "t10k-images-idx3-ubyte",
    "y_test": "t10k-labels-idx1-ubyte",
}
# SHA-256 of the uncompressed IDX payloads (gzip wrappers differ between copies).
PAYLOAD_SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
MIRRORS_ENV = "CNNLAB_MNIST_MIRRORS"
NPZ_NAME = "mnist.npz"
IMAGE_SIZE = (28, 28)
NUM_CLASSES = 10
CLASS_NAMES = [str(digit) for digit in range(NUM_CLASSES)]

HOW_TO_FIX = (
    "To fix: set --data-dir or CNNLAB_DATA_DIR to a folder holding mnist/ with the four IDX "
    f"files ({', '.join(name + '.gz' for name in FILES.values())}) or {NPZ_NAME}, "
    "or use the bundled digits dataset (--dataset digits)."
)


def load_data(
    path: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> SplitPair:
    """Load MNIST as ``((x_train, y_train), (x_test, y_test))``, like ``keras.datasets.mnist``.

    x: uint8 (60000, 28, 28) and (10000, 28, 28), pixels 0..255; y: uint8 (60000,), (10000,),
    digits 0..9. ``path`` may name a Keras ``mnist.npz`` or a folder of IDX files and then
    is the only place looked at. Otherwise the files come from ``<data dir>/mnist/``
    (``data_dir``, else ``$CNNLAB_DATA_DIR``, else ``~/.cache/cnnlab``), downloaded there
    first when absent and ``download`` is true. ``mirrors`` (base URLs) override
    ``$CNNLAB_MNIST_MIRRORS`` (comma separated) and :data:`MIRRORS`.
    Raises :class:`DatasetError` with a message saying how to fix the problem.
    """
    return load_with_source(path, data_dir, download, mirrors)[0]


def load_with_source(
    path: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[SplitPair, Path]:
    """Like :func:`load_data`, and also the folder or ``.npz`` file the data came from."""
    if path is not None:
        path = Path(path).expanduser()
        return load_from_path(path), path
    folder = dataset_dir("mnist", data_dir)
    source = find_local_copy(folder)
    if source is None:
        if not download:
            raise not_found_error(folder)
        download_missing(folder, mirrors)
        source = folder
    return load_from_path(source), source


def not_found_error(folder: Path) -> DatasetError:
    """The error for a data folder without (all of) MNIST when downloading is off."""
    missing = [f"{name}.gz" for name in FILES.values() if find_idx_file(folder, name) is None]
    found = "no IDX files" if len(missing) == len(FILES) else f"missing {', '.join(missing)}"
    return DatasetError(
        f"MNIST not found in {folder} ({found}, no {NPZ_NAME}) and downloading is off. "
        + HOW_TO_FIX
    )


def find_local_copy(folder: Path) -> Path | None:
    """The folder when it holds all four IDX files, else its ``mnist.npz``, else None."""
    if all(find_idx_file(folder, name) for name in FILES.values()):
        return folder
    if (folder / NPZ_NAME).is_file():
        return folder / NPZ_NAME
    return None


def find_idx_file(folder: Path, name: str) -> Path | None:
    """``<name>.gz`` or ``<name>`` in ``folder``, whichever exists (gzip first)."""
    for candidate in (folder / f"{name}.gz", folder / name):
        if candidate.is_file():
            return candidate
    return None


def load_from_path(path: Path) -> SplitPair:
    """Load from a folder of IDX files (or one holding ``mnist.npz``) or from an ``.npz``."""
    if path.is_dir():
        local_copy = find_local_copy(path)
        if local_copy is not None and local_copy.suffix == ".npz":
            return load_mnist_npz(local_copy)
        return load_idx_folder(path)
    expected = f"expected a Keras {NPZ_NAME} (.npz) or a folder of MNIST IDX files"
    if not path.exists():
        raise DatasetError(f"{path}: not found; {expected}")
    if path.suffix != ".npz":
        raise DatasetError(f"{path}: not an .npz file; {expected}")
    return load_mnist_npz(path)


def load_idx_folder(folder: Path) -> SplitPair:
    """Read and validate the four IDX files of a folder."""
    paths = {key: find_idx_file(folder, name) for key, name in FILES.items()}
    missing = [f"{FILES[key]}(.gz)" for key, found in paths.items() if found is None]
    if missing:
        raise DatasetError(
            f"{folder}: MNIST file(s) missing: {', '.join(missing)}; expected the four IDX "
            f"files or {NPZ_NAME}. {HOW_TO_FIX}"
        )
    arrays = {key: read_idx(path, ndim=3 if key[0] == "x" else 1) for key, path in paths.items()}
    return validate_mnist(arrays, {key: str(path) for key, path in paths.items()})


def load_mnist_npz(path: Path) -> SplitPair:
    """Read and validate a Keras ``mnist.npz`` (uint8 images, integer labels 0..9)."""
    (x_train, y_train), (x_test, y_test) = load_npz(path)
    arrays = {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
    for key in ("x_train", "x_test"):
        if arrays[key].dtype != np.uint8:
            raise DatasetError(
                f"{path}: {key} has dtype {arrays[key].dtype}, expected uint8 pixels as in "
                f"Keras' {NPZ_NAME}"
            )
    return validate_mnist(arrays, {key: f"{path}: {key}" for key in arrays})


def validate_mnist(arrays: dict[str, np.ndarray], names: dict[str, str]) -> SplitPair:
    """Check image size, counts and label range; return the Keras tuple with uint8 labels."""
    for split in ("train", "test"):
        images, labels = arrays[f"x_{split}"], arrays[f"y_{split}"]
        image_name, label_name = names[f"x_{split}"], names[f"y_{split}"]
        if images.ndim != 3 or images.shape[1:] != IMAGE_SIZE:
            raise DatasetError(
                f"{image_name}: images have shape {images.shape}, expected (N, 28, 28) for MNIST"
            )
        if len(images) != len(labels):
            raise DatasetError(
                f"{image_name} holds {len(images)} images but {label_name} holds "
                f"{len(labels)} labels; expected one label per image"
            )
        check_label_range(label_name, labels)
    return (
        (arrays["x_train"], arrays["y_train"].astype(np.uint8, copy=False)),
        (arrays["x_test"], arrays["y_test"].astype(np.uint8, copy=False)),
    )


def check_label_range(name: str, labels: np.ndarray) -> None:
    """MNIST labels are the digits 0..9."""
    out_of_range = (labels < 0) | (labels >= NUM_CLASSES)
    if out_of_range.any():
        raise DatasetError(
            f"{name}: {int(out_of_range.sum())} label(s) outside 0..9 "
            f"(e.g. {labels[out_of_range][0]} at index {int(np.argmax(out_of_range))})"
        )


def resolve_mirrors(mirrors: Sequence[str] | None = None) -> list[str]:
    """Base URLs to download from: ``mirrors``, else ``$CNNLAB_MNIST_MIRRORS``, else MIRRORS."""
    if mirrors is not None:
        return list(mirrors)
    from_env = [url.strip() for url in os.environ.get(MIRRORS_ENV, "").split(",")]
    return [url for url in from_env if url] or list(MIRRORS)


def download_missing(folder: Path, mirrors: Sequence[str] | None = None) -> None:
    """Download each IDX file that ``folder`` lacks, verified, into ``folder``."""
    from cnnlab.datasets.download import download_file  # urllib only when downloading

    base_urls = resolve_mirrors(mirrors)
    for name in FILES.values():
        if find_idx_file(folder, name) is not None:
            continue
        urls = [f"{base.rstrip('/')}/{name}.gz" for base in base_urls]
        try:
            download_file(
                urls, folder / f"{name}.gz", PAYLOAD_SHA256[name], decompressed_sha256=True
            )
        except DatasetError as error:
            raise DatasetError(
                f"MNIST is not in {folder} and could not be downloaded: {error}\n{HOW_TO_FIX}"
            ) from None
