"""cnnlab.study: specs refused with the line at fault, trials recorded whatever happens,
resume after SIGKILL, a real local Ray cluster agreeing with local worker processes, and
the study report. Small data: scikit-learn's 8x8 digits and a tiny CNN."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from cnnlab.cli import main
from cnnlab.errors import CnnlabError
from cnnlab.study import (
    StudyStore,
    TrialResult,
    load_spec,
    parse_spec,
    plan_trials,
    pool,
    runners,
    shared_data,
    trial,
)
from cnnlab.study import report as study_report
from cnnlab.study.spec import apply_configuration, value_label

TINY_MODEL = {
    "name": "tiny",
    "layers": [
        {
            "class_name": "Conv2D",
            "config": {
                "name": "conv2d",
                "filters": 4,
                "kernel_size": [3, 3],
                "padding": "same",
                "activation": "relu",
            },
        },
        {"class_name": "MaxPooling2D", "config": {"name": "max_pooling2d", "pool_size": [2, 2]}},
        {
            "class_name": "Conv2D",
            "config": {
                "name": "conv2d_1",
                "filters": 4,
                "kernel_size": [3, 3],
                "padding": "same",
                "activation": "relu",
            },
        },
        {"class_name": "Flatten", "config": {"name": "flatten"}},
        {"class_name": "Dense", "config": {"name": "dense", "units": 10, "activation": "softmax"}},
    ],
}
TRAINING = {"dataset": "digits", "epochs": 1, "batch_size": 32, "train_size": 600, "test_size": 200}


def spec_text(axes: str, header: str = "", **training: object) -> str:
    settings = "\n".join(f"{k} = {json.dumps(v)}" for k, v in {**TRAINING, **training}.items())
    return (
        f'name = "tiny"\nmodel = "tiny.json"\n{header}\n[training]\n{settings}\n\n[axes]\n{axes}\n'
    )


def write_spec(folder: Path, axes: str, header: str = "", **training: object) -> Path:
    (folder / "tiny.json").write_text(json.dumps(TINY_MODEL))
    path = folder / "study.toml"
    path.write_text(spec_text(axes, header, **training))
    return path


def run_cli(capsys: pytest.CaptureFixture, *argv: object) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def trials_of(db: Path) -> list[dict]:
    with StudyStore(db, create=False) as store:
        return store.trials()


# --------------------------------------------------------------------------- the spec


def test_builtin_seed_study_has_the_four_axes_of_the_seed():
    spec = load_spec("seed-study")
    arguments = {axis.argument for axis in spec.axes}
    assert arguments == {"pool_size", "filters", "strides", "padding"}
    assert all(len(axis.values) >= 3 for axis in spec.axes)
    assert spec.training["dataset"] == "mnist" and spec.mode == "random"
    plans = plan_trials(spec)
    assert len(plans) == spec.n_trials * spec.repeats == len({p.key for p in plans})


def test_trial_keys_are_stable_and_random_sampling_grows_by_extension(tmp_path):
    axes = (
        '"conv2d.filters" = [2, 4, 8, 16]\n"max_pooling2d.pool_size" = [1, 2, '
        '3]\n"conv2d.strides" = [1, 2]'
    )
    grid = parse_spec(spec_text(axes, "repeats = 2"), base_dir=write_spec(tmp_path, axes).parent)
    plans = plan_trials(grid)
    assert len(plans) == 24 * 2 and len({p.key for p in plans}) == 48
    assert [p.seed for p in plans[:4]] == [0, 1, 0, 1]
    assert [p.key for p in plan_trials(grid)] == [p.key for p in plans]  # same spec, same keys
    small = plan_trials(
        parse_spec(spec_text(axes, 'mode = "random"\nn_trials = 5'), base_dir=tmp_path)
    )
    large = plan_trials(
        parse_spec(spec_text(axes, 'mode = "random"\nn_trials = 9'), base_dir=tmp_path)
    )
    assert [p.key for p in large[:5]] == [p.key for p in small]
    assert {p.key for p in large} <= {
        p.key for p in plan_trials(parse_spec(spec_text(axes), base_dir=tmp_path))
    }


def test_an_axis_can_address_several_layers_and_set_them_apart(tmp_path):
    axes = (
        '"*.padding" = ["valid", "same"]\n'
        '"conv2d,conv2d_1.filters" = [8, { conv2d = 2, conv2d_1 = 6 }]'
    )
    spec = parse_spec(spec_text(axes), base_dir=write_spec(tmp_path, axes).parent)
    padding, filters = spec.axes
    assert padding.layers == ("conv2d", "max_pooling2d", "conv2d_1")  # every layer taking padding
    assert [value_label(v) for v in filters.values] == ["8", "conv2d=2,conv2d_1=6"]
    config = apply_configuration(
        spec, TINY_MODEL, {"*.padding": "valid", "conv2d,conv2d_1.filters": filters.values[1]}
    )
    by_name = {layer["config"]["name"]: layer["config"] for layer in config["layers"]}
    assert (by_name["conv2d"]["filters"], by_name["conv2d_1"]["filters"]) == (2, 6)
    assert (
        by_name["max_pooling2d"]["padding"] == "valid"
        and TINY_MODEL["layers"][0]["config"]["padding"] == "same"
    )


BAD_AXES = {  # the wrong line is marked; each case: (its [axes] body, what the message says)
    "unknown layer": ('"conv9.filters" = [4, 8]  # <-', "the model has no layer 'conv9'"),
    "unknown argument": (
        '"conv2d.dilation_rate" = [1, 2]  # <-',
        "has no argument 'dilation_rate'",
    ),
    "argument of another layer": (
        '"max_pooling2d.filters" = [1, 2]  # <-',
        "MaxPooling2D 'max_pooling2d' has no argument",
    ),
    "non-list axis": ('"conv2d.filters" = 8  # <-', "must be a list of values"),
    "empty axis": ('"conv2d.filters" = []  # <-', "has no values"),
    "bad value": (
        '"conv2d.padding" = ["valid", "full"]  # <-',
        "padding must be 'valid' or 'same'",
    ),
    "not an address": ("filters = [4, 8]  # <-", "is not an address"),
    "malformed TOML": ('"conv2d.filters" = [4, 8,, 16]  # <-', "malformed TOML"),
}
BAD_SPECS = {
    **{
        name: (spec_text(f'"max_pooling2d.pool_size" = [2, 3]\n{body}'), message)
        for name, (body, message) in BAD_AXES.items()
    },
    "unknown setting": (
        spec_text('"conv2d.filters" = [4]', "n_trails = 4  # <-"),
        "unknown setting 'n_trails'",
    ),
    "unknown training setting": (
        spec_text('"conv2d.filters" = [4]', "", epoch=3).replace("epoch =", "epoch = 3  # <-\n#"),
        "unknown training setting 'epoch'",
    ),
    "random without n_trials": (
        spec_text('"conv2d.filters" = [4]', 'mode = "random"  # <-'),
        "needs n_trials",
    ),
}


@pytest.mark.parametrize("case", list(BAD_SPECS))
def test_a_bad_spec_is_refused_before_anything_runs_naming_the_line(case, tmp_path, capsys):
    text, message = BAD_SPECS[case]
    write_spec(tmp_path, "")
    (tmp_path / "study.toml").write_text(text)
    line = next(i for i, row in enumerate(text.splitlines(), 1) if "# <-" in row)
    code, out, err = run_cli(
        capsys, "study", tmp_path / "study.toml", "--out", tmp_path / "out", "--jobs", "1"
    )
    assert code == 2, out + err
    assert f"study.toml, line {line}: " in err and message in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists()  # nothing ran, nothing was written


def test_a_spec_file_that_is_missing_or_not_a_builtin_is_refused(capsys, tmp_path):
    code, _, err = run_cli(capsys, "study", tmp_path / "nothing.toml")
    assert code == 2 and "seed-study" in err


# --------------------------------------------------------------------------- trials and the store


def test_invalid_and_failing_trials_are_recorded_and_the_study_goes_on(
    tmp_path, capsys, monkeypatch
):
    real = trial.train_and_evaluate

    def fails_with_8_filters(model, settings, data, result):
        if model.layers[0].filters == 8:
            raise RuntimeError("simulated failure in training")
        real(model, settings, data, result)

    monkeypatch.setattr(trial, "train_and_evaluate", fails_with_8_filters)
    spec = write_spec(tmp_path, '"conv2d.filters" = [4, 8]\n"max_pooling2d.pool_size" = [2, 9]')
    code, out, err = run_cli(capsys, "study", spec, "--jobs", "1", "--out", tmp_path / "out")
    assert code == 0, err
    by_case = {
        (t["configuration"]["conv2d.filters"], t["configuration"]["max_pooling2d.pool_size"]): t
        for t in trials_of(tmp_path / "out" / "study.sqlite")
    }
    assert (
        by_case[(4, 2)]["status"] == "done"
        and 0 <= by_case[(4, 2)]["metrics"]["test_accuracy"] <= 1
    )
    assert by_case[(4, 2)]["history"]["loss"] and by_case[(4, 2)]["params"] > 0
    for filters in (4, 8):  # 8x8 images pooled 9x9 leave no pixel: not trained
        invalid = by_case[(filters, 9)]
        assert (
            invalid["status"] == "invalid"
            and "pool_size (9, 9)" in invalid["error"]
            and invalid["metrics"] is None
        )
    failed = by_case[(8, 2)]
    assert (
        failed["status"] == "failed"
        and "RuntimeError: simulated failure in training" in failed["error"]
    )
    assert "Trials: 1 done, 2 invalid, 1 failed" in out
    html = (tmp_path / "out" / "report.html").read_text()
    assert "Invalid and failed trials" in html and "simulated failure" in html


def test_resume_skips_finished_trials_and_reruns_unfinished_ones(tmp_path, capsys, monkeypatch):
    spec = write_spec(tmp_path, '"conv2d.filters" = [2, 4]\n"max_pooling2d.pool_size" = [2, 9]')
    out = tmp_path / "out"
    assert run_cli(capsys, "study", spec, "--jobs", "1", "--out", out)[0] == 0
    before = {t["key"]: t for t in trials_of(out / "study.sqlite")}
    ran: list[str] = []

    def counting(task, data):
        ran.append(task.key)
        return trial.run_trial(task, data)

    monkeypatch.setattr(pool, "run_trial", counting)  # the jobs=1 path runs trials in pool.py
    assert run_cli(capsys, "study", spec, "--jobs", "1", "--out", out)[0] == 0
    assert ran == [] and trials_of(out / "study.sqlite") == list(before.values())
    interrupted = next(k for k, t in before.items() if t["status"] == "done")
    with sqlite3.connect(out / "study.sqlite") as db:  # as a killed process leaves it
        db.execute(
            "UPDATE trials SET status = 'running', metrics = NULL WHERE key = ?", (interrupted,)
        )
    assert run_cli(capsys, "study", spec, "--jobs", "1", "--out", out)[0] == 0
    after = {t["key"]: t for t in trials_of(out / "study.sqlite")}
    assert ran == [interrupted] and after[interrupted]["attempts"] == 2
    assert after[interrupted]["metrics"] == before[interrupted]["metrics"]  # same seed, same result


def test_a_random_study_grows_but_other_changes_need_a_new_database(tmp_path, capsys):
    # all invalid: quick
    axes = '"max_pooling2d.pool_size" = [9, 10, 11, 12]\n"conv2d.filters" = [2, 3]'
    spec = write_spec(tmp_path, axes, 'mode = "random"\nn_trials = 3')
    assert run_cli(capsys, "study", spec, "--jobs", "1", "--out", tmp_path / "out")[0] == 0
    first = trials_of(tmp_path / "out" / "study.sqlite")
    spec.write_text(spec_text(axes, 'mode = "random"\nn_trials = 5'))
    assert run_cli(capsys, "study", spec, "--jobs", "1", "--out", tmp_path / "out")[0] == 0
    grown = trials_of(tmp_path / "out" / "study.sqlite")
    assert len(grown) == 5 and grown[:3] == first  # the first three kept as they were
    spec.write_text(spec_text(axes, 'mode = "random"\nn_trials = 5', epochs=2))
    code, _, err = run_cli(capsys, "study", spec, "--jobs", "1", "--out", tmp_path / "out")
    assert code == 2 and "different model or training settings or axes" in err


def child_pids(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (Linux /proc)."""
    children = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(stat.parent.name))
    return children


def wait_until(condition, timeout: float, step: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step)
    return False


def status_counts(db: Path) -> dict[str, int]:
    if not db.is_file():
        return {}
    with sqlite3.connect(db, timeout=5) as connection:
        try:
            return dict(
                connection.execute("SELECT status, COUNT(*) FROM trials GROUP BY status").fetchall()
            )
        except sqlite3.OperationalError:  # the schema is being created
            return {}


def twelve_trial_study(tmp_path: Path) -> tuple[Path, Path, Path, list[str]]:
    """A 12-trial study long enough to be stopped mid-way:
    (spec, out, db, the cnnlab command running it)."""
    spec = write_spec(
        tmp_path,
        '"conv2d.filters" = [2, 3, 4, 5, 6, 7]\n"conv2d_1.filters" = [2, 3]',
        epochs=2,
        train_size=1347,
    )
    out = tmp_path / "out"
    command = [
        sys.executable,
        "-c",
        "from cnnlab.cli import entry_point; entry_point()",
        "study",
        str(spec),
        "--jobs",
        "2",
        "--out",
        str(out),
    ]
    return spec, out, out / "study.sqlite", command


@pytest.mark.slow
def test_a_study_killed_with_sigkill_resumes_with_every_trial_exactly_once(tmp_path, capsys):
    spec, out, db, command = twelve_trial_study(tmp_path)
    with open(tmp_path / "log.txt", "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        assert wait_until(lambda: status_counts(db).get("done", 0) >= 2, timeout=60), (
            tmp_path / "log.txt"
        ).read_text()
        workers = child_pids(process.pid)
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    killed = status_counts(db)
    assert killed.get("done", 0) < 12, (
        "the study ended before it was killed; make its trials longer"
    )
    # the orphaned workers notice that their driver is gone and end on their own
    assert wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=10)
    finished_before = {t["key"]: t for t in trials_of(db) if t["status"] == "done"}

    code, _, err = run_cli(capsys, "study", spec, "--jobs", "2", "--out", out)
    assert code == 0, err
    trials = trials_of(db)
    assert len(trials) == 12 and len({t["key"] for t in trials}) == 12  # none lost, none twice
    assert {t["status"] for t in trials} == {"done"}
    # each worker got cores // jobs BLAS threads, so the two workers do not oversubscribe the cores
    assert {t["blas_threads"] for t in trials} == {max(1, runners.available_cores() // 2)}
    for key, before in finished_before.items():  # not run again
        now = next(t for t in trials if t["key"] == key)
        assert (now["attempts"], now["finished"], now["metrics"]) == (
            1,
            before["finished"],
            before["metrics"],
        )
    assert sum(t["attempts"] for t in trials) == 12 + killed.get("running", 0)


@pytest.mark.slow
def test_ctrl_c_stops_the_study_at_once_and_the_same_command_goes_on(tmp_path, capsys):
    spec, out, db, command = twelve_trial_study(tmp_path)
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )  # a process group of its own, as a terminal's job
    try:
        assert wait_until(lambda: status_counts(db).get("done", 0) >= 2, timeout=60)
        workers = child_pids(process.pid)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C: the whole group, driver and workers
        output, _ = process.communicate(timeout=10)  # no waiting for the trials in flight
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    counts = status_counts(db)
    finished = counts.get("done", 0)
    assert process.returncode == 130, output
    assert (
        f"cnnlab: interrupted: {finished} of 12 trials finished, kept in {db}; go on with the "
        "same command" in output
    )
    assert (
        "Traceback" not in output and "failed" not in counts
    )  # a trial cut short is not a failed trial
    assert wait_until(lambda: not any(Path(f"/proc/{pid}").exists() for pid in workers), timeout=5)
    code, _, err = run_cli(capsys, "study", spec, "--jobs", "2", "--out", out)
    assert code == 0, err
    assert status_counts(db) == {"done": 12}


def dies_on_seed_2(task):
    """A worker's work whose trial with seed 2 kills its process, as the kernel's OOM killer
    would."""
    if task.seed == 2:
        os.kill(os.getpid(), signal.SIGKILL)
    return runners.run_in_worker(task)


class DyingWorkers(runners.LocalRunner):
    work = staticmethod(dies_on_seed_2)


def shared_blocks() -> set[str]:
    return {name for name in os.listdir("/dev/shm") if name.startswith("psm_")}


@pytest.mark.slow
def test_a_trial_that_kills_its_worker_fails_alone_and_every_other_trial_finishes(tmp_path):
    spec_path = write_spec(tmp_path, '"conv2d.filters" = [4]', "repeats = 6")
    spec = parse_spec(spec_path.read_text(), base_dir=tmp_path)
    data = runners.prepare_data(spec)
    blocks_before = shared_blocks()
    with runners.open_store(spec, tmp_path / "dying.sqlite") as store:
        counts = runners.run_study(
            spec, store, DyingWorkers(2, threads=1), data, Console(quiet=True)
        )
        trials = {t["seed"]: t for t in store.trials()}
    assert +counts == {"done": 5, "failed": 1}
    assert trials[2]["status"] == "failed" and trials[2]["error"] == runners.WORKER_DIED
    assert trials[2]["attempts"] == 2  # once in the pool of two, once alone in a pool of its own
    assert shared_blocks() <= blocks_before  # the data's shared memory is removed
    with runners.open_store(
        spec, tmp_path / "alone.sqlite"
    ) as store:  # the same trials in this process
        runners.run_study(spec, store, runners.LocalRunner(1, threads=1), data, Console(quiet=True))
        alone = {t["seed"]: t for t in store.trials()}
    for seed in (
        0,
        1,
        3,
        4,
        5,
    ):  # the trials in the pool when it broke ran again, with the same results
        assert (
            trials[seed]["status"] == "done" and trials[seed]["metrics"] == alone[seed]["metrics"]
        )
        assert trials[seed]["history"]["loss"] == alone[seed]["history"]["loss"]


def test_workers_map_the_drivers_arrays_read_only_and_the_block_goes_with_close(tmp_path):
    from multiprocessing import shared_memory

    import numpy as np

    data = runners.prepare_data(
        parse_spec(write_spec(tmp_path, '"conv2d.filters" = [4]').read_text(), base_dir=tmp_path)
    )
    with runners.SharedData(data) as shared:
        mapped, memory = runners.attach_data(shared.handle)
        for name in runners.ARRAY_FIELDS:
            original, view = getattr(data, name), getattr(mapped, name)
            assert view.dtype == original.dtype and view.shape == original.shape
            np.testing.assert_array_equal(view, original)
            assert not view.flags.writeable and view.ctypes.data % 64 == 0
        assert (mapped.name, mapped.class_names, mapped.source) == (
            data.name,
            data.class_names,
            data.source,
        )
        with pytest.raises(ValueError, match="read-only"):
            mapped.x_train[0, 0, 0, 0] = 1.0
        del mapped, view
        memory.close()
    with pytest.raises(FileNotFoundError):
        shared_memory.SharedMemory(name=shared.handle["memory"])


@pytest.mark.slow
def test_without_room_in_dev_shm_each_worker_gets_a_copy_and_the_same_results(
    tmp_path, monkeypatch
):
    spec = parse_spec(
        write_spec(tmp_path, '"conv2d.filters" = [2, 4]', "repeats = 2").read_text(),
        base_dir=tmp_path,
    )
    data = runners.prepare_data(spec)
    results = []
    for room in ("enough", "none"):
        if room == "none":  # as in a Docker container with its 64 MB /dev/shm and a large dataset
            monkeypatch.setattr(shared_data, "shared_memory_room", lambda: 0)
            with runners.SharedData(data) as shared:
                assert shared.memory is None and shared.handle["data"] is data
        with runners.open_store(spec, tmp_path / f"{room}.sqlite") as store:
            assert runners.run_study(
                spec, store, runners.LocalRunner(2, threads=1), data, Console(quiet=True)
            ) == {"done": 4}
            results.append([(t["key"], t["metrics"], t["history"]["loss"]) for t in store.trials()])
    assert results[0] == results[1]


WORKER_WITHOUT_SKLEARN = """
import pickle, sys
from cnnlab.study import parse_spec, plan_trials
from cnnlab.study.runners import prepare_data
from cnnlab.study.trial import make_task, run_trial
spec = parse_spec(open(sys.argv[1]).read(), base_dir=sys.argv[2])
data = prepare_data(spec)
result = run_trial(make_task(spec, plan_trials(spec)[0], data), data)
assert result.status == "done", result.error
print(
    "SKLEARN_IMPORTED",
    any(name == "sklearn" or name.startswith("sklearn.") for name in sys.modules),
)
sys.stdout.flush()
open(sys.argv[3], "wb").write(pickle.dumps(result))
"""


def write_rows_spec(tmp_path):
    """A study of one trial on rows.npz: 8x8 noise (300 train, 60 test) where the class
    lights up a row, a learnable signal."""
    import numpy as np

    rng = np.random.default_rng(0)
    x, y = rng.random((360, 8, 8, 1), dtype=np.float32), rng.integers(0, 10, 360)
    x[np.arange(360), y % 8, :, 0] += 2.0  # a learnable signal: the class lights up a row
    np.savez(
        tmp_path / "rows.npz", x_train=x[:300], y_train=y[:300], x_test=x[300:], y_test=y[300:]
    )
    return write_spec(
        tmp_path,
        '"conv2d.filters" = [4]',
        dataset=str(tmp_path / "rows.npz"),
        train_size=300,
        test_size=60,
    )


def test_workers_bring_back_predictions_and_the_driver_scores_them(tmp_path):
    """A trial (in a fresh process, as a worker) trains and predicts without importing
    scikit-learn; score() in the driver turns its probabilities into the stored metrics."""
    import pickle

    import numpy as np
    from sklearn.metrics import accuracy_score, confusion_matrix

    spec_path = write_rows_spec(tmp_path)
    out = tmp_path / "result.pickle"
    done = subprocess.run(
        [sys.executable, "-c", WORKER_WITHOUT_SKLEARN, str(spec_path), str(tmp_path), str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "SKLEARN_IMPORTED False" in done.stdout
    result = pickle.loads(out.read_bytes())
    assert result.metrics is None and result.y_prob.shape == (60, 10)
    np.testing.assert_allclose(result.y_prob.sum(axis=1), 1.0, rtol=1e-5)
    spec = parse_spec(spec_path.read_text(), base_dir=tmp_path)
    data = runners.prepare_data(spec)
    y_prob = result.y_prob
    scored = trial.score(result, data)
    assert scored.y_prob is None and "y_prob" not in scored.to_dict()
    assert (
        set(trial.STORED_METRICS) - {"roc_auc_ovr"}
        <= set(scored.metrics)
        <= set(trial.STORED_METRICS)
    )
    assert scored.metrics["test_accuracy"] == accuracy_score(data.y_test, y_prob.argmax(axis=1))
    assert (
        scored.metrics["confusion_matrix"]
        == confusion_matrix(data.y_test, y_prob.argmax(axis=1), labels=range(10)).tolist()
    )
    assert scored.metrics["test_loss"] == pytest.approx(
        -np.log(np.clip(y_prob[np.arange(60), data.y_test], 1e-7, 1)).mean(), rel=1e-5
    )


def test_a_result_that_cannot_be_scored_is_recorded_as_failed(tmp_path):
    import numpy as np

    spec_path = write_spec(tmp_path, '"conv2d.filters" = [4]')
    data = runners.prepare_data(parse_spec(spec_path.read_text(), base_dir=tmp_path))
    broken = TrialResult(
        "k", "done", y_prob=np.full((len(data.y_test), 10), np.nan, dtype=np.float32)
    )
    scored = trial.score(broken, data)
    assert scored.status == "failed" and scored.error.startswith(
        "scoring the test predictions failed: ValueError"
    )
    assert scored.y_prob is None and scored.metrics is None
    invalid = trial.score(TrialResult("k", "invalid", error="leaves zero pixels"), data)
    assert invalid.status == "invalid" and invalid.metrics is None


# -------------------------------------------------------------------- Ray against local processes


@pytest.fixture(scope="module")
def ray_cluster():
    """A real Ray cluster on this machine, bound to 127.0.0.1, stopped at the end of the module."""
    # Ray replaces 127.0.0.1 by the machine's network address unless it runs in this mode.
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = pytest.importorskip("ray")
    context = ray.init(
        address="local",
        _node_ip_address="127.0.0.1",
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        logging_level="WARNING",
    )
    try:
        address = context.address_info["gcs_address"]
        assert address.startswith("127.0.0.1:")
        yield address
    finally:
        ray.shutdown()


@pytest.mark.slow
def test_ray_cluster_gives_the_results_of_local_worker_processes(ray_cluster, tmp_path, capsys):
    spec = write_spec(
        tmp_path, '"conv2d.filters" = [2, 6]\n"max_pooling2d.pool_size" = [2, 9]', "repeats = 2"
    )
    command = [
        sys.executable,
        "-c",
        "from cnnlab.cli import entry_point; entry_point()",
        "study",
        str(spec),
        "--ray",
        ray_cluster,
        "--out",
        str(tmp_path / "ray"),
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    code, _, err = run_cli(
        capsys, "study", spec, "--jobs", "2", "--threads", "1", "--out", tmp_path / "local"
    )
    assert code == 0, err
    on_ray, local = (
        trials_of(tmp_path / "ray" / "study.sqlite"),
        trials_of(tmp_path / "local" / "study.sqlite"),
    )
    assert [t["key"] for t in on_ray] == [t["key"] for t in local] and len(local) == 8
    for ray_trial, local_trial in zip(on_ray, local):
        for column in ("status", "metrics", "params", "seed", "configuration"):
            assert ray_trial[column] == local_trial[column], (column, ray_trial["key"])
    assert sum(t["status"] == "done" for t in local) == 4
    assert os.getpid() not in {t["pid"] for t in on_ray} | {t["pid"] for t in local}
    assert {t["blas_threads"] for t in local} == {t["blas_threads"] for t in on_ray} == {1}


# --------------------------------------------------------------------------- the report


def synthetic_store(db: Path) -> None:
    """A finished 3 x 2 x 2 grid study, 2 seeds each, with additive effects: pool 3 gains
    0.4 points and pool 4 costs 1.2, 16 filters add 2, stride 2 costs 5; pool 4 with 16
    filters never fits (so plain means would mix the filters' effect into pool 4's)."""
    axes = (
        '"max_pooling2d.pool_size" = [2, 3, 4]\n"conv2d.filters" = [8, 16]\n"conv2d.strides" = '
        "[1, 2]"
    )
    (db.parent / "tiny.json").write_text(json.dumps(TINY_MODEL))
    spec = parse_spec(spec_text(axes, "repeats = 2"), "synthetic.toml", db.parent)
    with StudyStore(db) as store:
        store.attach(spec.name, spec.fingerprint(), spec.summary(), spec.text)
        plans = plan_trials(spec)
        store.add_trials(plans)
        for plan in plans:
            pool, filters, strides = plan.configuration.values()
            if (pool, filters) == (4, 16):
                store.record(
                    TrialResult(plan.key, "invalid", error="MaxPooling2D: leaves zero pixels")
                )
                continue
            accuracy = (
                0.9
                + {2: 0.0, 3: 0.004, 4: -0.012}[pool]
                + (0.02 if filters == 16 else 0)
                - 0.05 * (strides == 2)
                + 0.001 * plan.seed
            )
            store.record(
                TrialResult(
                    plan.key,
                    "done",
                    metrics={"test_accuracy": accuracy, "test_loss": 0.3},
                    history={"loss": [0.5, 0.3]},
                    params=100 * filters // pool,
                    seconds=filters / 8,
                )
            )


def test_report_of_a_study_states_each_axis_effect_from_the_data(tmp_path, capsys):
    synthetic_store(tmp_path / "study.sqlite")
    code, out, err = run_cli(capsys, "report", tmp_path)
    assert code == 0, err
    html = (tmp_path / "report.html").read_text()
    assert (
        "max_pooling2d.pool_size: 3 raises accuracy by 0.4 points and 4 lowers accuracy by 1.2 "
        "points "
        "on average versus 2."
    ) in html
    assert "conv2d.filters: 16 raises accuracy by 2.0 points on average versus 8." in html
    assert "conv2d.strides: 2 lowers accuracy by 5.0 points on average versus 1." in html
    assert (
        "main effects fitted by least squares" in html
        and html.count('<table class="sortable">') >= 6
    )
    assert html.count("data:image/png;base64,") == 5  # 3 axes, 2 Pareto plots
    assert (tmp_path / "figures" / "study_pareto_params.png").is_file()
    assert (
        run_cli(capsys, "report", tmp_path / "study.sqlite")[0] == 0
    )  # the file itself also works


def test_effects_fall_back_to_plain_means_when_the_fit_is_not_well_determined():
    def done(pool: int, filters: int, accuracy: float) -> dict:
        return {
            "configuration": {"pool": pool, "filters": filters},
            "metrics": {"test_accuracy": accuracy},
        }

    trials = [done(2, 8, 0.90), done(2, 16, 0.92), done(4, 8, 0.88)]
    fitted, raw = study_report.axis_effects({"pool": ["2", "4"], "filters": ["8", "16"]}, trials)
    assert fitted is None
    assert raw["pool"]["4"] == pytest.approx(88 - 91) and raw["filters"]["16"] == pytest.approx(
        92 - 89
    )


def test_pareto_front_and_sentences_of_degenerate_data():
    assert study_report.pareto_front([10, 20, 20, 5, 30], [0.8, 0.9, 0.85, 0.7, 0.88]) == [3, 0, 1]
    rows = [
        {"value": "2", "done": 3, "invalid": 0, "failed": 0},
        {"value": "9", "done": 0, "invalid": 2, "failed": 0},
    ]
    assert (
        study_report.effect_sentence("pool", {}, rows)
        == "pool: only 2 has finished trials; 9 never fits (all 2 trials invalid)."
    )
    both = [rows[0], {**rows[0], "value": "3"}]
    assert study_report.effect_sentence("pool", {"3": 0.01}, both) == (
        "pool: 3 leaves accuracy unchanged (within 0.1 points) on average versus 2."
    )
    assert (
        study_report.effect_sentence("pool", {}, rows[:1]) == "pool: 2 in every trial (not varied)."
    )


def test_report_refuses_a_folder_that_is_not_a_study(tmp_path):
    with pytest.raises(CnnlabError, match="not a study"):
        study_report.render_study_report(tmp_path)
