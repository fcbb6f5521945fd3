"""keras.layers: every layer in the engine's registry, with ``Input``, ``InputLayer`` and ``Layer``.

The names come from ``cnnlab.engine.layers.LAYER_CLASSES`` at each access: a layer class
decorated with ``@register`` appears here with no further edit. ``keras.layers.core``,
``.convolutional`` and ``.pooling`` (Keras 2 paths that tutorials still import) offer the same
names.
"""

from __future__ import annotations

from typing import Any

from cnnlab.keras.namespace import keras_module


def resolve_layers() -> dict[str, Any]:
    """``{class name: class}`` for every registered layer, and Input, InputLayer, Layer."""
    import cnnlab.engine  # noqa: F401 - every engine module, so that every @register has run
    from cnnlab.engine import layers

    return {
        **layers.LAYER_CLASSES,
        "Input": layers.Input,
        "InputLayer": layers.InputLayer,
        "Layer": layers.Layer,
    }


__getattr__, __dir__ = keras_module(__name__, "keras.layers", resolve_layers, "layers")
