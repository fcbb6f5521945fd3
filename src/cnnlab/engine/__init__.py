"""The from-scratch engine: NumPy only, Keras 3 names and semantics.

Nothing here imports the rest of cnnlab; everything else may import this.
"""

from . import activations, callbacks, functional, initializers, layers, losses, metrics, optimizers
from .config import floatx, set_floatx, set_random_seed
from .graph import Functional, KerasTensor
from .layers import Input
from .model import Model, load_model
from .sequential import Sequential

__all__ = [
    "Functional",
    "Input",
    "KerasTensor",
    "Model",
    "Sequential",
    "activations",
    "callbacks",
    "floatx",
    "functional",
    "initializers",
    "layers",
    "load_model",
    "losses",
    "metrics",
    "optimizers",
    "set_floatx",
    "set_random_seed",
]
