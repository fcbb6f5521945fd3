"""keras.utils.np_utils (Keras 2): ``to_categorical``."""

from __future__ import annotations

from cnnlab.utils import to_categorical

__all__ = ["to_categorical"]
