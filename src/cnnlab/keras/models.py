"""keras.models: ``Sequential``, ``Model`` (the functional API), ``load_model``, ``clone_model``.

The classes are the engine's (``cnnlab.engine``: ``Model`` in model.py, ``Sequential`` in
sequential.py). ``cnnlab.models`` is another thing: cnnlab's built-in model configs.
"""

from __future__ import annotations

from typing import Any

from cnnlab.keras.namespace import keras_module

KERAS_NAMES = ("Model", "Sequential", "load_model", "save_model", "clone_model", "model_from_json")


def clone_model(model: Any) -> Any:
    """A new model of the same architecture with fresh weights (keras.models.clone_model)."""
    return type(model).from_config(model.get_config())


def resolve_models() -> dict[str, Any]:
    """The Keras model names the engine defines; ``clone_model`` from get_config/from_config
    otherwise."""
    import cnnlab.engine as engine

    names = {name: getattr(engine, name) for name in KERAS_NAMES if hasattr(engine, name)}
    names.setdefault("clone_model", clone_model)
    return names


__getattr__, __dir__ = keras_module(__name__, "keras.models", resolve_models, "model names")
