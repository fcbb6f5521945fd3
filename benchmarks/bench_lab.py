"""Speed of `cnnlab lab` on the real server (issue 17's targets), saved with the other benchmarks.

    python benchmarks/bench_lab.py [--repeats 20] [--seconds 5]

Runs ``python -m cnnlab.lab.measure``: playground updates per second for the ring-band model
(target >= 10), the seed CNN's feature maps for one drawn image (target < 100 ms), the first page
load in Chromium (target < 1 s). Writes benchmarks/results/bench_lab.json.
"""

from __future__ import annotations

import sys
from pathlib import Path

from cnnlab.lab.measure import main

if __name__ == "__main__":
    out = Path(__file__).resolve().parent / "results" / "bench_lab.json"
    main([*sys.argv[1:], "--json", str(out)])
