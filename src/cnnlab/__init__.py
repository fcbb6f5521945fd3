"""cnnlab: a laboratory for convolutional neural networks.

The engine (``cnnlab.engine``) is a from-scratch NumPy implementation behind a
Keras-compatible API, so a Keras program runs on cnnlab by changing its imports::

    from cnnlab import Sequential, Input, layers
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "Sequential": ("cnnlab.engine.sequential", "Sequential"),
    "Input": ("cnnlab.engine.layers", "Input"),
    "load_model": ("cnnlab.engine.model", "load_model"),
    "layers": ("cnnlab.engine.layers", None),
    "optimizers": ("cnnlab.engine.optimizers", None),
    "losses": ("cnnlab.engine.losses", None),
    "callbacks": ("cnnlab.engine.callbacks", None),
    "initializers": ("cnnlab.engine.initializers", None),
    # as `import keras` reads them (`import cnnlab as keras; keras.datasets.mnist`)
    "Model": ("cnnlab.keras.models", "Model"),
    "datasets": ("cnnlab.datasets", None),
    "utils": ("cnnlab.utils", None),
    "backend": ("cnnlab.keras.backend", None),
    "activations": ("cnnlab.keras.activations", None),
    "keras": ("cnnlab.keras", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    """Import the engine on first use, so that `cnnlab --help` and the datasets stay quick."""
    if name not in _LAZY:
        raise AttributeError(f"module 'cnnlab' has no attribute {name!r}")
    import importlib

    module_name, attribute = _LAZY[name]
    module = importlib.import_module(module_name)
    if name in ("Sequential", "Model", "load_model"):  # .keras files, the BLAS thread count
        importlib.import_module("cnnlab.connect").connect_engine()
    return module if attribute is None else getattr(module, attribute)
