"""How many threads the engine's BLAS uses while a model trains: the cores other work leaves free.

A BLAS thread that waits for a core another program holds does not sleep: OpenBLAS's threads
spin, and the step waits for the slowest (perf-notes.md: with the second core busy, a digits
epoch took 0.19-0.37 s instead of 0.07-0.09 s, and 4.8 s instead of 0.2 s with both busy). So
while ``fit`` runs, a ``ThreadFitter`` looks every half second at how much CPU time the other
processes of the machine used (Linux's ``/proc/stat``, less this process's own time) and sets
the BLAS thread count to the cores they left free: at least one, at most the count in force
when training began (``OPENBLAS_NUM_THREADS``, ``threadpoolctl.threadpool_limits`` or
``set_threads`` set that ceiling). At the end of ``fit`` the count in force before is restored.

The engine imports NumPy only, so what reads and sets the count is handed in from outside
(``set_blas_control``; cnnlab installs threadpoolctl's). Without one, or off Linux, nothing
changes. ``set_threads(n)`` (or ``CNNLAB_THREADS=n``) fixes the count and turns the fitting off.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable

CHECK_FIRST, CHECK_EVERY = (
    0.1,
    0.5,
)  # seconds to the first look at the machine, and between two looks
FIXED_ENV = "CNNLAB_THREADS"

_control: tuple[Callable[[], int], Callable[[int], None]] | None = (
    None  # (current count, set count)
)
_fixed: int | None = None


def set_blas_control(current: Callable[[], int], set_count: Callable[[int], None]) -> None:
    """How to read and set the BLAS thread count (threadpoolctl, installed by cnnlab)."""
    global _control
    _control = (current, set_count)


def set_threads(count: int | None) -> None:
    """Fix the BLAS thread count for training (None: fit it to the free cores, the default)."""
    global _fixed
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError(f"set_threads: expected a positive int or None, received {count!r}")
    _fixed = count


def fixed_threads() -> int | None:
    """The count set_threads or CNNLAB_THREADS fixed, or None."""
    if _fixed is not None:
        return _fixed
    value = os.environ.get(FIXED_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{FIXED_ENV} must be a positive integer, received {value!r}")
    return int(value)


def cpu_seconds() -> tuple[float, float] | None:
    """(CPU seconds every process of the machine has used, CPU seconds this process has used),
    from /proc/stat (busy = all but idle and iowait) and os.times; None where /proc is absent."""
    try:
        with open("/proc/stat") as file:
            fields = [int(v) for v in file.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    busy = sum(fields) - fields[3] - fields[4]  # user nice system idle iowait irq softirq steal
    own = os.times()
    return busy / os.sysconf("SC_CLK_TCK"), own.user + own.system


def usable_cores() -> int:
    """The cores this process may run on."""
    return (
        len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    )


def threads_for(other_cores: float, ceiling: int, cores: int | None = None) -> int:
    """Threads to use when other processes keep ``other_cores`` cores busy: the free cores,
    rounded to the nearest whole core, between 1 and the ceiling."""
    return max(1, min(ceiling, round((cores or usable_cores()) - other_cores)))


class ThreadFitter:
    """Fits the BLAS thread count to the free cores during one ``fit``: start, tick per batch,
    stop."""

    def __init__(
        self,
        clock: Callable[[], float] = time.monotonic,
        readings: Callable[[], tuple[float, float] | None] = cpu_seconds,
    ) -> None:
        self.clock, self.readings = clock, readings
        self.active = False

    def start(self) -> None:
        if _control is None:
            return
        current, set_count = _control
        self.before = current()
        fixed = fixed_threads()
        if fixed is not None:
            set_count(fixed)
            self.active = self.fixed = True
            return
        self.fixed, self.ceiling, self.count = False, self.before, self.before
        self.last_time, self.last = self.clock(), self.readings()
        self.wait = CHECK_FIRST  # a small run decides early; then every CHECK_EVERY
        self.active = self.last is not None

    def tick(self) -> None:
        """After a batch: every CHECK_EVERY seconds (the first time after CHECK_FIRST), look at the
        machine and fit the count."""
        if not self.active or self.fixed or self.clock() - self.last_time < self.wait:
            return
        now, reading = self.clock(), self.readings()
        if reading is None:
            return
        others = ((reading[0] - self.last[0]) - (reading[1] - self.last[1])) / (
            now - self.last_time
        )
        self.last_time, self.last, self.wait = now, reading, CHECK_EVERY
        count = threads_for(max(others, 0.0), self.ceiling)
        if count != self.count:
            _control[1](count)
            self.count = count

    def stop(self) -> None:
        """Put back the count in force before training."""
        if self.active:
            _control[1](self.before)
            self.active = False
