"""Smoke test of benchmarks/bench_train.py: a tiny run, so that the script never rots.

It runs the script as a user would (a subprocess, which itself starts one subprocess per
part) with a few batches and 500 test images, then checks that the JSON has every figure,
with positive times and ratios that are the quotients they claim to be. MNIST is used when
it is in the data directory, else the script's random images of the same shapes.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "bench_train.py"
DATA_DIR = Path(os.environ.get("CNNLAB_DATA_DIR") or REPO.parent / "shared" / "data")
TINY = [
    "--batches",
    "3",
    "--warmup",
    "1",
    "--rounds",
    "1",
    "--threads",
    "1",
    "--inference-images",
    "500",
    "--inference-repeats",
    "1",
    "--profile-batches",
    "2",
    "--matmul-size",
    "512",
    "--matmul-repeats",
    "2",
]
ENGINE_KEYS = {
    "epoch_seconds",
    "batch_ms_median",
    "inference_images_per_second",
    "peak_rss_mib",
    "peak_rss_training_mib",
    "minor_faults_training",
    "minor_faults_per_batch",
}


@pytest.fixture(scope="module")
def result(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("bench") / "bench_train.json"
    data = "mnist" if (DATA_DIR / "mnist" / "train-images-idx3-ubyte.gz").exists() else "random"
    env = {**os.environ, "CNNLAB_DATA_DIR": str(DATA_DIR)}
    done = subprocess.run(
        [sys.executable, str(SCRIPT), *TINY, "--data", data, "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "saved" in done.stdout and "conv2d" in done.stdout  # the tables were printed
    return json.loads(out.read_text())


def test_engines_have_positive_figures(result: dict) -> None:
    for engine in ("numpy", "torch"):
        figures = result[engine]
        assert ENGINE_KEYS <= figures.keys(), ENGINE_KEYS - figures.keys()
        assert figures["epoch_seconds"] > 0 and figures["peak_rss_mib"] > 50
        assert figures["peak_rss_mib"] >= figures["peak_rss_training_mib"] > 0
        assert set(figures["inference_images_per_second"]) == {"batch_1000", "batch_128"}
        assert all(v > 0 for v in figures["inference_images_per_second"].values())


def test_ratios_are_numpy_over_torch(result: dict) -> None:
    numpy_figures, torch_figures = result["numpy"], result["torch"]
    assert math.isclose(
        result["ratio_numpy_to_torch"],
        numpy_figures["epoch_seconds"] / torch_figures["epoch_seconds"],
    )
    assert math.isclose(
        result["ratio_numpy_to_torch_from_p10"],
        numpy_figures["epoch_seconds_from_p10"] / torch_figures["epoch_seconds_from_p10"],
    )
    assert math.isclose(
        result["peak_rss_ratio_numpy_to_torch"],
        numpy_figures["peak_rss_mib"] / torch_figures["peak_rss_mib"],
    )
    for key, value in result["inference_ratio_numpy_to_torch"].items():
        expected = (
            numpy_figures["inference_images_per_second"][key]
            / torch_figures["inference_images_per_second"][key]
        )
        assert math.isclose(value, expected)
    per_round = [
        n / t
        for n, t in zip(
            numpy_figures["epoch_seconds_per_round"], torch_figures["epoch_seconds_per_round"]
        )
    ]
    assert result["ratio_per_round"] == pytest.approx(per_round) and len(per_round) == 1
    assert math.isclose(result["ratio_numpy_to_torch_paired"], per_round[0])
    assert result["ratio_target"] == 1.0 and result["ratio_goal"] == 0.75
    assert set(result["targets_met"]) == {
        "epoch_ratio",
        "epoch_ratio_goal",
        "inference",
        "peak_rss",
    }


def test_blas_floor_from_the_layer_shapes(result: dict) -> None:
    flops = result["flops"]
    assert math.isclose(
        flops["forward_per_image"], 4_881_920
    )  # conv1 0.39 M + conv2 4.46 M + dense 0.03 M
    assert math.isclose(
        flops["backward_per_image"], 9_374_464
    )  # kernel grads + input grads but conv1's
    floor = result["blas_floor"]
    assert floor["matmul"]["gflops_best"] > 0 and floor["epoch_seconds"] > 0
    assert math.isclose(
        floor["epoch_seconds"], flops["train_epoch"] / floor["matmul"]["gflops_best"] / 1e9
    )
    assert math.isclose(
        floor["share_of_numpy_epoch"], floor["epoch_seconds"] / result["numpy"]["epoch_seconds"]
    )
    assert len(floor["seed_cnn_gemms"]) == 8  # 3 layers x (forward, kernel grad) + 2 input grads


def test_profile_has_every_step_and_the_optimizer(result: dict) -> None:
    """One row per step of Sequential (each conv-pool pair fused: engine/fused.py)."""
    rows = {row["name"]: row for row in result["profile"]["rows"]}
    assert [(row["name"], row["class"]) for row in result["profile"]["rows"]][:7] == [
        ("conv2d+max_pooling2d", "ConvThenPool"),
        ("conv2d_1+max_pooling2d_1", "ConvThenPool"),
        ("flatten", "Flatten"),
        ("dropout", "Dropout"),
        ("dense", "Dense"),
        ("loss", "CategoricalCrossentropy"),
        ("optimizer", "Adam"),
    ]
    assert rows["optimizer"]["backward_ms"] > 0 and result["profile"]["train_step_ms"] > 0
    assert all(row["forward_ms"] >= 0 and row["backward_ms"] >= 0 for row in rows.values())
    assert all(
        rows[name]["forward_ms"] > 0 and rows[name]["backward_ms"] > 0
        for name in rows
        if name.startswith("conv2d")
    )


def test_settings_and_environment_are_recorded(result: dict) -> None:
    assert result["settings"]["threads"] == 1 and result["settings"]["batches"] == 3
    assert result["environment"]["torch_threads"] == 1
    assert result["environment"]["thread_variables"]["OPENBLAS_NUM_THREADS"] == "1"
    assert isinstance(result["environment"]["malloc"], dict)
    assert len(result["load_average_start"]) == 3 and len(result["load_average_end"]) == 3
    assert result["command"].startswith("python benchmarks/bench_train.py")
    noise = result["noise"]
    assert noise["cores"] >= 1 and isinstance(noise["trustworthy"], bool)
    assert (
        set(noise["batch_p90_over_p10"]) == {"numpy", "torch"}
        and min(noise["batch_p90_over_p10"].values()) >= 1
    )


AB_SCRIPT = REPO / "benchmarks" / "ab_engine.py"


def run_benchmark(script: Path, args: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run a benchmark script as a user would, from the repository root, on DATA_DIR."""
    return subprocess.run(
        [sys.executable, str(script), *args],
        cwd=REPO,
        env={**os.environ, "CNNLAB_DATA_DIR": str(DATA_DIR)},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def test_ab_engine_times_two_versions_of_the_engine(tmp_path: Path) -> None:
    """The A/B script loads HEAD's engine and the working tree's side by side and times both."""
    if subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, check=False
    ).returncode:
        pytest.skip("not a git checkout")
    out = tmp_path / "ab.json"
    if not (DATA_DIR / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("MNIST is not in the data directory")
    settings = ["--rounds", "2", "--per-turn", "2", "--threads", "1", "--out", str(out)]
    done = run_benchmark(AB_SCRIPT, ["HEAD", "worktree", *settings], timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [row["version"] for row in result["versions"]] == ["HEAD", "worktree"]
    assert result["versions"][0]["ratio_to_first"] == 1.0
    assert all(row["step_ms_median"] > 0 for row in result["versions"])
    assert math.isclose(
        result["versions"][1]["ratio_to_first"],
        result["versions"][1]["step_ms_median"] / result["versions"][0]["step_ms_median"],
    )
    assert "worktree" in done.stdout and "saved" in done.stdout


def test_ab_engine_times_the_cifar10_network_on_noise(tmp_path: Path) -> None:
    """--network cifar10-cnn: bench_keras_models.py's CIFAR-10 CNN, batch 32, on random images
    (CIFAR-10 itself need not be on the machine)."""
    if subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, check=False
    ).returncode:
        pytest.skip("not a git checkout")
    out = tmp_path / "ab.json"
    settings = ["--network", "cifar10-cnn", "--rounds", "2", "--per-turn", "2", "--threads", "1"]
    done = run_benchmark(AB_SCRIPT, ["worktree", *settings, "--out", str(out)], timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["settings"]["network"] == "cifar10-cnn" and result["settings"]["batch_size"] == 32
    assert result["versions"][0]["step_ms_median"] > 0


def test_ab_engine_names_a_revision_it_cannot_read(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, str(AB_SCRIPT), "no-such-revision", "--out", str(tmp_path / "ab.json")],
        cwd=REPO,
        env={**os.environ, "CNNLAB_DATA_DIR": str(DATA_DIR)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "cannot read src/cnnlab/engine at 'no-such-revision'" in done.stderr
    assert not (tmp_path / "ab.json").exists()


STUDY_SCRIPT = REPO / "benchmarks" / "bench_study.py"


@pytest.mark.slow
def test_bench_study_times_the_study_both_ways_and_reports_the_median_ratio(tmp_path: Path) -> None:
    if not (DATA_DIR / "mnist" / "train-images-idx3-ubyte.gz").exists():
        pytest.skip("MNIST is not in the data directory")
    out = tmp_path / "bench_study.json"
    done = run_benchmark(
        STUDY_SCRIPT, ["--train-size", "200", "--rounds", "2", "--out", str(out)], timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    for name in ("sequential", "two_workers", "sequential_one_blas_thread"):
        assert len(result[name]) == 2 and all(
            run["seconds"] > 0 and len(run["trial_seconds"]) == 8 for run in result[name]
        )
    assert result["two_workers"][0]["blas_threads"] == [max(1, result["cores"] // 2)]
    assert result["sequential_one_blas_thread"][0]["blas_threads"] == [1]
    ratios = [
        p["seconds"] / s["seconds"] for p, s in zip(result["two_workers"], result["sequential"])
    ]
    assert result["ratios_by_round"] == pytest.approx(ratios)
    assert math.isclose(
        result["ratio_two_workers_to_sequential"], sum(ratios) / 2
    )  # the median of two
    trial = result["median_trial_seconds"]
    assert math.isclose(
        result["amdahl_bound"], trial["sequential_one_blas_thread"] / (2 * trial["sequential"])
    )
    assert (
        result["same_accuracies_at_same_threads"] is True
    )  # one BLAS thread in a worker or in the driver: same numbers
    assert (
        result["two_workers_all_blas_threads"] is None and 0 < result["capacity"]["capacity_ratio"]
    )
    assert result["trustworthy"] == (not result["untrustworthy_because"])
    spread = max(ratios) > 1.15 * min(ratios)
    assert spread == any(
        "rounds' ratios differ" in reason for reason in result["untrustworthy_because"]
    )
    assert ("trustworthy run" in done.stdout) == result["trustworthy"]
    assert "ratio" in done.stdout and "Amdahl bound" in done.stdout


def test_bench_keras_models_runs_and_its_ratios_are_its_quotients(tmp_path: Path) -> None:
    """benchmarks/bench_keras_models.py on two tiny rounds: every figure there, ratios the
    quotients."""
    out = tmp_path / "bench_keras_models.json"
    script = REPO / "benchmarks" / "bench_keras_models.py"
    done = subprocess.run(
        [
            sys.executable,
            str(script),
            "--rounds",
            "2",
            "--steps",
            "2",
            "--warmup",
            "1",
            "--threads",
            "1",
            "--networks",
            "seed-cnn-bn",
            "cifar10-cnn",
            "--tuned-malloc",
            "--out",
            str(out),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(out.read_text())
    assert [row["network"] for row in result["networks"]] == ["seed-cnn-bn", "cifar10-cnn"]
    assert result["malloc"]["MALLOC_MMAP_THRESHOLD_"] == "33554432"  # the children's settings
    blas = result["blas"]  # the kernels NumPy's BLAS runs, and what in the environment chose them
    assert blas["kernels"] and set(blas["environment"]) == {"OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE"}
    assert "NumPy's BLAS: " in done.stdout
    for row in result["networks"]:
        assert len(row["rounds"]) == 2 and row["steps_per_epoch"] in (422, 1563)
        assert row["minor_page_faults_per_step"] >= 0
        for round_ in row["rounds"]:
            assert round_["numpy"] > 0 and round_["torch"] > 0
            assert math.isclose(round_["ratio"], round_["numpy"] / round_["torch"])
        assert row["network"] in done.stdout


def test_bench_busy_runs_and_its_ratios_are_its_quotients(tmp_path: Path) -> None:
    """benchmarks/bench_busy.py at its smallest: both networks, quiet and with a core taken."""
    if not (DATA_DIR / "mnist").is_dir():
        pytest.skip("needs MNIST in the data directory")
    out = tmp_path / "bench_busy.json"
    settings = ["--steps", "3", "--epochs", "1", "--digits-epochs", "1", "--out", str(out)]
    done = run_benchmark(REPO / "benchmarks" / "bench_busy.py", settings, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    networks = json.loads(out.read_text())["networks"]
    assert set(networks) == {"seed-cnn on MNIST", "seed-cnn-same on digits"}
    for row in networks.values():
        quiet, loaded = row["quiet"], row["one_core_busy"]
        assert min(*quiet.values(), *loaded.values()) > 0
        assert math.isclose(row["engine_loaded_over_quiet"], loaded["engine"] / quiet["engine"])
        assert math.isclose(row["engine_over_torch_loaded"], loaded["engine"] / loaded["torch"])


def test_the_blas_line_says_when_the_environment_chose_the_kernels(monkeypatch) -> None:
    """benchmarks/blas_info.py: the kernels threadpoolctl reports, and the variables that chose
    them named in the printed line (a machine may set them; a learner's has none)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    import blas_info

    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    monkeypatch.delenv("OPENBLAS_L2_SIZE", raising=False)
    info = blas_info.blas_kernels()
    assert info["environment"] == {"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": None}
    assert info["library"] == "openblas" and info["kernels"]
    line = blas_info.describe(info)
    assert "as the environment chose (OPENBLAS_CORETYPE=Haswell)" in line
    assert "unset OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE" in line
    chosen_by_openblas = {**info, "environment": dict.fromkeys(blas_info.VARIABLES)}
    assert blas_info.describe(chosen_by_openblas).endswith(f"{info['kernels']} kernels")
