"""Study throughput: 8 equal trials in 2 worker processes against one after another.

    CNNLAB_DATA_DIR=../shared/data python benchmarks/bench_study.py --train-size 6000 [--rounds 3]

The 8 trials are the seed CNN on the first --train-size MNIST images, 1 epoch, seeds 0..7
(one configuration, 8 repeats: equal work). Each round runs the whole study three ways,
each into a fresh SQLite file:
  sequential                 --jobs 1: in this process, BLAS with all cores (the default)
  2 workers                  --jobs 2: spawned workers, cores // 2 BLAS threads each (the default)
  sequential, 1 BLAS thread  --jobs 1 --threads 1
Rounds alternate the order of the first two, so a change in the machine's speed falls on
both alike; the ratio reported is the median of the rounds' ratios (target: 2 workers <=
0.65 x sequential). Times are wall clock of the whole study: worker start-up, scoring and
recording included (scikit-learn, with which the driver scores, is imported before the
first run, so that no run pays for it). --oversubscribed adds a run with every worker
allowed all cores' BLAS threads, to show why cnnlab limits them (slow: OpenBLAS threads
spin for each other).

Two figures say what this machine allows:
- capacity ratio: the same one-thread NumPy loop in one process, then in two at once
  (0.5 on two idle cores, 1.0 when only one core is free);
- Amdahl bound: (median 1-BLAS-thread trial) / (2 x median sequential trial). A sequential
  trial uses the second core only inside its GEMMs; two workers use it all the time, but
  each trial runs on one core. With no start-up, scoring or memory contention at all, two
  workers would take this fraction of the sequential time.
The capacity ratio is measured before and after the rounds; a run is marked not
trustworthy when either is above 0.6 or the rounds' ratios differ by more than 15%: then
other work on the machine, not cnnlab, decided the figures.
With --busy, another process keeps one core busy for the whole run (as bench_busy.py does), and
the question is the other target of issue 16: a study never runs slower per trial than one
trial after another on the same busy machine (2 workers / sequential <= 1.0). The capacity
ratio then shows the load instead of disqualifying the run.
Writes benchmarks/results/bench_study.json (bench_study_busy.json with --busy).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_busy import one_core_busy
from blas_info import blas_kernels, describe
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
    data = prepare_data(spec)
    start = time.perf_counter()
    with open_store(spec, folder / f"{time.time_ns()}.sqlite") as store:
        counts = run_study(spec, store, runner, data, Console(stderr=True, quiet=True))
        trials = store.trials()
    seconds = time.perf_counter() - start
    assert counts["done"] == 8, counts
    return {
        "seconds": seconds,
        "runner": runner.describe(),
        "trial_seconds": [t["seconds"] for t in trials],
        "blas_threads": sorted({t["blas_threads"] for t in trials}),
        "accuracies": [t["metrics"]["test_accuracy"] for t in trials],
    }


CAPACITY_PROBE = """
import time, numpy as np
x = np.random.default_rng(0).random((400, 400), dtype=np.float32)
start = time.perf_counter()
for _ in range(300):
    x @ x
print(time.perf_counter() - start)
"""


def capacity_ratio() -> dict:
    """Wall time of 2 units of one-thread NumPy work in 2 processes at once, over 2 x 1 unit
    alone."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", CAPACITY_PROBE], env=env, check=True, capture_output=True)
    one = time.perf_counter() - start
    start = time.perf_counter()
    probes = [
        subprocess.Popen([sys.executable, "-c", CAPACITY_PROBE], env=env, stdout=subprocess.DEVNULL)
        for _ in range(2)
    ]
    for probe in probes:
        probe.wait()
    two = time.perf_counter() - start
    return {
        "one_process_seconds": one,
        "two_processes_seconds": two,
        "capacity_ratio": two / (2 * one),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--train-size", type=int, default=6000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--oversubscribed",
        action="store_true",
        help="also run 2 workers with all BLAS threads each",
    )
    parser.add_argument(
        "--busy", action="store_true", help="keep one core busy with another process throughout"
    )
    parser.add_argument("--out", default=None, help="default: results/bench_study[_busy].json")
    args = parser.parse_args()
    name = "bench_study_busy.json" if args.busy else "bench_study.json"
    args.out = args.out or str(Path(__file__).parent / "results" / name)
    with one_core_busy() if args.busy else contextlib.nullcontext():
        measure(args)


RUNNERS = ("sequential", "two_workers", "sequential_one_blas_thread")


def measure(args: argparse.Namespace) -> None:
    """The rounds, the figures, the printout and the JSON file."""
    importlib.import_module("cnnlab.metrics")  # scikit-learn, which the driver scores with
    runs, machine = run_rounds(args)
    result = {**summarize(args, runs, machine), "blas": blas_kernels()}
    print_summary(args, result)
    print(describe(result["blas"]))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"saved {args.out}")


def run_rounds(args: argparse.Namespace) -> tuple[dict[str, list[dict]], dict]:
    """Every round's three studies (the first two in alternating order); the machine's load and
    capacity before and after; the oversubscribed run when asked for."""
    spec_text, cores = SPEC.format(train_size=args.train_size), available_cores()
    runners = {
        "sequential": LocalRunner(1),
        "two_workers": LocalRunner(2),
        "sequential_one_blas_thread": LocalRunner(1, threads=1),
    }
    runs: dict[str, list[dict]] = {name: [] for name in RUNNERS}
    with tempfile.TemporaryDirectory() as folder:
        machine = {"load_average_before": os.getloadavg(), "capacity": capacity_ratio()}
        for index in range(args.rounds):
            first = ["sequential", "two_workers"][:: 1 if index % 2 == 0 else -1]
            for name in [*first, "sequential_one_blas_thread"]:
                runs[name].append(timed_study(runners[name], spec_text, Path(folder)))
                seconds = runs[name][-1]["seconds"]
                print(f"round {index + 1}/{args.rounds}: {name} {seconds:.1f} s", flush=True)
        machine["two_workers_all_blas_threads"] = (
            timed_study(LocalRunner(2, threads=cores), spec_text, Path(folder))
            if args.oversubscribed
            else None
        )
        machine["capacity_after"] = capacity_ratio()
        machine["load_average_after"] = os.getloadavg()
    return runs, machine


def ratios_to(runs: dict[str, list[dict]], baseline: str) -> list[float]:
    """Per round: the 2 workers' study time over the baseline's."""
    pairs = zip(runs["two_workers"], runs[baseline], strict=True)
    return [workers["seconds"] / other["seconds"] for workers, other in pairs]


def untrustworthy_because(args: argparse.Namespace, machine: dict, ratios: list[float]) -> list:
    """Why the figures may speak of other work on the machine rather than of cnnlab."""
    reasons = [
        f"capacity ratio {c['capacity_ratio']:.2f} {when}: other work held a core"
        for c, when in ((machine["capacity"], "before"), (machine["capacity_after"], "after"))
        if c["capacity_ratio"] > 0.6 and not args.busy
    ]
    if max(ratios) > 1.15 * min(ratios):
        spread = f"{min(ratios):.2f} to {max(ratios):.2f}"
        reasons.append(f"the rounds' ratios differ by more than 15% ({spread})")
    return reasons


def summarize(args: argparse.Namespace, runs: dict[str, list[dict]], machine: dict) -> dict:
    """bench_study.json: the runs, the ratios, the trial medians, the bound, the verdict."""
    ratios = ratios_to(runs, "sequential")
    trial = {
        name: statistics.median(t for run in done for t in run["trial_seconds"])
        for name, done in runs.items()
    }
    accuracies = {name: [run["accuracies"] for run in done] for name, done in runs.items()}
    reasons = untrustworthy_because(args, machine, ratios)
    return {
        **runs,
        **machine,
        "ratio_two_workers_to_sequential": statistics.median(ratios),
        "ratios_by_round": ratios,
        "ratio_two_workers_to_sequential_one_thread": statistics.median(
            ratios_to(runs, "sequential_one_blas_thread")
        ),
        "target_ratio": 1.0 if args.busy else 0.65,
        "one_core_busy": args.busy,
        "median_trial_seconds": trial,
        "median_study_seconds": {
            name: statistics.median(run["seconds"] for run in done) for name, done in runs.items()
        },
        "amdahl_bound": trial["sequential_one_blas_thread"] / (2 * trial["sequential"]),
        "trustworthy": not reasons,
        "untrustworthy_because": reasons,
        "same_accuracies_at_same_threads": all(
            a == accuracies["sequential_one_blas_thread"][0]
            for a in accuracies["two_workers"] + accuracies["sequential_one_blas_thread"]
        ),
        "cores": available_cores(),
        "rounds": args.rounds,
        "machine": platform.processor() or platform.machine(),
        "train_size": args.train_size,
        "command": "CNNLAB_DATA_DIR=../shared/data python benchmarks/bench_study.py --train-size "
        f"{args.train_size} --rounds {args.rounds}" + (" --busy" if args.busy else ""),
    }


def print_summary(args: argparse.Namespace, result: dict) -> None:
    seconds, trial = result["median_study_seconds"], result["median_trial_seconds"]
    print(
        f"8 equal trials ({result['cores']} cores), medians of {args.rounds} rounds: one after "
        f"another {seconds['sequential']:.1f} s ({seconds['sequential_one_blas_thread']:.1f} s "
        f"with 1 BLAS thread); 2 workers {seconds['two_workers']:.1f} s"
    )
    busy = ", one core busy" if args.busy else ""
    print(
        f"ratio {result['ratio_two_workers_to_sequential']:.2f} (target <= "
        f"{result['target_ratio']:.2f}{busy}; rounds "
        f"{', '.join(f'{r:.2f}' for r in result['ratios_by_round'])}), "
        f"{result['ratio_two_workers_to_sequential_one_thread']:.2f} against 1 BLAS thread"
    )
    print(
        f"median trial: {trial['sequential']:.2f} s sequential, "
        f"{trial['sequential_one_blas_thread']:.2f} s with 1 BLAS thread, "
        f"{trial['two_workers']:.2f} s in a worker; Amdahl bound {result['amdahl_bound']:.2f}; "
        f"capacity ratio {result['capacity']['capacity_ratio']:.2f} (0.5 = two free cores); "
        f"same accuracies at the same thread count: {result['same_accuracies_at_same_threads']}"
    )
    reasons = result["untrustworthy_because"]
    print("trustworthy run" if not reasons else "NOT trustworthy: " + "; ".join(reasons))
    if result["two_workers_all_blas_threads"]:
        oversubscribed = result["two_workers_all_blas_threads"]["seconds"]
        threads = result["cores"]
        print(f"2 workers oversubscribed ({threads} BLAS threads each): {oversubscribed:.1f} s")


if __name__ == "__main__":
    main()
