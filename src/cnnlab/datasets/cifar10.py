"""CIFAR-10 small colour images, a drop-in for ``keras.datasets.cifar10``.

``load_data()`` reads ``<data dir>/cifar10/cifar-10-binary.tar.gz``, the *binary* version of
the official distribution (https://www.cs.toronto.edu/~kriz/cifar.html), downloading it first
when absent (SHA-256 and size verified). Its members ``cifar-10-batches-bin/data_batch_1.bin``
to ``data_batch_5.bin`` (training) and ``test_batch.bin`` are read from the archive in one
pass, without extracting anything to disk. Each member is a sequence of 3073-byte records::

    label      1 byte, 0..9
    image      3072 bytes: the red, green and blue 32x32 planes, row-major (CHW)

No pickle is ever loaded (the python version of the archive is not read).
"""

from __future__ import annotations

import os
import posixpath
import tarfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from cnnlab.datasets.datadir import dataset_dir
from cnnlab.datasets.npz import SplitPair
from cnnlab.errors import DatasetError

FOLDER = "cifar10"
ARCHIVE_NAME = "cifar-10-binary.tar.gz"
# SHA-256 and size in bytes of the official archive, from TensorFlow Datasets'
# tensorflow_datasets/url_checksums/cifar10.txt (its MD5, c32a1d4ab5d03f1284b67883e8d87530,
# is the one on the CIFAR page).
ARCHIVE_SHA256 = "c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"
ARCHIVE_SIZE = 170052171
MIRRORS = ("https://www.cs.toronto.edu/~kriz/",)
MIRRORS_ENV = "CNNLAB_CIFAR10_MIRRORS"

MEMBER_FOLDER = "cifar-10-batches-bin"
TRAIN_MEMBERS = tuple(f"data_batch_{index}.bin" for index in range(1, 6))
TEST_MEMBERS = ("test_batch.bin",)
IMAGE_SHAPE_CHW = (3, 32, 32)  # as stored in a record
IMAGE_SHAPE = (32, 32, 3)  # as returned, channels last
RECORD_BYTES = 1 + 3 * 32 * 32
RECORDS_PER_MEMBER = 10000  # every official member holds 10,000 images
NUM_CLASSES = 10
# Keras's names (keras.datasets.cifar10), as in the archive's batches.meta.txt.
CLASS_NAMES = [
    "airplane", "automobile", "bird", "cat", "deer",
    "dog", "frog", "horse", "ship", "truck",
]  # fmt: skip

HOW_TO_FIX = (
    f"To fix: set --data-dir or CNNLAB_DATA_DIR to a folder holding {FOLDER}/{ARCHIVE_NAME} "
    "(the CIFAR-10 binary version from https://www.cs.toronto.edu/~kriz/cifar.html; "
    "cifar-10-python.tar.gz is not read), or use the bundled digits dataset (--dataset digits)."
)


def load_data(
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> SplitPair:
    """Load CIFAR-10 as ``((x_train, y_train), (x_test, y_test))``, like Keras.

    x: uint8 (50000, 32, 32, 3) and (10000, 32, 32, 3), channels last, pixels 0..255;
    y: uint8 (50000, 1) and (10000, 1), classes 0..9 named by :data:`CLASS_NAMES`.
    The archive is ``<data dir>/cifar10/cifar-10-binary.tar.gz``, downloaded there first
    when absent and ``download`` is true; ``mirrors`` (base URLs) override
    ``$CNNLAB_CIFAR10_MIRRORS`` and :data:`MIRRORS`. Raises :class:`DatasetError` saying
    how to fix the problem.
    """
    return load_with_source(data_dir, download, mirrors)[0]


def load_with_source(
    data_dir: str | os.PathLike[str] | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> tuple[SplitPair, Path]:
    """Like :func:`load_data`, and also the archive the data came from."""
    folder = dataset_dir(FOLDER, data_dir)
    archive = folder / ARCHIVE_NAME
    if not archive.is_file():
        if not download:
            raise DatasetError(
                f"CIFAR-10 not found in {folder} (no {ARCHIVE_NAME}) and downloading is off. "
                + HOW_TO_FIX
            )
        download_archive(archive, mirrors)
    return read_archive(archive), archive


def read_archive(path: Path) -> SplitPair:
    """The Keras tuple from the six batch members of a ``cifar-10-binary.tar.gz``."""
    records = read_members(path, TRAIN_MEMBERS + TEST_MEMBERS)
    return stack_records(records, TRAIN_MEMBERS), stack_records(records, TEST_MEMBERS)


def stack_records(
    records: dict[str, np.ndarray], names: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Members' records -> images uint8 (n, 32, 32, 3), channels last, and labels uint8 (n, 1)."""
    count = sum(len(records[name]) for name in names)
    images = np.empty((count, *IMAGE_SHAPE), dtype=np.uint8)
    labels = np.empty((count, 1), dtype=np.uint8)
    start = 0
    for name in names:
        part = records[name]  # (n, 3073)
        stop = start + len(part)
        labels[start:stop, 0] = part[:, 0]
        # (n, 3072) -> (n, 3, 32, 32) CHW -> (n, 32, 32, 3) HWC
        images[start:stop] = part[:, 1:].reshape(-1, *IMAGE_SHAPE_CHW).transpose(0, 2, 3, 1)
        start = stop
    return images, labels


def read_members(path: Path, names: Sequence[str]) -> dict[str, np.ndarray]:
    """The named members' records uint8 (n, 3073), in one pass over the gzip-streamed archive."""
    wanted = {f"{MEMBER_FOLDER}/{name}": name for name in names}
    parts: dict[str, np.ndarray] = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                name = wanted.get(posixpath.normpath(member.name))
                if name is not None:
                    check_new_member(path, member, name in parts)
                    content = read_member(path, archive, member)
                    parts[name] = decode_records(path, member.name, content)
    except (tarfile.TarError, OSError, EOFError, zlib.error) as error:
        raise DatasetError(
            f"{path}: corrupt or truncated archive ({error}); delete it and download it again"
        ) from None
    missing = [member for member, name in wanted.items() if name not in parts]
    if missing:
        raise DatasetError(f"{path}: member(s) missing: {', '.join(missing)}. {HOW_TO_FIX}")
    return parts


def check_new_member(path: Path, member: tarfile.TarInfo, seen: bool) -> None:
    """A regular file, seen once, holding 1 to 10,000 whole records."""
    where = f"{path}: {member.name}"
    if seen:
        raise DatasetError(f"{where}: appears twice in the archive")
    if not member.isfile():
        raise DatasetError(f"{where}: not a regular file")
    if member.size > RECORDS_PER_MEMBER * RECORD_BYTES:
        raise DatasetError(
            f"{where}: {member.size} bytes, larger than the official "
            f"{RECORDS_PER_MEMBER * RECORD_BYTES} ({RECORDS_PER_MEMBER} records of "
            f"{RECORD_BYTES} bytes)"
        )
    if member.size == 0 or member.size % RECORD_BYTES:
        raise DatasetError(
            f"{where}: {member.size} bytes, not a whole number of {RECORD_BYTES}-byte records "
            "(1 label byte and 3072 pixel bytes each)"
        )


def read_member(path: Path, archive: tarfile.TarFile, member: tarfile.TarInfo) -> bytes:
    """The bytes of a checked member (its size is already bounded)."""
    stream = archive.extractfile(member)
    if stream is None:
        raise DatasetError(f"{path}: {member.name}: not a regular file")
    with stream:
        content = stream.read(member.size)
    if len(content) != member.size:
        raise DatasetError(
            f"{path}: {member.name}: truncated: {len(content)} of {member.size} bytes"
        )
    return content


def decode_records(path: Path, name: str, content: bytes) -> np.ndarray:
    """A member's bytes -> its records uint8 (n, 3073), the labels checked."""
    records = np.frombuffer(content, dtype=np.uint8).reshape(-1, RECORD_BYTES)
    labels = records[:, 0]
    out_of_range = labels >= NUM_CLASSES
    if out_of_range.any():
        raise DatasetError(
            f"{path}: {name}: {int(out_of_range.sum())} label(s) outside 0..9 (e.g. "
            f"{labels[out_of_range][0]} in record {int(np.argmax(out_of_range))})"
        )
    return records


def download_archive(archive: Path, mirrors: Sequence[str] | None = None) -> None:
    """Download ``cifar-10-binary.tar.gz`` into place, SHA-256 and size verified."""
    from cnnlab.datasets.download import (  # urllib: only now
        download_file,
        resolve_mirrors,
    )

    base_urls = resolve_mirrors(mirrors, MIRRORS_ENV, MIRRORS)
    urls = [f"{base.rstrip('/')}/{ARCHIVE_NAME}" for base in base_urls]
    try:
        download_file(urls, archive, ARCHIVE_SHA256, decompressed_sha256=False, size=ARCHIVE_SIZE)
    except DatasetError as error:
        raise DatasetError(
            f"CIFAR-10 is not in {archive.parent} and could not be downloaded: {error}\n"
            + HOW_TO_FIX
        ) from None
