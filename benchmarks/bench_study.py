"""Study throughput: 8 equal trials in 2 worker processes against one after another.

    CNNLAB_DATA_DIR=../shared/data python benchmarks/bench_study.py [--train-size 1500]

The 8 trials are the seed CNN on the first --train-size MNIST images, 1 epoch, seeds 0..7
(one configuration, 8 repeats: equal work). Four runs, each into a fresh SQLite file:
  sequential                 --jobs 1: in this process, BLAS with all cores (the default)
  sequential, 1 BLAS thread  --jobs 1 --threads 1
  2 workers                  --jobs 2: spawned workers, cores // 2 BLAS threads each (the default)
  2 workers, all BLAS        --jobs 2 --threads CORES: every worker may use all cores (oversubscribed)
Times are wall clock of the whole study, worker start-up included. Prints them and the
ratio (target: 2 workers <= 0.65 x sequential) and writes benchmarks/results/bench_study.json.

On a shared machine the ratio says as much about the other jobs as about cnnlab, so the
benchmark first measures what two processes can gain at all: the same one-thread NumPy
loop in one process, then in two at once ("capacity ratio": 0.5 on two idle cores, 1.0
when only one core is free). Compare the study's ratio with it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from cnnlab.study import parse_spec
from cnnlab.study.runners import LocalRunner, available_cores, open_store, prepare_data, run_study

SPEC = """
name = "bench-study"
model = "seed-cnn"
repeats = 8
[training]
dataset = "mnist"
epochs = 1
batch_size = 64
train_size = {train_size}
test_size = 500
[axes]
"max_pooling2d.pool_size" = [2]
"""


def timed_study(runner: LocalRunner, spec_text: str, folder: Path) -> dict:
    """Run the whole study with ``runner`` into a new database; wall seconds and per-trial facts."""
    spec = parse_spec(spec_text, "bench-study.toml")
    data, settings = prepare_data(spec)
    start = time.perf_counter()
    with open_store(spec, folder / f"{time.time_ns()}.sqlite") as store:
        counts = run_study(spec, store, runner, data, settings, Console(stderr=True, quiet=True))
        trials = store.trials()
    seconds = time.perf_counter() - start
    assert counts["done"] == 8, counts
    return {"seconds": seconds, "runner": runner.describe(), "trial_seconds": [t["seconds"] for t in trials],
            "blas_threads": sorted({t["blas_threads"] for t in trials}), "accuracies": [t["metrics"]["test_accuracy"] for t in trials]}


CAPACITY_PROBE = """
import time, numpy as np
x = np.random.default_rng(0).random((400, 400), dtype=np.float32)
start = time.perf_counter()
for _ in range(300):
    x @ x
print(time.perf_counter() - start)
"""


def capacity_ratio() -> dict:
    """Wall time of 2 units of one-thread NumPy work in 2 processes at once, over 2 x 1 unit alone."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CAPACITY_PROBE], env=env, check=True, capture_output=True)
    one = time.perf_counter() - start
    start = time.perf_counter()
    probes = [subprocess.Popen([sys.executable, "-c", CAPACITY_PROBE], env=env, stdout=subprocess.DEVNULL) for _ in range(2)]
    for probe in probes:
        probe.wait()
    two = time.perf_counter() - start
    return {"one_process_seconds": one, "two_processes_seconds": two, "capacity_ratio": two / (2 * one)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train-size", type=int, default=1500)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "bench_study.json"))
    args = parser.parse_args()
    spec_text = SPEC.format(train_size=args.train_size)
    cores = available_cores()
    with tempfile.TemporaryDirectory() as folder:
        load_before = os.getloadavg()
        capacity = capacity_ratio()
        sequential = timed_study(LocalRunner(1), spec_text, Path(folder))
        sequential_one = timed_study(LocalRunner(1, threads=1), spec_text, Path(folder))
        parallel = timed_study(LocalRunner(2), spec_text, Path(folder))
        unlimited = timed_study(LocalRunner(2, threads=cores), spec_text, Path(folder))
        load_after = os.getloadavg()
    ratio = parallel["seconds"] / sequential["seconds"]
    result = {"sequential": sequential, "sequential_one_blas_thread": sequential_one, "two_workers": parallel,
              "two_workers_all_blas_threads": unlimited, "ratio_two_workers_to_sequential": ratio,
              "ratio_two_workers_to_sequential_one_thread": parallel["seconds"] / sequential_one["seconds"],
              "ratio_oversubscribed_to_sequential": unlimited["seconds"] / sequential["seconds"], "target_ratio": 0.65,
              "capacity": capacity, "same_accuracies_at_same_threads": sequential_one["accuracies"] == parallel["accuracies"],
              "cores": cores, "load_average_before": load_before, "load_average_after": load_after,
              "machine": platform.processor() or platform.machine(), "train_size": args.train_size,
              "command": f"CNNLAB_DATA_DIR=../shared/data python benchmarks/bench_study.py --train-size {args.train_size}"}
    print(f"8 equal trials ({cores} cores): one after another {sequential['seconds']:.1f} s "
          f"({sequential_one['seconds']:.1f} s with 1 BLAS thread); 2 workers {parallel['seconds']:.1f} s "
          f"(BLAS threads per worker {parallel['blas_threads']}); ratio {ratio:.2f} (target <= 0.65), "
          f"{result['ratio_two_workers_to_sequential_one_thread']:.2f} against 1 BLAS thread; "
          f"2 workers oversubscribed ({cores} BLAS threads each) {unlimited['seconds']:.1f} s; "
          f"capacity ratio of this machine now {capacity['capacity_ratio']:.2f} (0.5 = two free cores)")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
