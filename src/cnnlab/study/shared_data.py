"""The driver's prepared arrays in one block of shared memory, mapped read-only by every worker
process (or, without room in /dev/shm, a copy shipped to each)."""

from __future__ import annotations

import os
import sys
from multiprocessing import shared_memory
from typing import Any

import numpy as np

from ..training import PreparedData


class SharedData:
    """The prepared arrays in one block of shared memory, which every worker maps read-only.

    A worker neither re-reads the dataset nor holds a copy of it: N workers cost the memory
    of one. The driver creates the block and removes it (``close``); if the driver is
    killed, Python's resource tracker removes it once the workers are gone.

    Where the shared-memory file system is too small for the block (Docker gives /dev/shm
    64 MB unless told otherwise; writing past its end would kill the driver with SIGBUS),
    the handle carries the arrays themselves and each worker receives its own copy.
    """

    def __init__(self, data: PreparedData) -> None:
        layout, size = {}, 0
        for name in ARRAY_FIELDS:
            array = getattr(data, name)
            layout[name] = (size, array.shape, array.dtype.str)
            size += -(-array.nbytes // 64) * 64  # each array starts on a 64-byte boundary
        self.memory: shared_memory.SharedMemory | None = None
        if size > shared_memory_room():
            self.handle: dict[str, Any] = {"data": data}
            return
        self.memory = shared_memory.SharedMemory(create=True, size=max(size, 1))
        for name, (offset, shape, dtype) in layout.items():
            np.ndarray(shape, dtype, buffer=self.memory.buf, offset=offset)[...] = getattr(
                data, name
            )
        self.handle = {
            "memory": self.memory.name,
            "layout": layout,
            "fields": {"name": data.name, "class_names": data.class_names, "source": data.source},
        }

    def close(self) -> None:
        if self.memory is not None:
            self.memory.close()
            self.memory.unlink()

    def __enter__(self) -> SharedData:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


ARRAY_FIELDS = ("x_train", "y_train", "x_test", "y_test")


def shared_memory_room() -> int:
    """Bytes free for shared memory: /dev/shm's free space on Linux, no limit elsewhere."""
    try:
        stats = os.statvfs("/dev/shm")
    except (
        OSError,
        AttributeError,
    ):  # macOS (no /dev/shm), Windows (no statvfs): backed by ordinary memory
        return sys.maxsize
    return stats.f_bavail * stats.f_frsize


def attach_data(handle: dict[str, Any]) -> tuple[PreparedData, shared_memory.SharedMemory | None]:
    """The driver's PreparedData, its arrays read-only views of the shared block
    (or the copy in the handle)."""
    if "data" in handle:
        return handle["data"], None
    memory = shared_memory.SharedMemory(name=handle["memory"])
    arrays = {}
    for name, (offset, shape, dtype) in handle["layout"].items():
        arrays[name] = np.ndarray(tuple(shape), dtype, buffer=memory.buf, offset=offset)
        arrays[name].flags.writeable = False
    return PreparedData(**handle["fields"], **arrays), memory
