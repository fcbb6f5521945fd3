"""What the rest of cnnlab hands the NumPy-only engine: its extension points, filled once.

- ``.keras`` and ``.h5`` files for ``model.save`` / ``load_model`` (``cnnlab.keras_format``, h5py);
- the BLAS thread count for ``engine.threads.ThreadFitter`` (threadpoolctl).

``connect_engine()`` is called wherever a user reaches the engine through cnnlab: the lazy
``cnnlab.Sequential`` / ``Model`` / ``load_model``, ``cnnlab.keras`` and the command line.
"""

from __future__ import annotations

import functools


@functools.cache
def connect_engine() -> None:
    """Register the .keras format and the BLAS thread control with the engine (once)."""
    from cnnlab import keras_format
    from cnnlab.engine import threads

    keras_format.register()
    threads.set_blas_control(blas_threads, set_blas_threads)


@functools.cache
def blas_controller():  # noqa: ANN201 - threadpoolctl's ThreadpoolController, made on first use
    """threadpoolctl's view of the BLAS libraries loaded in this process (NumPy's OpenBLAS)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController().select(user_api="blas")


def blas_threads() -> int:
    """The BLAS thread count in force now (the largest, if several BLAS libraries are loaded)."""
    return max((lib.num_threads for lib in blas_controller().lib_controllers), default=1)


def set_blas_threads(count: int) -> None:
    for lib in blas_controller().lib_controllers:
        lib.set_num_threads(count)
