"""The BLAS thread count while a model trains: the cores other work leaves free (engine.threads)."""

from __future__ import annotations

import numpy as np
import pytest

from cnnlab.engine import threads
from cnnlab.engine.callbacks import Callback
from cnnlab.engine.layers import Dense, Input
from cnnlab.engine.sequential import Sequential


class FakeMachine:
    """A clock and /proc readings under the test's control, and a BLAS that records its counts."""

    def __init__(self, count: int) -> None:
        self.now, self.busy, self.own, self.count, self.calls = 0.0, 0.0, 0.0, count, []

    def run(self, seconds: float, other_cores: float, own_cores: float) -> None:
        self.now += seconds
        self.busy += seconds * (other_cores + own_cores)
        self.own += seconds * own_cores

    def set_count(self, count: int) -> None:
        self.count = count
        self.calls.append(count)


@pytest.fixture
def machine(monkeypatch):
    fake = FakeMachine(count=2)
    monkeypatch.setattr(threads, "_control", (lambda: fake.count, fake.set_count))
    monkeypatch.delenv(threads.FIXED_ENV, raising=False)
    monkeypatch.setattr(threads, "_fixed", None)
    return fake


def fitter_on(machine: FakeMachine) -> threads.ThreadFitter:
    return threads.ThreadFitter(
        clock=lambda: machine.now, readings=lambda: (machine.busy, machine.own)
    )


@pytest.mark.parametrize(
    "others, ceiling, expected",
    [(0.0, 2, 2), (0.2, 2, 2), (0.7, 2, 1), (1.0, 2, 1), (2.0, 2, 1), (0.0, 1, 1), (1.6, 4, 2)],
)
def test_the_count_is_the_free_cores_between_one_and_the_ceiling(others, ceiling, expected):
    cores = 4 if ceiling == 4 else 2
    assert threads.threads_for(others, ceiling, cores=cores) == expected


def test_a_busy_core_lowers_the_count_and_a_free_one_raises_it_back(machine):
    fitter = fitter_on(machine)
    fitter.start()
    machine.run(0.6, other_cores=0.0, own_cores=2.0)
    fitter.tick()
    assert machine.calls == []  # nothing else runs: two threads stay
    machine.run(0.6, other_cores=1.0, own_cores=1.0)  # another program takes a core
    fitter.tick()
    assert machine.count == 1
    machine.run(0.2, other_cores=0.0, own_cores=1.0)
    fitter.tick()  # less than half a second since the last look: no change yet
    assert machine.count == 1
    machine.run(0.6, other_cores=0.0, own_cores=1.0)  # the other program is gone
    fitter.tick()
    assert machine.count == 2
    machine.run(0.6, other_cores=1.0, own_cores=1.0)
    fitter.tick()
    fitter.stop()
    assert machine.calls == [1, 2, 1, 2]  # the count in force before training is put back


def test_the_count_in_force_when_training_starts_is_the_ceiling(machine):
    machine.count = 1  # e.g. OPENBLAS_NUM_THREADS=1 or threadpool_limits(1)
    fitter = fitter_on(machine)
    fitter.start()
    machine.run(1.0, other_cores=0.0, own_cores=1.0)
    fitter.tick()
    fitter.stop()
    assert machine.calls == [1]  # only the restore: never raised above 1


def test_a_fixed_count_is_used_as_given(machine, monkeypatch):
    monkeypatch.setenv(threads.FIXED_ENV, "1")
    fitter = fitter_on(machine)
    fitter.start()
    machine.run(1.0, other_cores=0.0, own_cores=1.0)
    fitter.tick()
    assert machine.count == 1
    fitter.stop()
    assert machine.calls == [1, 2]
    monkeypatch.setenv(threads.FIXED_ENV, "two")
    with pytest.raises(
        ValueError, match="CNNLAB_THREADS must be a positive integer, received 'two'"
    ):
        fitter_on(machine).start()
    with pytest.raises(ValueError, match="expected a positive int or None, received 0"):
        threads.set_threads(0)


def test_fit_runs_with_the_fixed_count_and_restores_the_real_blas_count(monkeypatch):
    """Through threadpoolctl (cnnlab.connect): the count seen from inside fit, and after it."""
    from cnnlab.connect import blas_threads, connect_engine

    connect_engine()
    before = blas_threads()
    seen = []

    class Watch(Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(blas_threads())

    monkeypatch.setenv(threads.FIXED_ENV, "1")
    model = Sequential([Input(shape=(4,)), Dense(2, activation="softmax")], seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    model.fit(
        np.ones((16, 4), np.float32),
        np.zeros(16, int),
        batch_size=4,
        verbose=0,
        callbacks=[Watch()],
    )
    assert seen == [1, 1, 1, 1] and blas_threads() == before


def test_the_first_look_comes_early_so_that_a_small_run_fits_too(machine):
    fitter = fitter_on(machine)
    fitter.start()
    machine.run(0.05, other_cores=1.0, own_cores=1.0)
    fitter.tick()
    assert machine.calls == []  # too soon to tell
    machine.run(0.1, other_cores=1.0, own_cores=1.0)
    fitter.tick()  # 0.15 s in: past the first look's 0.1 s
    assert machine.count == 1
    machine.run(0.2, other_cores=0.0, own_cores=1.0)
    fitter.tick()  # afterwards every half second
    assert machine.count == 1
    fitter.stop()


def test_a_predict_inside_fit_leaves_fits_own_fitting_in_place(monkeypatch):
    """A callback that predicts during fit nests a second fitter; when fit ends the count in
    force before fit is back, and fit's fitter kept ticking after the nested one stopped."""
    from cnnlab.connect import blas_threads, connect_engine

    connect_engine()
    before = blas_threads()
    ticks = []
    model = Sequential([Input(shape=(4,)), Dense(2, activation="softmax")], seed=0)
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")

    class PredictEachBatch(Callback):
        def on_train_batch_end(self, batch, logs=None):
            model.predict(np.ones((2, 4), np.float32), verbose=0)
            ticks.append(model.thread_fitter)

    model.fit(
        np.ones((16, 4), np.float32),
        np.zeros(16, int),
        batch_size=4,
        verbose=0,
        callbacks=[PredictEachBatch()],
    )
    assert len({id(fitter) for fitter in ticks}) == 1  # fit's own fitter, every time
    assert not ticks[0].active and blas_threads() == before
