"""Layers with hand-written forward and backward passes (Keras 3 names and arguments).

``base`` holds the lifecycle every layer follows and the registry; each other module holds
one family, as Keras groups them. A layer class decorated with ``@register`` is known to
configs, saved models, the reference twins, the CLI and ``cnnlab.keras.layers``.
"""

from .activations import LeakyReLU, ReLU, Softmax
from .base import (
    LAYER_CLASSES,
    MODEL_CLASSES,
    Input,
    InputLayer,
    Layer,
    Shape,
    as_pair,
    check_padding,
    clear_session,
    deserialize,
    register,
    register_model,
    snake_case,
    unique_name,
)
from .convolutional import Conv2D
from .core import Activation, Dense, Dropout, Flatten
from .global_pooling import GlobalAveragePooling2D, GlobalMaxPooling2D, GlobalPooling2D
from .merging import Add, Concatenate
from .normalization import BatchNormalization
from .pooling import AveragePooling2D, MaxPooling2D, Pooling2D
from .preprocessing import Rescaling
from .reshaping import Reshape, ZeroPadding2D

__all__ = [
    "LAYER_CLASSES",
    "MODEL_CLASSES",
    "register_model",
    "Activation",
    "Add",
    "Concatenate",
    "AveragePooling2D",
    "Conv2D",
    "Dense",
    "Dropout",
    "Flatten",
    "Input",
    "InputLayer",
    "Layer",
    "MaxPooling2D",
    "Pooling2D",
    "Shape",
    "as_pair",
    "check_padding",
    "clear_session",
    "deserialize",
    "register",
    "snake_case",
    "unique_name",
    "BatchNormalization",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "GlobalPooling2D",
    "LeakyReLU",
    "ReLU",
    "Rescaling",
    "Reshape",
    "Softmax",
    "ZeroPadding2D",
]
