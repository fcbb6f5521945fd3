"""Shared test settings: one BLAS thread, in this process and in the subprocesses tests start.

The tests use small matrices, where OpenBLAS's worker threads only cost time; on a small
machine shared with other work their spinning made the convolutions 10x slower.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
os.environ.update(ONE_THREAD)  # inherited by every subprocess a test starts
if os.environ.get(
    "CNNLAB_DATA_DIR"
):  # the README's relative ../shared/data must survive tests that chdir
    os.environ["CNNLAB_DATA_DIR"] = os.path.abspath(os.environ["CNNLAB_DATA_DIR"])


@pytest.fixture(autouse=True, scope="session")
def one_blas_thread() -> Iterator[None]:
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    with threadpool_limits(limits=1, user_api="blas"):
        yield
