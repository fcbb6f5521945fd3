"""Training never loses work: kill or interrupt `cnnlab train`, resume it, get the same result."""

from __future__ import annotations

import csv
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from cnnlab import load_model
from cnnlab.cli import main
from cnnlab.engine import saving

EPOCHS = 12  # enough that a kill right after an early checkpoint lands in the middle of training
TRAIN = [
    "train",
    "--dataset",
    "digits",
    "--epochs",
    str(EPOCHS),
    "--train-size",
    "1000",
    "--test-size",
    "100",
    "--batch-size",
    "8",
    "--seed",
    "4",
]
CHECKPOINT = "checkpoint.cnnlab"


def cnnlab_process(out: Path) -> subprocess.Popen:
    script = shutil.which("cnnlab", path=str(Path(sys.executable).parent)) or "cnnlab"
    return subprocess.Popen(
        [script, *TRAIN, "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for_checkpoint(
    process: subprocess.Popen, out: Path, epochs: int, timeout: float = 60
) -> None:
    """Until `epochs` epochs are checkpointed (the sign of progress): the process is then in a later
    epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = out / CHECKPOINT
        if path.exists():
            try:
                if saving.read_archive(path, kind="cnnlab-checkpoint")[0]["epoch"] >= epochs:
                    return
            except ValueError:
                pass  # caught between writes: the rename makes this rare, try again
        if process.poll() is not None:
            pytest.fail(f"training ended before it could be interrupted: {process.communicate()}")
        time.sleep(0.05)
    pytest.fail("no checkpoint appeared")


def results(run: Path) -> tuple[list[np.ndarray], list[dict]]:
    with open(run / "history.csv") as file:
        history = [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(file)]
    return load_model(run / "model.cnnlab").get_weights(), history


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("full") / "run"
    assert main([*TRAIN, "--out", str(out)]) == 0
    assert not (out / CHECKPOINT).exists()  # removed once the run finished
    return out


def assert_same_run(resumed: Path, reference: Path) -> None:
    weights, history = results(resumed)
    ref_weights, ref_history = results(reference)
    assert history == ref_history and len(history) == EPOCHS
    for a, b in zip(weights, ref_weights):
        assert a.tobytes() == b.tobytes()


def test_sigkill_mid_epoch_then_resume_gives_the_same_weights_and_history(
    tmp_path, uninterrupted, capsys
):
    out = tmp_path / "run"
    process = cnnlab_process(out)
    wait_for_checkpoint(process, out, epochs=2)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)  # also closes the pipes
    assert (out / CHECKPOINT).exists() and not (out / "model.cnnlab").exists()
    assert main(["train", "--resume", str(out)]) == 0
    assert_same_run(out, uninterrupted)


def test_ctrl_c_saves_exits_130_with_one_line_and_resumes(tmp_path, uninterrupted, capsys):
    out = tmp_path / "run"
    process = cnnlab_process(out)
    wait_for_checkpoint(process, out, epochs=1)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130
    lines = [line for line in err.splitlines() if line.startswith("cnnlab:")]
    assert len(lines) == 1 and "Traceback" not in err
    assert f"continue with: cnnlab train --resume {out}" in lines[0] and CHECKPOINT in lines[0]
    assert main(["train", "--resume", str(out)]) == 0
    assert_same_run(out, uninterrupted)


def test_an_unfinished_run_is_not_overwritten_without_resume(tmp_path, capsys):
    out = tmp_path / "run"
    process = cnnlab_process(out)
    wait_for_checkpoint(process, out, epochs=1)
    process.send_signal(signal.SIGKILL)
    process.communicate(timeout=30)  # also closes the pipes
    assert main([*TRAIN, "--out", str(out)]) == 2
    assert "holds an unfinished run: continue it with --resume" in capsys.readouterr().err


def test_resume_of_a_finished_run_says_so(uninterrupted, capsys):
    assert main(["train", "--resume", str(uninterrupted)]) == 2
    assert "has no checkpoint to resume: the run finished" in capsys.readouterr().err


@pytest.mark.parametrize(
    "code, words",
    [(errno.ENOSPC, "No space left on device"), (errno.EROFS, "Read-only file system")],
)
def test_a_disk_error_while_checkpointing_is_clear_and_keeps_the_last_checkpoint(
    tmp_path, monkeypatch, capsys, code, words
):
    """The checkpoint of epoch 2 cannot be written: the one of epoch 1 is left intact."""
    out = tmp_path / "run"
    real_replace, calls = os.replace, []

    def failing_replace(source, target):
        if str(target).endswith(CHECKPOINT):
            calls.append(target)
            if len(calls) == 2:
                raise OSError(code, os.strerror(code))
        return real_replace(source, target)

    monkeypatch.setattr(saving.os, "replace", failing_replace)
    assert main([*TRAIN, "--out", str(out)]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cnnlab:")]
    assert len(err) == 1 and f"cannot write {out / CHECKPOINT}: {words}" in err[0]
    meta, _ = saving.read_archive(out / CHECKPOINT, kind="cnnlab-checkpoint")
    assert meta["epoch"] == 1
    assert [p.name for p in out.iterdir() if p.name.endswith(".tmp")] == []


def test_nan_in_the_inputs_is_refused_before_training(tmp_path, capsys):
    data = tmp_path / "bad.npz"
    x = np.random.default_rng(0).random((20, 8, 8)).astype("float32")
    x[3, 2, 2] = np.nan
    np.savez(data, x_train=x, y_train=np.arange(20) % 2, x_test=x[:4] * 0, y_test=np.arange(4) % 2)
    assert (
        main(
            [
                "train",
                "--dataset",
                str(data),
                "--epochs",
                "1",
                "--batch-size",
                "4",
                "--out",
                str(tmp_path / "r"),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert "NaN" in err and "Traceback" not in err


def test_a_learning_rate_of_1e6_trips_the_divergence_guard(tmp_path, capsys):
    """Plain SGD at 1e6 through a linear hidden layer overflows within a few batches."""
    model = tmp_path / "linear.json"
    model.write_text(
        '{"layers": [{"class_name": "Flatten", "config": {"name": "flatten"}},'
        ' {"class_name": "Dense", "config": {"name": "hidden", "units": 32}},'
        ' {"class_name": "Dense", "config": {"name": "out", "units": 10, "activation": '
        '"softmax"}}]}'
    )
    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--dataset",
            "digits",
            "--model",
            str(model),
            "--optimizer",
            "sgd",
            "--learning-rate",
            "1e6",
            "--epochs",
            "3",
            "--batch-size",
            "16",
            "--out",
            str(out),
        ]
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("cnnlab:")]
    assert code == 2 and len(err) == 1
    assert re.search(
        r"training diverged at epoch 1, batch \d+: .* layer '(hidden|out)'.*Lower the learning "
        r"rate \(now 1e\+06\)",
        err[0],
    )
    assert not (out / "model.cnnlab").exists()
