"""The model file: one zip archive holding ``meta.json`` and one ``.npy`` per array.

No pickle anywhere: arrays are read with ``allow_pickle=False`` and the metadata is JSON.
The metadata carries a format name and version and a SHA-256 checksum of all arrays, so a
truncated, altered or foreign file is refused with a message naming the file and the fault.
Writes are atomic: a temporary file in the same folder, then a rename.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from . import limits, metadata

FORMAT = "cnnlab-model"
FORMAT_VERSION = 1

# Other file formats, by suffix, registered from outside the engine (``cnnlab.keras_format``
# registers ".keras"): suffix -> (save(model, path), load(path, compile) -> model).
OTHER_FORMATS: dict[str, tuple[Callable[..., None], Callable[..., Any]]] = {}


def register_format(suffix: str, save: Callable[..., None], load: Callable[..., Any]) -> None:
    """Let ``model.save(path)`` and ``load_model(path)`` handle files ending in ``suffix``."""
    OTHER_FORMATS[suffix.lower()] = (save, load)


def other_format(path: str | Path) -> tuple[Callable[..., None], Callable[..., Any]] | None:
    """The registered (save, load) pair for this path's suffix, or None for cnnlab's own."""
    return OTHER_FORMATS.get(Path(path).suffix.lower())


def array_checksum(arrays: dict[str, np.ndarray]) -> str:
    """SHA-256 over every array's key, dtype, shape and bytes, in key order."""
    digest = hashlib.sha256()
    for key in sorted(arrays):
        array = contiguous(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def contiguous(array: np.ndarray) -> np.ndarray:
    """A C-contiguous array of the same shape (np.ascontiguousarray would turn 0-d into 1-d)."""
    array = np.asarray(array)
    return array if array.flags.c_contiguous else array.copy(order="C")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> None:
    """Call write(file) on a temporary file beside path, then rename it into place.

    The one writer of every file cnnlab writes: an existing path is never opened for writing,
    and a symbolic link at path is refused (neither written through nor replaced)."""
    path = Path(path)
    refuse_link(path)
    try:
        handle, temp_name = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
    except OSError as err:
        raise write_error(path, err) from None
    try:
        with os.fdopen(handle, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
            os.fchmod(file.fileno(), 0o644)  # mkstemp makes 0o600; results are meant to be shared
        refuse_link(path)  # planted while the file was written
        os.replace(temp_name, path)
    except OSError as err:  # a full disk, a vanished folder: the old file stays as it was
        Path(temp_name).unlink(missing_ok=True)
        raise write_error(path, err) from None
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def write_bytes(path: str | Path, data: bytes) -> None:
    """Write data at path through ``atomic_write``."""
    atomic_write(path, lambda file: file.write(data))


def refuse_link(path: Path) -> None:
    """A symbolic link where cnnlab is about to write is someone else's file: refuse it."""
    if path.is_symlink():
        raise ValueError(
            f"{path} is a symbolic link; cnnlab neither writes through nor replaces links: "
            "remove it or choose another path"
        )


def write_error(path: Path, err: OSError) -> OSError:
    """The same error, saying which file could not be written."""
    message = f"cannot write {path}: {err.strerror or err}"
    return OSError(err.errno, message) if err.errno else OSError(message)


def write_archive(
    path: str | Path, meta: dict[str, Any], arrays: dict[str, np.ndarray], kind: str = FORMAT
) -> None:
    """Write meta (JSON-able) and arrays into one archive at path, atomically."""
    meta = {
        "format": kind,
        "format_version": FORMAT_VERSION,
        **meta,
        "arrays": sorted(arrays),
        "checksum": array_checksum(arrays),
    }

    def write(file: BinaryIO) -> None:
        with zipfile.ZipFile(file, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("meta.json", json.dumps(meta, indent=1))
            for key, array in arrays.items():
                buffer = io.BytesIO()
                np.lib.format.write_array(buffer, contiguous(array), allow_pickle=False)
                archive.writestr(f"arrays/{key}.npy", buffer.getvalue())

    atomic_write(path, write)


def read_archive(
    path: str | Path, kind: str = FORMAT
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Read and verify an archive written by ``write_archive``; ValueError names what is wrong."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a cnnlab model file (not a zip archive; pickles and other formats are "
            "refused)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            meta = read_meta(path, archive, kind)
            arrays = {key: read_array(path, archive, key) for key in meta["arrays"]}
    except (
        zipfile.BadZipFile,
        OSError,
        EOFError,
        zlib.error,
        NotImplementedError,
        RuntimeError,
    ) as err:
        # RuntimeError: an encrypted member; NotImplementedError: an unknown compression or zip
        # version
        raise ValueError(f"{path}: damaged file ({err})") from None
    if array_checksum(arrays) != meta.get("checksum"):
        raise ValueError(f"{path}: checksum mismatch: the weights were altered or damaged")
    if kind in metadata.CHECKERS:  # every field's type and range, before any is used
        metadata.CHECKERS[kind](meta, f"{path}: meta.json")
    return meta, arrays


def read_meta(path: Path, archive: zipfile.ZipFile, kind: str) -> dict[str, Any]:
    """The archive's metadata, after checking its format name and version."""
    try:
        info = archive.getinfo("meta.json")
    except KeyError:
        raise ValueError(f"{path}: not a cnnlab file (no meta.json inside)") from None
    check_member(archive, info, f"{path}: meta.json")
    if info.file_size > limits.MAX_METADATA_BYTES:
        raise ValueError(
            f"{path}: meta.json declares {info.file_size:,} bytes, over the limit of "
            f"{limits.MAX_METADATA_BYTES:,}"
        )
    try:
        meta = limits.loads_json(archive.read(info), f"{path}: meta.json")
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: damaged metadata ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != kind:
        raise ValueError(
            f"{path}: not a {kind} file (format "
            f"{meta.get('format') if isinstance(meta, dict) else None!r})"
        )
    if meta.get("format_version") != FORMAT_VERSION:
        raise ValueError(
            f"{path}: format version {meta.get('format_version')!r} is not supported "
            f"(this cnnlab reads version {FORMAT_VERSION})"
        )
    arrays = meta.get("arrays")
    if not isinstance(arrays, list) or not all(isinstance(key, str) for key in arrays):
        raise ValueError(
            f"{path}: meta.json field 'arrays' must be a list of names, received {arrays!r:.80}"
        )
    declared = sum(
        archive.getinfo(f"arrays/{key}.npy").file_size
        for key in arrays
        if f"arrays/{key}.npy" in archive.NameToInfo
    )
    limits.check_bytes(declared, f"{path}: the arrays")
    return meta


def read_array(path: Path, archive: zipfile.ZipFile, key: str) -> np.ndarray:
    """One array, never unpickled, never larger than its member declares or the limit allows."""
    try:
        info = archive.getinfo(f"arrays/{key}.npy")
    except KeyError:
        raise ValueError(f"{path}: array {key!r} listed in the metadata is missing") from None
    limits.check_bytes(info.file_size, f"{path}: array {key!r}")
    check_member(archive, info, f"{path}: array {key!r}")
    try:
        with archive.open(info) as member:
            return read_npy(member, info.file_size, f"{path}: array {key!r}")
    except limits.LimitExceeded:
        raise
    except ValueError as err:
        raise ValueError(f"{path}: array {key!r} cannot be read ({err})") from None


class ObjectArrayRefused(ValueError):
    """A .npy header with dtype=object: reading it would need pickle, which cnnlab never uses."""


def check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, what: str) -> None:
    """A member cannot hold more compressed bytes than the whole archive: a forged size in the
    directory would otherwise make zipfile ask for (and allocate) that many bytes."""
    archive.fp.seek(0, os.SEEK_END)
    if info.compress_size > archive.fp.tell():
        raise ValueError(
            f"{what}: the directory declares {info.compress_size:,} compressed bytes, more than "
            "the "
            f"whole file ({archive.fp.tell():,}): a damaged or forged archive"
        )


def read_npy(
    stream: BinaryIO,
    declared: int,
    what: str,
    kinds: str = "biufc",
    check_shape: Callable[[tuple[int, ...]], None] | None = None,
) -> np.ndarray:
    """A .npy array from a stream: the header's shape and dtype checked against ``declared``
    bytes and the limit before any allocation, then exactly that many bytes read.
    ``kinds``: the dtype kinds accepted; ``check_shape(shape)`` may refuse a shape first."""
    version = np.lib.format.read_magic(stream)
    if version not in ((1, 0), (2, 0)):
        raise ValueError(f".npy format version {version} is not supported")
    read_header = (
        np.lib.format.read_array_header_1_0
        if version == (1, 0)
        else np.lib.format.read_array_header_2_0
    )
    shape, fortran_order, dtype = read_header(stream)
    if dtype.hasobject:
        raise ObjectArrayRefused(
            f"{what} holds Python objects (dtype=object), which cnnlab never unpickles"
        )
    if dtype.kind not in kinds or dtype.fields is not None:
        raise ValueError(f"dtype {dtype} is not accepted here")
    if check_shape is not None:
        check_shape(shape)
    count = math.prod(shape)
    limits.check_bytes(count * dtype.itemsize, what)
    if count * dtype.itemsize > declared:
        raise ValueError(
            f"its header declares {count * dtype.itemsize:,} bytes, the member holds at most "
            f"{declared:,}"
        )
    raw = np.empty(count * dtype.itemsize, dtype=np.uint8)
    if read_exactly(stream, memoryview(raw)) != raw.size or stream.read(1):
        raise ValueError(f"the data does not match the header's shape {shape}")
    return raw.view(dtype).reshape(shape, order="F" if fortran_order else "C")


def read_exactly(stream: BinaryIO, buffer: memoryview) -> int:
    """Fill buffer from stream; the number of bytes read (less only at the end of the stream)."""
    filled = 0
    while filled < len(buffer):
        count = stream.readinto(buffer[filled:])
        if not count:
            break
        filled += count
    return filled
