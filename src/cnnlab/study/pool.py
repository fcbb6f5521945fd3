"""Trials in local worker processes (``LocalRunner``): a spawned process pool with the BLAS threads
of each worker limited, each worker's next trial queued behind the one it runs, and the trials
of a pool broken by a dying worker run again alone to find the one that killed it."""

from __future__ import annotations

import contextlib
import os
from collections import deque
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from multiprocessing import get_context

from ..errors import CnnlabError
from ..training import PreparedData
from .dispatch import Finished, Started, failed_result
from .shared_data import SharedData
from .trial import TrialTask, run_trial
from .worker import init_worker, run_in_worker

THREAD_VARIABLES = (
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",
    "NUMEXPR_NUM_THREADS",
)


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


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
                return self.drain(pool, queue, 2 * workers, started, finished)
            except (
                BaseException
            ):  # Ctrl-C, or the driver failing: nobody will record what the workers do
                kill_workers(pool)
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)

    def drain(
        self,
        pool: ProcessPoolExecutor,
        queue: deque[TrialTask],
        window: int,
        started: Started,
        finished: Finished,
    ) -> list[TrialTask]:
        """Keep ``window`` trials in the pool until the queue is done ([]) or the pool breaks
        (the trials it held that came back without a result)."""
        in_flight: dict[Future, TrialTask] = {}
        while queue or in_flight:
            done = self.submit_and_wait(pool, queue, in_flight, window, started)
            if done is None:
                wait(in_flight)  # a broken pool completes every future at once
                return [
                    task for future, task in in_flight.items() if not record(future, task, finished)
                ]
            for future in done:
                record(future, in_flight.pop(future), finished)
        return []

    def submit_and_wait(
        self,
        pool: ProcessPoolExecutor,
        queue: deque[TrialTask],
        in_flight: dict[Future, TrialTask],
        window: int,
        started: Started,
    ) -> set[Future] | None:
        """Hand out queued trials until ``window`` are in flight, then wait for one to finish;
        returns the finished futures, or None when a worker died (the pool is broken)."""
        try:
            while queue and len(in_flight) < window:
                future = pool.submit(self.work, queue[0])
                task = in_flight[future] = queue.popleft()
                started(task.key)
        except BrokenProcessPool:  # a worker died since the last wait; the task stays queued
            return None
        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
        if any(isinstance(future.exception(), BrokenProcessPool) for future in done):
            return None
        return done


def kill_workers(pool: ProcessPoolExecutor) -> None:
    """Kill the pool's worker processes at once (Python 3.14 has pool.kill_workers())."""
    for process in list((pool._processes or {}).values()):
        process.kill()


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
