"""Trials as Ray tasks (``RayRunner``): the prepared data put into the object store once, twice as
many tasks handed out as the cluster has CPUs."""

from __future__ import annotations

from collections import deque
from typing import Any

from ..errors import CnnlabError
from ..training import PreparedData
from .dispatch import Finished, Started, failed_result
from .trial import TrialTask, run_trial


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
