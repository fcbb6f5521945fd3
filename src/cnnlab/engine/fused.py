"""Fused steps: neighbouring layers computed as one step, with the same outputs and gradients
as the layers run one after the other, and less work.

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

    span = 2  # layers

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

    span = 2  # layers

    def __init__(self, layer: Layer, pool: Layer) -> None:
        self.layer, self.pool = layer, pool

    @staticmethod
    def fits(layer: Layer, following: Layer) -> bool:
        if type(layer).__name__ != "Conv2D" or not tiling_max_pool(following):
            return False
        return layer.activation.name in COMMUTES_WITH_MAX

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


class ConvNormThenPool:
    """Conv2D (no activation), BatchNormalization, Activation("relu") and a MaxPooling2D whose
    windows tile the convolution's whole output (strides = pool_size, no padding, no pixel left
    over), computed as one step:

    - the convolution computes its output window tap by window tap, (ph*pw*N, Ho, Wo, F), as in
      ConvThenPool but every product kept: BatchNormalization needs every pixel;
    - BatchNormalization runs on that array as it is: its statistics are per channel over all
      pixels, and the order of the pixels does not change them;
    - the pool is the maximum of ph*pw contiguous blocks, with the tap of each window's first
      maximum; the ReLU comes after it, as in PoolThenReLU;
    - backward: the routed gradient is laid out as the convolution's rows, through
      BatchNormalization's backward, with no copy of the windows and no scatter between.

    A first layer (no input gradient to send back) training on the batch's statistics goes
    further, without a pass over z (``folds``): the mean and variance of every channel of z =
    cols @ w come from the moments of cols (functional.column_moments: cols^T 1 and the Gram
    matrix cols^T cols, K x K), so the normalization folds into the weights, y = cols @ (w *
    gain) + shift, and the step is ConvThenPool's, each tap folded into the maximum. Its
    backward needs cols^T dy, as a convolution's does, and K x K corrections
    (functional.normalized_product_gradient).
    """

    span = 4  # layers

    def __init__(self, layer: Layer, norm: Layer, activation: Layer, pool: Layer) -> None:
        self.layer, self.norm, self.activation, self.pool = layer, norm, activation, pool

    @staticmethod
    def fits(layer: Layer, norm: Layer, activation: Layer, pool: Layer) -> bool:
        if type(layer).__name__ != "Conv2D" or layer.activation.name != "linear":
            return False
        if type(norm).__name__ != "BatchNormalization" or not getattr(norm, "channels_last", 0):
            return False
        if type(activation).__name__ != "Activation" or layer.output_shape is None:
            return False
        if not (PoolThenReLU.fits(activation, pool) and tiling_max_pool(pool)):
            return False
        height, width = layer.output_shape[:2]  # every pixel in a window: nothing left over
        return height % pool.pool_size[0] == 0 and width % pool.pool_size[1] == 0

    def folds(self, training: bool) -> bool:
        """Training on the batch's statistics with no input gradient: the folded forward."""
        return bool(training) and self.norm.trainable and not self.layer.needs_input_grad

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x -> z: (ph*pw*N, Ho, Wo, F) window tap by window tap -> normalized, same layout ->
        # the maximum over each window's taps and the tap of its first maximum -> relu
        self.pool.folded = self.folds(training)
        if self.pool.folded:
            return self.forward_folded(x)
        pool, taps = self.pool, self.pool.pool_size[0] * self.pool.pool_size[1]
        z = self.layer.forward_linear(x, training, pool=pool.pool_size)
        normalized = self.norm.forward(z, training)
        windows = normalized.reshape(taps, len(x), *normalized.shape[1:])
        pool.out, pool.first = functional.first_maximum_of_taps(windows, pool.workspace)
        return self.activation.activation.forward(pool.out)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        # dy: (N, Ho, Wo, F) -> relu's mask -> routed to each window's first maximum:
        # (ph*pw*N, Ho, Wo, F) -> BatchNormalization's backward -> the convolution's
        pool, taps = self.pool, self.pool.pool_size[0] * self.pool.pool_size[1]
        dy = self.activation.activation.backward(dy, pool.out)
        routed = functional.route_to_first(dy, pool.first, taps, pool.workspace)
        if pool.folded:
            return self.backward_folded(dy, routed.reshape(-1, dy.shape[-1]))
        return self.layer.backward_linear(self.norm.backward(routed.reshape(-1, *dy.shape[1:])))

    def forward_folded(self, x: np.ndarray) -> np.ndarray:
        # x -> cols (rows window tap by window tap) -> the statistics of z = cols @ w from the
        # moments of cols -> out = max over the taps of cols @ (w * gain), + shift -> relu
        layer, norm, pool = self.layer, self.norm, self.pool
        layer.x_shape, layer.pooled = x.shape, pool.pool_size
        cols, weights, out_hw = functional.conv2d_columns(
            x, *self.kernel_and_bias(), layer.strides, layer.padding, layer.workspace, layer.pooled
        )
        layer.cols, moments = cols, functional.column_moments(cols, layer.workspace)
        mean, variance = functional.product_moments(moments, weights)
        norm.update_moving_statistics(mean, variance)
        inv_std = 1 / np.sqrt(variance + norm.epsilon)
        gain = inv_std * norm.params["gamma"] if norm.scale else inv_std
        shift = norm.params.get("beta", 0) - gain * mean
        pool.out, pool.first = functional.max_of_products(
            cols,
            (weights * gain).astype(cols.dtype),
            pool.pool_size,
            (len(x), *out_hw, weights.shape[1]),
            layer.workspace,
        )
        pool.out += shift.astype(cols.dtype)
        pool.moments, pool.statistics = (moments, weights), (mean, inv_std, gain)
        return self.activation.activation.forward(pool.out)

    def backward_folded(self, dy: np.ndarray, routed: np.ndarray) -> None:
        # dy: (N, Ho, Wo, F), after relu's mask; routed: (rows, F) -> cols^T routed, and the
        # gradients of gamma, beta and the weights from it (nothing is sent back)
        layer, norm, pool = self.layer, self.norm, self.pool
        (moments, weights), (mean, inv_std, _) = pool.moments, pool.statistics
        colsT_dy = (layer.cols.T @ routed).astype(np.float64)  # (K, F)
        dbeta = functional.column_sums(dy.reshape(-1, dy.shape[-1])).astype(np.float64)
        # sum(dy * x_hat) = inv_std * (sum(dy * z) - mean * sum(dy)); sum(dy * z) = w . cols^T dy
        dgamma = inv_std * (np.einsum("kf,kf->f", weights, colsT_dy) - mean * dbeta)
        dweights = functional.normalized_product_gradient(
            colsT_dy, moments, weights, pool.statistics, (dbeta, dgamma)
        ).astype(dy.dtype)
        k = layer.params["kernel"].size // weights.shape[1]
        layer.grads["kernel"] = dweights[:k].reshape(layer.params["kernel"].shape)
        if layer.use_bias:
            layer.grads["bias"] = dweights[k]
        if norm.center:  # in BatchNormalization.backward's order
            norm.grads["beta"] = dbeta.astype(dy.dtype)
        if norm.scale:
            norm.grads["gamma"] = dgamma.astype(dy.dtype)

    def kernel_and_bias(self) -> tuple[np.ndarray, np.ndarray | None]:
        return self.layer.params["kernel"], self.layer.params.get("bias")


def tiling_max_pool(layer: Layer) -> bool:
    """A MaxPooling2D whose windows tile the image: strides = pool_size, no padding (and at
    most 256 taps, numbered in a uint8)."""
    if type(layer).__name__ != "MaxPooling2D":
        return False
    tiles = layer.strides == layer.pool_size and layer.padding == "valid"
    return tiles and layer.pool_size[0] * layer.pool_size[1] <= 256


# The first that fits the layers from a position on is taken
FUSED_STEPS = (ConvNormThenPool, ConvThenPool, PoolThenReLU)


def execution_steps(layers: list[Layer]) -> list[Any]:
    """The layers in order, neighbours taken as one step where a fused step fits them."""
    steps: list[Any] = []
    i = 0
    while i < len(layers):
        fused = next(
            (
                step
                for step in FUSED_STEPS
                if i + step.span <= len(layers) and step.fits(*layers[i : i + step.span])
            ),
            None,
        )
        steps.append(layers[i] if fused is None else fused(*layers[i : i + fused.span]))
        i += 1 if fused is None else fused.span
    return steps


def step_layers(step: Any) -> tuple[Layer, ...]:
    """The layers a step computes."""
    if isinstance(step, ConvNormThenPool):
        return (step.layer, step.norm, step.activation, step.pool)
    return (step.layer, step.pool) if isinstance(step, FUSED_STEPS) else (step,)
