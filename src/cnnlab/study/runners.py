"""Running a study: local worker processes or Ray tasks; the driver alone writes SQLite.

Both runners call the same ``trial.run_trial`` and hand each result back to the driver,
which scores its test predictions (``trial.score``), records it (one transaction) and
advances one progress bar.

- ``LocalRunner(jobs, threads)``: ``jobs`` spawned worker processes. Each worker starts
  with ``OMP_NUM_THREADS`` (and the OpenBLAS/MKL equivalents) set to ``threads`` (default
  cores // jobs) before NumPy is imported in it, so the workers do not oversubscribe the
  cores. The driver's prepared arrays are put in shared memory once and every worker maps
  them read-only: no worker re-reads the dataset or holds a copy of it (unless /dev/shm
  has no room for them; see ``SharedData``). ``jobs=1`` runs the trials in this process,
  its BLAS limited to ``threads`` by threadpoolctl.
- ``RayRunner(address)``: ``ray.init(address=...)`` on an existing cluster (or ``local``
  for a throwaway one); the prepared data is put into the object store once and every task
  receives the same reference. Ray gives each one-CPU task one BLAS thread.

Both keep twice as many trials handed out as there are workers (CPUs), so a worker that
finishes goes straight on to its next trial while the driver scores and records.

The BLAS thread count changes floating-point sums in the last bits, so a trial gives the
same numbers under any runner with the same thread count (``--threads 1`` matches Ray).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import sys
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context, shared_memory
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from .. import runs
from ..errors import CnnlabError
from ..training import PreparedData, check_batch_fits, load_data
from .spec import StudySpec
from .store import StudyStore
from .trial import TrialResult, TrialTask, make_task, plan_trials, run_trial, score

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)
Started = Callable[[str], None]
Finished = Callable[[TrialResult], None]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def failed_result(task: TrialTask, error: str) -> TrialResult:
    """A failure that happened outside run_trial (a worker that died, a lost Ray task)."""
    now = runs.now_iso()
    return TrialResult(task.key, "failed", error=error, started=now, finished=now)


# --------------------------------------------------------------------------- local processes


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


@contextlib.contextmanager
def thread_limits(threads: int) -> Iterator[None]:
    """Set the BLAS/OpenMP thread variables while worker processes are spawned, then restore
    them."""
    saved = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def blas_thread_limit(threads: int) -> Iterator[None]:
    """Limit the BLAS threads of this process (NumPy already loaded) while the block runs."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=threads, user_api="blas"):
        yield


WORKER_DIED = "its worker process died while it ran (killed by a signal, or out of memory?)"


class LocalRunner:
    """Trials in ``jobs`` worker processes on this machine (``jobs=1``: in this process).

    Each worker has its next trial waiting in the pool's queue, so it goes straight on
    while the driver scores and records a result (the first one imports scikit-learn).
    When a worker process dies, the pool breaks and every trial in it comes back without a
    result; those trials are then run again one at a time, each in a pool of its own, so a
    trial that kills its worker is recorded ``failed`` alone and the others finish.
    """

    work = staticmethod(
        run_in_worker
    )  # what a worker does with a task (a module-level function: it is pickled)

    def __init__(self, jobs: int | None = None, threads: int | None = None) -> None:
        cores = available_cores()
        self.jobs = cores if jobs is None else jobs
        if self.jobs < 1:
            raise CnnlabError(f"--jobs must be at least 1, received {self.jobs}")
        if threads is not None and threads < 1:
            raise CnnlabError(f"--threads must be at least 1, received {threads}")
        self.threads = (
            max(1, cores // self.jobs) if threads is None else threads
        )  # BLAS threads per worker

    def describe(self) -> str:
        where = "1 job in this process" if self.jobs == 1 else f"{self.jobs} worker processes"
        return f"{where}, {self.threads} BLAS thread(s) each"

    def execute(
        self, tasks: list[TrialTask], data: PreparedData, started: Started, finished: Finished
    ) -> None:
        if self.jobs == 1:
            with blas_thread_limit(self.threads):
                for task in tasks:
                    started(task.key)
                    finished(run_trial(task, data))
            return
        with SharedData(data) as shared:
            queue, suspects = deque(tasks), deque[TrialTask]()
            while queue or suspects:
                if (
                    suspects
                ):  # alone in a pool of one worker: if that worker dies too, this trial killed it
                    task = suspects.popleft()
                    if self.run_pool(deque([task]), 1, shared, started, finished):
                        finished(failed_result(task, WORKER_DIED))
                else:
                    suspects.extend(self.run_pool(queue, self.jobs, shared, started, finished))

    def run_pool(
        self,
        queue: deque[TrialTask],
        workers: int,
        shared: SharedData,
        started: Started,
        finished: Finished,
    ) -> list[TrialTask]:
        """Run the queue in a pool of ``workers`` processes, each with one trial queued behind
        the one it runs. Returns [] when the queue is done, or the trials that were in the
        pool when a worker died (the pool is then broken; the rest of the queue waits)."""
        with thread_limits(self.threads):
            pool = ProcessPoolExecutor(
                workers,
                mp_context=get_context("spawn"),
                initializer=init_worker,
                initargs=(shared.handle, os.getpid()),
            )
            try:
                in_flight: dict[Future, TrialTask] = {}
                while queue or in_flight:
                    try:
                        while queue and len(in_flight) < 2 * workers:
                            future = pool.submit(self.work, queue[0])
                            task = in_flight[future] = queue.popleft()
                            started(task.key)
                    except (
                        BrokenProcessPool
                    ):  # a worker died since the last wait; the task stays queued
                        broken = True
                    else:
                        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                        broken = any(
                            isinstance(future.exception(), BrokenProcessPool) for future in done
                        )
                    if broken:
                        wait(in_flight)  # a broken pool completes every future at once
                        return [
                            task
                            for future, task in in_flight.items()
                            if not record(future, task, finished)
                        ]
                    for future in done:
                        record(future, in_flight.pop(future), finished)
                return []
            except (
                BaseException
            ):  # Ctrl-C, or the driver failing: nobody will record what the workers do
                for process in list(
                    (pool._processes or {}).values()
                ):  # Python 3.14 has pool.kill_workers()
                    process.kill()
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)


def record(future: Future, task: TrialTask, finished: Finished) -> bool:
    """Hand a finished future's result to ``finished``; False (nothing recorded) when its worker
    died."""
    error = future.exception()
    if isinstance(error, BrokenProcessPool):
        return False
    finished(
        future.result()
        if error is None
        else failed_result(task, f"{type(error).__name__}: {error}")
    )
    return True


# --------------------------------------------------------------------------- Ray


class RayRunner:
    """Trials as Ray tasks (one CPU each) on the cluster at ``address``."""

    def __init__(self, address: str) -> None:
        self.address = address

    def describe(self) -> str:
        return f"Ray cluster at {self.address}"

    def execute(
        self, tasks: list[TrialTask], data: PreparedData, started: Started, finished: Finished
    ) -> None:
        ray = import_ray()
        owned = not ray.is_initialized()
        if owned:
            connect(ray, self.address)
        try:
            data_ref = ray.put(data)  # shipped once; every task gets the same reference
            remote_trial = ray.remote(num_cpus=1)(run_trial)
            window = 2 * max(
                1, int(ray.cluster_resources().get("CPU", 1))
            )  # a next task waits behind each
            queue, in_flight = deque(tasks), {}
            while queue or in_flight:
                while queue and len(in_flight) < window:
                    task = queue.popleft()
                    started(task.key)
                    in_flight[remote_trial.remote(task, data_ref)] = task
                ready, _ = ray.wait(list(in_flight), num_returns=1)
                task = in_flight.pop(ready[0])
                try:
                    finished(ray.get(ready[0]))
                except Exception as err:  # the task was lost: node gone, worker crashed
                    finished(failed_result(task, f"{type(err).__name__}: {err}"))
        finally:
            if owned:
                ray.shutdown()


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise CnnlabError("--ray needs Ray: pip install 'cnnlab[ray]'") from None
    return ray


def connect(ray: Any, address: str) -> None:
    try:
        ray.init(address=address, logging_level="WARNING", log_to_driver=False)
    except (ConnectionError, RuntimeError, ValueError) as err:
        raise CnnlabError(f"cannot connect to the Ray cluster at {address}: {err}") from None


# --------------------------------------------------------------------------- the study


class StudyProgress:
    """One bar for the study: trials done / failed / invalid / left and the best accuracy so far.

    Without a terminal (a log file), one line per finished trial instead.
    """

    def __init__(
        self, console: Console, name: str, total: int, counts: Counter[str], best: float | None
    ) -> None:
        self.console, self.total, self.counts, self.best = console, total, counts, best
        self.progress = Progress(
            TextColumn(f"study {name}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[status]}"),
            TimeElapsedColumn(),
            TextColumn("elapsed, to go"),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,
        )
        self.task = self.progress.add_task(
            "study", total=total, completed=self.finished(), status=self.status()
        )

    def finished(self) -> int:
        return sum(self.counts[s] for s in ("done", "failed", "invalid"))

    def status(self) -> str:
        best = "n/a" if self.best is None else f"{self.best:.4f}"
        return (
            f"done {self.counts['done']} · failed {self.counts['failed']} · invalid "
            f"{self.counts['invalid']} · "
            f"left {self.total - self.finished()} · best accuracy {best}"
        )

    def update(self, result: TrialResult) -> None:
        self.counts[result.status] += 1
        accuracy = (result.metrics or {}).get("test_accuracy")
        if accuracy is not None and (self.best is None or accuracy > self.best):
            self.best = accuracy
        self.progress.update(self.task, completed=self.finished(), status=self.status())
        if not self.console.is_terminal:
            self.console.print(
                f"trial {result.key} {result.status} in {result.seconds:.1f}s; {self.status()}",
                highlight=False,
            )

    def __enter__(self) -> StudyProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()


def prepare_data(spec: StudySpec, data_dir: str | None = None) -> PreparedData:
    """Read the study's data once in the driver and check the training settings fit it."""
    settings = spec.settings(data_dir=data_dir)
    settings.validate()
    data = load_data(settings)
    check_batch_fits(settings, data)
    return data


def open_store(spec: StudySpec, db_path: str | os.PathLike[str]) -> StudyStore:
    """The study's SQLite file with every planned trial in it (new ones pending)."""
    store = StudyStore(db_path)
    try:
        store.attach(spec.name, spec.fingerprint(), spec.summary(), spec.text)
        store.add_trials(plan_trials(spec))
    except BaseException:
        store.close()
        raise
    return store


def run_study(
    spec: StudySpec,
    store: StudyStore,
    runner: LocalRunner | RayRunner,
    data: PreparedData,
    console: Console | None = None,
) -> Counter[str]:
    """Run every unfinished trial of the study; returns the trial counts by status."""
    plans = {plan.key: plan for plan in plan_trials(spec)}
    tasks = [make_task(spec, plans[key], data) for key in store.unfinished() if key in plans]
    console = console or Console(stderr=True)
    bar = StudyProgress(console, spec.name, len(plans), store.counts(), store.best_accuracy())

    def finished(result: TrialResult) -> None:
        store.record(score(result, data))
        bar.update(result)

    if tasks:
        with bar:
            runner.execute(tasks, data, store.mark_running, finished)
    return store.counts()
