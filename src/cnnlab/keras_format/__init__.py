"""Keras 3's model file (``.keras``) for cnnlab models, both ways; legacy Keras 2 ``.h5`` files
read.

A ``.keras`` file is a zip archive of three members (keras/src/saving/saving_lib.py):

- ``metadata.json``: ``{"keras_version": ..., "date_saved": ...}``;
- ``config.json``: the model as ``serialize_keras_object`` writes it, ``{"module", "class_name",
  "config", "registered_name", "build_config", "compile_config"}``, each layer in the same form;
  a functional model's layers add ``"name"`` and ``"inbound_nodes"``, one ``{"args", "kwargs"}``
  per call whose tensors are ``{"class_name": "__keras_tensor__", "config": {"keras_history":
  [layer, node, tensor], ...}}``;
- ``model.weights.h5``: one group per layer, named by its *class* in snake case and numbered in
  the model's layer order (``layers/conv2d/vars/0`` the kernel, ``.../1`` the bias,
  ``layers/conv2d_1/...``), nested models inside (``layers/sequential/layers/dense/vars/0``), the
  optimizer's variables in ``optimizer/vars/0..`` (iterations, learning rate, then its slots).

cnnlab's configs already use Keras's argument names, so the translation is mostly wrapping and
unwrapping; the engine validates what it receives and refuses (``UnsupportedKerasFeature``) any
argument it does not implement. A layer's weights are its ``weights_dict()`` in Keras's order.

A legacy ``.h5`` file (Keras 2, or Keras 3's ``model.save("m.h5")``) holds the config as the
attribute ``model_config``, the weights under ``model_weights/<layer>/`` in the order of each
group's ``weight_names`` attribute, and the compile settings in ``training_config``.

Files are read with bounded sizes (the JSON members are size-checked, every weight's stored
shape is compared with the shape the config implies before it is read) and without following
links inside the HDF5 file; they are written atomically (a temporary file, then a rename).

The package, by role: ``common`` (layout constants, names), ``config_out`` (cnnlab -> Keras
config), ``config_in`` (Keras -> cnnlab config), ``weights`` (``model.weights.h5`` both ways),
``compiling`` (compile settings and optimizer variables read back), ``keras_file`` (the zip:
``save_keras``, ``load_keras``, ``register``) and ``legacy_h5``.
"""

from .common import KERAS_FORMAT_VERSION
from .config_out import keras_loss, to_keras_config
from .keras_file import load_keras, register, save_keras

__all__ = [
    "KERAS_FORMAT_VERSION",
    "keras_loss",
    "load_keras",
    "register",
    "save_keras",
    "to_keras_config",
]
