"""Which kernels NumPy's BLAS runs, for every benchmark's output.

Some machines of this project set ``OPENBLAS_CORETYPE`` (and ``OPENBLAS_L2_SIZE``) in their
environment, because older OpenBLAS builds compute wrong results or crash on their processors.
A current NumPy's OpenBLAS then runs older kernels than the CPU has: on this project's machines
Haswell's (AVX2) instead of the SkylakeX (AVX-512) ones it picks by itself, about half the
float32 GFLOP/s (180-226 against 350-410 at the seed and CIFAR-10 CNNs' shapes). A learner's
machine has no such setting, and PyTorch's own libraries are not affected by it. So every
benchmark records the kernels in use and says when the environment chose them; the README's
figures are taken with both variables unset for that one command:

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE python benchmarks/bench_keras_models.py

(tests and CI leave both as the machine sets them).
"""

from __future__ import annotations

import os
from typing import Any

VARIABLES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")


def blas_kernels() -> dict[str, Any]:
    """NumPy's BLAS as threadpoolctl sees it in this process (NumPy is imported here if it was
    not yet), and the variables of the environment that chose its kernels."""
    import numpy  # noqa: F401 - loads the BLAS that threadpoolctl then describes
    from threadpoolctl import threadpool_info

    found = [info for info in threadpool_info() if info.get("user_api") == "blas"]
    numpys = [info for info in found if "numpy" in info.get("filepath", "")]  # SciPy has its own
    blas = (numpys or found or [{}])[0]
    return {
        "library": blas.get("internal_api"),
        "version": blas.get("version"),
        "kernels": blas.get("architecture"),
        "environment": {name: os.environ.get(name) for name in VARIABLES},
    }


def describe(info: dict[str, Any]) -> str:
    """One line for a benchmark's output."""
    line = f"NumPy's BLAS: {info['library']} {info['version']}, {info['kernels']} kernels"
    chosen = {name: value for name, value in info["environment"].items() if value is not None}
    if chosen:
        settings = " ".join(f"{name}={value}" for name, value in chosen.items())
        line += (
            f", as the environment chose ({settings}); unset "
            f"{' and '.join(VARIABLES)} for the kernels OpenBLAS picks for this CPU"
        )
    return line
