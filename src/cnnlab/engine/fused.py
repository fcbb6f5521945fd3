"""Fused steps: two layers computed as one, with the same outputs and gradients as the layers
run one after the other, and less work.

``Sequential`` runs its layers through ``execution_steps``; each step has the layer interface
(``forward(x, training)``, ``backward(dy)``, and ``backward_linear`` where the last layer
has one). The layers keep their weights and gradients; a fused step only changes the order
of the arithmetic. The reasoning is in docs/backprop.md, section 5, and
tests/test_model.py checks every fused step against its layers run one by one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import functional
from .layers import Layer

COMMUTES_WITH_MAX = ("relu", "linear")  # max_k g(z_k) = g(max_k z_k), ties kept as ties


class PoolThenReLU:
    """A layer that ends in a ReLU (``Conv2D(activation="relu")``, ``Activation("relu")``) followed
    by MaxPooling2D, computed as: the layer's linear part, the pooling, then the ReLU on what was
    pooled.

    The maximum of a window commutes with ReLU, max_k relu(z_k) = relu(max_k z_k), so the outputs
    are the same; and so are the gradients: where a window's largest z is positive the same pixel
    takes its gradient (ReLU keeps ties as ties), and where it is not, every gradient of the window
    is 0 either way. The ReLU then touches a quarter of the values (2x2 pooling).
    """

    def __init__(self, layer: Layer, pool: Layer) -> None:
        self.layer, self.pool = layer, pool

    @staticmethod
    def fits(layer: Layer, following: Layer) -> bool:
        activation = getattr(layer, "activation", None)
        return (
            type(following).__name__ == "MaxPooling2D"
            and hasattr(layer, "forward_linear")
            and getattr(activation, "name", None) == "relu"
        )

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x -> z (the layer's linear part) -> pooled z (N, Ho, Wo, C) -> relu, in place: the pool's
        # kept output becomes relu(max z), which backward can use as well as max z (see there)
        pooled = self.pool.forward(self.layer.forward_linear(x, training), training)
        return self.layer.activation.forward(pooled)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        # The pool's output is relu(max z), as after a forward layer by layer. It is positive where
        # max z is: the ReLU's mask. Where it is positive it is the window's maximum, so the pool
        # routes dy to the same pixel as from max z; where it is 0 the ReLU passed no gradient, so
        # the pool routes zeros whichever pixel it picks.
        return self.layer.backward_linear(
            self.pool.backward(self.layer.activation.backward(dy, self.pool.out))
        )


class ConvThenPool:
    """Conv2D (activation relu or none) followed by a MaxPooling2D whose windows tile the image
    (strides = pool_size, no padding), computed as one step:

    - the convolution computes only the pixels the windows read, window tap by window tap
      (functional.receptive_fields), one product per tap, each folded into the running maximum
      of its windows (functional.conv2d_max_pool): the pool's output and, for each window and
      channel, which tap holds its first maximum. Pixels no window reads (the last row of an
      odd-sized output) are never computed; their gradient would be 0;
    - the activation comes after the pool, as in PoolThenReLU;
    - backward: each window's gradient goes to its first maximum, laid out tap by tap, which is
      the layout of the convolution's rows, so nothing is scattered back into an image between
      the pool and the convolution's gradient products.
    """

    def __init__(self, layer: Layer, pool: Layer) -> None:
        self.layer, self.pool = layer, pool

    @staticmethod
    def fits(layer: Layer, following: Layer) -> bool:
        if type(layer).__name__ != "Conv2D" or type(following).__name__ != "MaxPooling2D":
            return False
        tiles = following.strides == following.pool_size and following.padding == "valid"
        taps = following.pool_size[0] * following.pool_size[1]  # numbered in a uint8
        return tiles and taps <= 256 and layer.activation.name in COMMUTES_WITH_MAX

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x -> out: (N, Ho, Wo, F), the maximum over each window of z, and in training first:
        # the tap of each window's first maximum -> the activation, in place (backward reads out
        # as PoolThenReLU reads the pool's output). Kept by the pooling layer, as a layer keeps
        # its own state: a step is rebuilt when a gradient flag changes.
        pool = self.pool
        pool.x = x  # an inference forward finds no first maxima: backward finds them (saliency)
        pool.out, pool.first = self.layer.forward_max_pooled(x, pool.pool_size, training)
        return self.layer.activation.forward(pool.out)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        # dy: (N, Ho, Wo, F) -> the activation's mask -> dz: (ph*pw, N, Ho, Wo, F), dy at each
        # window's first maximum -> the convolution's backward, in the same layout
        pool, taps = self.pool, self.pool.pool_size[0] * self.pool.pool_size[1]
        if pool.first is None:  # after an inference forward: the same products, finding them
            _, pool.first = self.layer.forward_max_pooled(pool.x, pool.pool_size)
        dy = self.layer.activation.backward(dy, pool.out)
        routed = functional.route_to_first(dy, pool.first, taps, pool.workspace)
        return self.layer.backward_linear(routed.reshape(-1, *routed.shape[2:]))


FUSED_STEPS = (ConvThenPool, PoolThenReLU)  # the first that fits two neighbours is taken


def execution_steps(layers: list[Layer]) -> list[Any]:
    """The layers in order, two neighbours taken as one step where a fused step fits them."""
    steps: list[Any] = []
    i = 0
    while i < len(layers):
        following = layers[i + 1] if i + 1 < len(layers) else None
        fused = next((f for f in FUSED_STEPS if following and f.fits(layers[i], following)), None)
        steps.append(layers[i] if fused is None else fused(layers[i], following))
        i += 1 if fused is None else 2
    return steps


def step_layers(step: Any) -> tuple[Layer, ...]:
    """The layers a step computes."""
    return (step.layer, step.pool) if isinstance(step, FUSED_STEPS) else (step,)
