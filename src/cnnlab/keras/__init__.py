"""cnnlab.keras: Keras 3's public module tree, mapped onto cnnlab's NumPy engine.

``from cnnlab.keras.layers import Conv2D``, ``import cnnlab.keras.optimizers``,
``cnnlab.keras.Sequential``: each module of the tree is a real module whose names are looked
up in the engine's registries and modules when first used (``cnnlab.keras.namespace``), so
nothing here is a second implementation or a hand-kept copy of the engine's lists. Under
``cnnlab run`` the import hook (``cnnlab.keras_run``) makes ``keras``, ``tensorflow.keras``
and ``tf.keras`` these same module objects.

Modules: activations, backend, callbacks, config, datasets (mnist, fashion_mnist, cifar10),
initializers, layers (and the Keras 2 paths layers.core, .convolutional, .pooling), losses,
metrics, models, optimizers (and optimizers.legacy), regularizers (none supported), utils (and
utils.np_utils). A Keras name cnnlab does not have fails with one line
(``cnnlab.engine.errors.UnsupportedKerasFeature``) naming it and what is supported.
"""

from __future__ import annotations

from typing import Any

from cnnlab import __version__ as cnnlab_version
from cnnlab.connect import connect_engine
from cnnlab.keras.namespace import keras_module

# model.save("m.keras") and load_model("m.keras" | "m.h5") speak Keras's format; BLAS threads
connect_engine()

# What programs print as keras.__version__: the Keras API level cnnlab follows, and cnnlab's own
# version.
__version__ = f"3.0.0+cnnlab.{cnnlab_version}"


def version() -> str:
    """``__version__`` (keras.version())."""
    return __version__


TOP_LEVEL = {  # keras.<name> -> (cnnlab.keras module, attribute)
    "Sequential": ("cnnlab.keras.models", "Sequential"),
    "Model": ("cnnlab.keras.models", "Model"),
    "Input": ("cnnlab.keras.layers", "Input"),
    "Layer": ("cnnlab.keras.layers", "Layer"),
    "Loss": ("cnnlab.keras.losses", "Loss"),
    "Optimizer": ("cnnlab.keras.optimizers", "Optimizer"),
    "Metric": ("cnnlab.keras.metrics", "Metric"),
}


def resolve_top_level() -> dict[str, Any]:
    """The classes Keras exports at its top level, from the modules that hold them (lazily)."""
    import importlib

    names: dict[str, Any] = {"version": version}
    for name, (module, attribute) in TOP_LEVEL.items():
        if attribute in importlib.import_module(module).__all__:
            names[name] = getattr(importlib.import_module(module), attribute)
    return names


__getattr__, __dir__ = keras_module(__name__, "keras", resolve_top_level, "names")
