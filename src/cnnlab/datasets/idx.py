"""Pure readers of IDX files, the format of the original MNIST distribution.

An IDX file is a big-endian header followed by the raw data, row-major::

    magic number   0x00 0x00 <dtype code> <number of dimensions>
    dimensions     one unsigned 32-bit integer each
    data           product(dimensions) items

MNIST uses the dtype code 0x08 (unsigned byte): label files have the magic number
0x00000801 and shape (N,), image files 0x00000803 and shape (N, 28, 28). A file whose name
ends in ``.gz`` is gunzipped first. Every fault raises :class:`~cnnlab.errors.DatasetError`
with a message that names the file and says what is wrong.
"""

from __future__ import annotations

import gzip
import math
import os
import re
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cnnlab.engine.limits import check_bytes
from cnnlab.engine.saving import read_exactly
from cnnlab.errors import DatasetError

UNSIGNED_BYTE = 0x08
FILE_KINDS = {1: "a label file", 3: "an image file"}
TRAILING_COUNTED = 1 << 20  # trailing bytes counted for the error message, at most


def read_idx(path: str | os.PathLike[str], ndim: int | None = None) -> np.ndarray:
    """Read one IDX file of unsigned bytes (gzip-compressed or plain) into a uint8 array.

    ``ndim`` is the expected number of dimensions (1 for labels, 3 for images); by default it
    comes from the standard file name (``...-idx1-ubyte``, ``...-idx3-ubyte``), and a file
    named otherwise may have any number. Returns a writable array of the shape in the header.
    The header is read first and the size it declares checked against ``CNNLAB_MAX_FILE_BYTES``
    before anything is allocated; then exactly that many bytes are read (a gzip that inflates
    beyond them is refused without inflating the rest).
    """
    path = Path(path)
    expected_ndim = ndim if ndim is not None else ndim_from_name(path.name)
    if path.exists() and not path.is_file():  # a FIFO would block the open, a device never end
        raise DatasetError(f"{path}: not a regular file")
    try:
        with open_idx(path) as stream:
            return read_idx_stream(path, stream, expected_ndim)
    except FileNotFoundError:
        raise DatasetError(f"{path}: file not found") from None
    except (EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise corrupt_gzip(path, error) from None
    except OSError as error:
        if path.suffix == ".gz" and not isinstance(error, PermissionError):
            raise corrupt_gzip(path, error) from None
        raise DatasetError(f"{path}: cannot read the file: {error.strerror or error}") from None


def ndim_from_name(filename: str) -> int | None:
    """The number of dimensions an IDX file name declares (``idx3`` -> 3), or None."""
    match = re.search(r"idx(\d)", filename)
    return int(match.group(1)) if match else None


def open_idx(path: Path) -> BinaryIO:
    """The file as a byte stream, gunzipped on the fly when its name ends in ``.gz``."""
    return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")


def corrupt_gzip(path: Path, error: Exception) -> DatasetError:
    return DatasetError(
        f"{path}: corrupt or truncated gzip data ({error}); delete it and download it again"
    )


def read_idx_stream(path: Path, stream: BinaryIO, expected_ndim: int | None) -> np.ndarray:
    """Header, limit check, then the payload read into one preallocated array."""
    found_ndim = parse_magic(path, stream.read(4), expected_ndim)
    shape = parse_dims(path, stream.read(4 * found_ndim), found_ndim)
    expected = math.prod(shape)
    try:
        check_bytes(expected, f"{path}: the header's shape {shape}")
    except ValueError as error:
        raise DatasetError(str(error)) from None
    data = np.empty(expected, dtype=np.uint8)
    received = read_exactly(stream, memoryview(data))
    if received == expected and stream.read(1):
        received += 1 + len(stream.read(TRAILING_COUNTED))  # how much more, within a bound
    check_payload_size(path, shape, received)
    return data.reshape(shape)


def parse_magic(path: Path, content: bytes, expected_ndim: int | None) -> int:
    """Check the 4-byte magic number and return the number of dimensions it declares."""
    if len(content) < 4:
        raise DatasetError(
            f"{path}: too short to be an IDX file: {len(content)} bytes, expected a 4-byte "
            "magic number and a header"
        )
    magic = int.from_bytes(content[:4], "big")
    zeros, dtype_code, ndim = content[0:2], content[2], content[3]
    if expected_ndim is not None and magic != expected_magic(expected_ndim):
        kind = FILE_KINDS.get(expected_ndim, f"an idx{expected_ndim} file")
        raise DatasetError(
            f"{path}: wrong magic number 0x{magic:08X} "
            f"(expected 0x{expected_magic(expected_ndim):08X} for {kind})"
        )
    if zeros != b"\x00\x00" or dtype_code != UNSIGNED_BYTE or ndim == 0:
        raise DatasetError(
            f"{path}: wrong magic number 0x{magic:08X} (expected 0x000008NN: an IDX file of "
            "unsigned bytes with NN >= 1 dimensions)"
        )
    return ndim


def expected_magic(ndim: int) -> int:
    """The magic number of an unsigned-byte IDX file with ``ndim`` dimensions."""
    return (UNSIGNED_BYTE << 8) | ndim


def parse_dims(path: Path, content: bytes, ndim: int) -> tuple[int, ...]:
    """Read the ``ndim`` big-endian uint32 dimensions that follow the magic number."""
    header_size = 4 + 4 * ndim
    if len(content) < 4 * ndim:
        raise DatasetError(
            f"{path}: truncated header: {ndim} dimensions need {header_size} header bytes, "
            f"file holds {4 + len(content)}"
        )
    return tuple(int.from_bytes(content[4 * axis : 4 + 4 * axis], "big") for axis in range(ndim))


def check_payload_size(path: Path, shape: tuple[int, ...], payload_size: int) -> None:
    """Refuse a payload shorter (truncated) or longer (trailing data) than the header says."""
    items, item_size = shape[0], math.prod(shape[1:])
    expected = items * item_size
    if payload_size == expected:
        return
    fault = "truncated" if payload_size < expected else "unexpected trailing data"
    raise DatasetError(
        f"{path}: {fault}: header says {items} items of {item_size} bytes "
        f"({expected} bytes of data), file holds {payload_size} bytes of data"
    )
