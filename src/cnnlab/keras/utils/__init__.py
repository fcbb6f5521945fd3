"""keras.utils: ``to_categorical``, ``set_random_seed``, ``np_utils`` (Keras 2), ``clear_session``.

``plot_model`` exists so that programs importing it run; calling it fails with one line.
"""

from __future__ import annotations

from typing import Any

from cnnlab.engine.errors import UnsupportedKerasFeature
from cnnlab.keras.namespace import keras_module


def plot_model(model: Any, *args: Any, **kwargs: Any) -> None:
    """Refused: cnnlab draws no model graphs (``model.summary()`` prints the layers)."""
    raise UnsupportedKerasFeature(
        "keras.utils.plot_model is not supported by cnnlab; use model.summary()"
    )


def resolve_utils() -> dict[str, Any]:
    """The small Keras utilities of ``cnnlab.utils``, and those above."""
    from cnnlab import utils
    from cnnlab.keras.backend import clear_session

    return {
        **{name: getattr(utils, name) for name in utils.__all__},
        "clear_session": clear_session,
        "plot_model": plot_model,
    }


__getattr__, __dir__ = keras_module(__name__, "keras.utils", resolve_utils, "utils")
