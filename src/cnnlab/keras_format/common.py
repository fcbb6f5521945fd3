"""What both directions share: the constants of Keras's file layout, h5py imported on first
use, Keras's names (snake case, camel case) and how a model's class and node numbers are told."""

from __future__ import annotations

import re
from typing import Any

KERAS_FORMAT_VERSION = (
    "3.15.1"  # the Keras release whose file layout this writes (and is tested against)
)
MAX_JSON_BYTES = 64 * 2**20  # config.json / metadata.json larger than this are refused unread
MODEL_CLASSES = ("Sequential", "Functional", "Model")
FLOAT32_POLICY = {
    "module": "keras",
    "class_name": "DTypePolicy",
    "config": {"name": "float32"},
    "registered_name": None,
}


# Keras-only arguments cnnlab has no counterpart for; dropped when at these values (else refused).
KERAS_ONLY_DEFAULTS: dict[str, Any] = {
    "quantization_config": None,
    "optional": False,
    "sparse": False,
    "ragged": False,
    "activity_regularizer": None,
}


# The order of an optimizer's slot variables in Keras (after iterations and learning rate): one
# ``add_optimizer_variables`` call per group, each interleaving its slots weight by weight.
# Names are cnnlab's slot names; Keras calls SGD's "velocity" "momentum".
KERAS_SLOT_GROUPS: dict[str, list[tuple[str, ...]]] = {
    "sgd": [("velocity",)],
    "adam": [("momentum", "velocity"), ("velocity_hat",)],
    "adamw": [("momentum", "velocity"), ("velocity_hat",)],
    "rmsprop": [("velocity",)],
    "adagrad": [("accumulator",)],
    "adadelta": [("accumulated_grad", "accumulated_delta_var")],
}


def h5py_module():  # noqa: ANN201 - imported on first use: 60 ms that most commands never need
    import h5py

    return h5py


def keras_snake_case(name: str) -> str:
    """Keras's ``naming.to_snake_case``: Conv2D -> conv2d, ReLU -> re_lu (h5 group names)."""
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def camel_case(name: str) -> str:
    """glorot_uniform -> GlorotUniform, categorical_crossentropy -> CategoricalCrossentropy."""
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


def is_model(obj: Any) -> bool:
    """True for a cnnlab model (Sequential or functional), also when used as a layer."""
    return hasattr(obj, "layers") and hasattr(obj, "get_config") and hasattr(obj, "get_weights")


def model_class_name(model: Any) -> str:
    """ "Sequential" or "Functional", as Keras names the class of the model."""
    from cnnlab.engine.sequential import Sequential

    return "Sequential" if isinstance(model, Sequential) else "Functional"


def node_offset(spec: dict[str, Any]) -> int:
    """Keras counts a nested functional model's own graph as its node 0; its calls start at 1."""
    return 1 if spec["class_name"] in ("Functional", "Model") else 0
