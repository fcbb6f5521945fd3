"""`cnnlab report DIR` rebuilds the report of every kind of directory cnnlab writes, chosen by the
"kind" the directory declares (report.REPORT_KINDS), and says in one line when DIR is none of
them."""

from __future__ import annotations

import json
import shlex
import shutil
from pathlib import Path

import pytest

from cnnlab.cli import main
from cnnlab.report import REPORT_KINDS, directory_kind
from cnnlab.study import report as study_report

PROGRAMS = Path(__file__).parent / "programs" / "compare"
TINY_STUDY = """name = "tiny"
model = "seed-cnn-same"
[training]
dataset = "digits"
epochs = 1
batch_size = 64
train_size = 400
test_size = 100
[axes]
"conv2d.filters" = [4, 8]
"""


DIGITS = "--dataset digits --train-size 400 --test-size 100"
COMMANDS = {  # kind -> the command that writes a directory of that kind (its --out is added)
    "run": f"train {DIGITS} --epochs 1",
    "approximation": "approx --function circle --samples 400 --epochs 1",
    "comparison": f"compare {DIGITS} --epochs 1",
    "parity": "compare --parity --steps 2 --dataset digits --train-size 300 --test-size 50",
    "program-comparison": f"compare {shlex.quote(str(PROGRAMS / 'logits_digits.py'))} --epochs 1",
    "study": "study {spec} --jobs 1",
}


def make(kind: str, folder: Path) -> Path:
    """Run the command of that kind into folder/kind; returns the directory."""
    spec = folder / "tiny.toml"
    spec.write_text(TINY_STUDY)
    out = folder / kind
    command = COMMANDS[kind].format(spec=shlex.quote(str(spec)))
    assert main([*shlex.split(command), "--out", str(out)]) == 0
    return out


TITLES = {
    "run": "digits",
    "approximation": "circle",
    "comparison": "NumPy engine vs PyTorch",
    "parity": "Parity",
    "program-comparison": "logits_digits.py",
    "study": "tiny",
}


def test_every_kind_has_a_command_here():
    assert set(COMMANDS) == set(REPORT_KINDS)


@pytest.mark.torch
@pytest.mark.parametrize("kind", sorted(COMMANDS))
def test_cnnlab_report_rebuilds_each_kind_from_its_files(kind, tmp_path, capsys):
    directory = make(kind, tmp_path)
    assert directory_kind(directory) == kind
    if kind != "study":  # a study's database says what it is
        main_file = next(
            name
            for name in ("comparison.json", "parity.json", "config.json")
            if (directory / name).is_file()
        )
        assert json.loads((directory / main_file).read_text())["kind"] == kind
    report = (
        study_report.study_paths(directory)[1] if kind == "study" else directory / "report.html"
    )
    report.unlink()
    capsys.readouterr()
    assert main(["report", str(directory)]) == 0
    assert f"Report: {report}" in capsys.readouterr().out
    assert TITLES[kind] in report.read_text()


def test_a_run_written_before_kinds_is_still_recognised(tmp_path):
    run = make("run", tmp_path)
    config = json.loads((run / "config.json").read_text())
    del config["kind"]
    (run / "config.json").write_text(json.dumps(config))
    assert directory_kind(run) == "run"


def test_a_directory_cnnlab_did_not_write_is_one_line(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("hello")
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "not a directory cnnlab wrote" in err and err.count("\n") == 1
    other = tmp_path / "other"
    shutil.copytree(PROGRAMS, other / "x")
    (other / "config.json").write_text(json.dumps({"kind": "poem"}))
    assert main(["report", str(other)]) == 2
    assert "unknown kind 'poem'" in capsys.readouterr().err
