"""The from-scratch engine: NumPy only, Keras 3 names and semantics.

Nothing here imports the rest of cnnlab; everything else may import this.
"""

from . import activations, callbacks, functional, initializers, layers, losses, optimizers
from .config import floatx, set_floatx, set_random_seed
from .layers import Input
from .model import Sequential, load_model

__all__ = [
    "Input", "Sequential", "activations", "callbacks", "floatx", "functional", "initializers",
    "layers", "load_model", "losses", "optimizers", "set_floatx", "set_random_seed",
]
