"""Inside a local worker process: its initializer (Ctrl-C left to the driver, exit with the driver,
the shared data mapped) and the work it does with each trial."""

from __future__ import annotations

import atexit
import os
import signal
import threading
import time
from multiprocessing import shared_memory
from typing import Any

from ..training import PreparedData
from .shared_data import attach_data
from .trial import TrialResult, TrialTask, run_trial

_worker_data: PreparedData | None = None  # the shared arrays, mapped by this worker's initializer
_worker_memory: shared_memory.SharedMemory | None = None


def init_worker(handle: dict[str, Any], parent_pid: int) -> None:
    """Worker initializer: leave Ctrl-C to the driver, watch it, map the shared data."""
    global _worker_data, _worker_memory
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the driver stops the study and ends the workers
    threading.Thread(target=exit_with_parent, args=(parent_pid,), daemon=True).start()
    _worker_data, _worker_memory = attach_data(handle)
    atexit.register(detach_data)


def detach_data() -> None:
    """Drop the views before closing the block (a block with views alive cannot close)."""
    global _worker_data, _worker_memory
    _worker_data = None
    if _worker_memory is not None:
        _worker_memory.close()
        _worker_memory = None


def exit_with_parent(parent_pid: int) -> None:
    """End this worker when the driver is gone (killed), instead of finishing work nobody
    records."""
    while os.getppid() == parent_pid:
        time.sleep(0.5)
    os._exit(1)


def run_in_worker(task: TrialTask) -> TrialResult:
    if _worker_data is None:
        raise RuntimeError("run_in_worker needs init_worker to have run in this process")
    return run_trial(task, _worker_data)
