"""BatchNormalization (keras.layers.BatchNormalization)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional, initializers
from ..config import floatx
from .base import Layer, Shape, register


@register
class BatchNormalization(Layer):
    """Normalise each channel (the ``axis`` entry) over every other axis, then scale and shift.

    Training (``forward(x, training=True)`` on a trainable layer): the batch's mean and biased
    variance, and the moving statistics updated as Keras does,
    ``moving = moving * momentum + batch * (1 - momentum)``. Inference (or ``trainable=False``,
    as in Keras): the moving statistics. y = gamma * (x - mean) / sqrt(var + epsilon) + beta.
    Weights in Keras's order: gamma, beta (trainable; absent with scale/center False), then
    moving_mean, moving_variance (non-trainable, in ``state``); each of shape (C,).
    forward's output and backward's dx live in the layer's workspace: valid until its next call.
    """

    def __init__(
        self,
        axis: int = -1,
        momentum: float = 0.99,
        epsilon: float = 1e-3,
        center: bool = True,
        scale: bool = True,
        beta_initializer: str = "zeros",
        gamma_initializer: str = "ones",
        moving_mean_initializer: str = "zeros",
        moving_variance_initializer: str = "ones",
        renorm_clipping: Any = None,
        renorm_momentum: float = 0.99,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            **kwargs
        )  # renorm_clipping and renorm_momentum matter only with renorm=True (refused)
        if not isinstance(axis, (int, np.integer)):
            raise ValueError(f"{self.describe()}: axis must be an int, received {axis!r}")
        if not 0 <= momentum <= 1 or epsilon <= 0:
            raise ValueError(
                f"{self.describe()}: momentum must be in [0, 1] and epsilon positive, "
                f"received momentum={momentum!r}, epsilon={epsilon!r}"
            )
        self.axis, self.momentum, self.epsilon = int(axis), float(momentum), float(epsilon)
        self.center, self.scale = bool(center), bool(scale)
        self.initializers = {
            "gamma": gamma_initializer,
            "beta": beta_initializer,
            "moving_mean": moving_mean_initializer,
            "moving_variance": moving_variance_initializer,
        }
        for name in self.initializers.values():
            initializers.get(name)

    def compute_output_shape(self, input_shape: Shape) -> Shape:
        rank = len(input_shape) + 1  # with the batch axis
        if not -rank < self.axis < rank or self.axis % rank == 0:
            raise ValueError(
                f"{self.describe()}: axis {self.axis} is out of bounds for an input of shape "
                f"(None, {', '.join(map(str, input_shape))})"
            )
        return tuple(input_shape)

    def build(self, input_shape: Shape, rng: np.random.Generator | None = None) -> None:
        super().build(input_shape)
        rank = len(input_shape) + 1
        self.channel_axis = self.axis % rank
        self.reduce_axes = tuple(a for a in range(rank) if a != self.channel_axis)
        self.channels_last = self.channel_axis == rank - 1
        self.channel_count = input_shape[self.channel_axis - 1]
        channels = (self.channel_count,)
        rng = rng or np.random.default_rng()
        wanted = {"gamma": self.scale, "beta": self.center}
        for key in ("gamma", "beta"):
            if wanted[key]:
                self.params[key] = initializers.get(self.initializers[key])(channels, rng, floatx())
        for key in ("moving_mean", "moving_variance"):
            self.state[key] = initializers.get(self.initializers[key])(channels, rng, floatx())

    # ---------------------------------------------------------------- maths
    # Speed (stated once here): the passes over the activations run block by block of samples
    # (functional.batch_blocks), so what a block makes (centred values, their squares, y; or
    # dx) is made while the block is in the cache. A training forward then reads x twice and
    # writes centred and y once, a backward reads dy and centred twice and writes dx once: 5
    # passes through memory each, instead of 10 and 13 with whole-array NumPy operations.
    # Channel-last arrays are handled as rows of whole samples with the per-channel vectors
    # tiled to match (``rows``/``spread``): NumPy's inner loop then runs over a sample, not
    # over C values.

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, ..., C) -> y: same shape. Statistics (C,) over the M = x.size / C values of a
        # channel: mean, and the biased variance mean(centred^2) with centred = x - mean (as
        # Keras). y = centred * gain + beta, gain = gamma * inv_std, inv_std = 1/sqrt(var + eps).
        # x_hat = centred * inv_std is never stored: backward uses centred.
        self.batch_statistics = bool(training) and self.trainable
        x = np.ascontiguousarray(x)
        if self.batch_statistics:
            mean = self.channel_sums(self.rows(x)) / self.count(x)
            variance = self.centre(x, mean) / self.count(x)
            self.update_moving_statistics(mean, variance)
        else:
            self.centre(x, self.state["moving_mean"])
            variance = self.state["moving_variance"]
        self.inv_std = (1 / np.sqrt(variance + self.epsilon)).astype(x.dtype)
        y = self.scratch("y", x)
        gain, beta = self.spread(self.gain(), x), self.spread(self.params.get("beta"), x)
        centred, out = self.rows(self.centred), self.rows(y)
        for b in self.blocks(x):
            np.multiply(centred[b], gain, out=out[b])
            if beta is not None:
                out[b] += beta
        return y

    def centre(self, x: np.ndarray, mean: np.ndarray) -> np.ndarray:
        """self.centred = x - mean; returns the channel sums of centred^2 (C,) when training."""
        self.centred = self.scratch("centred", x)
        rows, out, shift = self.rows(x), self.rows(self.centred), self.spread(mean, x)
        squares = np.zeros(x.shape[self.channel_axis])
        for b in self.blocks(x):
            np.subtract(rows[b], shift, out=out[b])
            if self.batch_statistics:
                squares += self.channel_sums(np.multiply(out[b], out[b], out=self.block(out, b)))
        return squares

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        # dy: (N, ..., C) -> dx: same shape; grads gamma, beta: (C,). With x_hat = centred *
        # inv_std: dbeta = sum(dy), dgamma = sum(dy * x_hat) = inv_std * sum(dy * centred)
        dy = np.ascontiguousarray(dy)
        dbeta, dgamma = self.gradient_sums(dy)
        if self.center:
            self.grads["beta"] = dbeta
        if self.scale:
            self.grads["gamma"] = dgamma
        return self.input_gradient(dy, dbeta, dgamma) if self.needs_input_grad else None

    def input_gradient(self, dy: np.ndarray, dbeta: np.ndarray, dgamma: np.ndarray) -> np.ndarray:
        # dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat))
        #    = gain * (dy - dbeta / M) - centred * (gain * inv_std * dgamma / M)
        # With the moving statistics (constants: an affine map) dx = gain * dy.
        count, gain, dx = self.count(dy), self.gain(), self.scratch("dx", dy)
        shift = self.spread(dbeta / count, dy)
        slope = self.spread(gain * self.inv_std * dgamma / count, dy)
        gain = self.spread(gain, dy)
        rows, centred, out = self.rows(dy), self.rows(self.centred), self.rows(dx)
        for b in self.blocks(dy):
            if not self.batch_statistics:
                np.multiply(rows[b], gain, out=out[b])
                continue
            np.subtract(rows[b], shift, out=out[b])
            out[b] *= gain
            out[b] -= np.multiply(centred[b], slope, out=self.block(out, b))
        return dx

    def gradient_sums(self, dy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(sum(dy), inv_std * sum(dy * centred)) per channel, in one pass over dy and centred."""
        rows, centred = self.rows(dy), self.rows(self.centred)
        sums = np.zeros((2, dy.shape[self.channel_axis]))
        for b in self.blocks(dy):
            sums[0] += self.channel_sums(rows[b])
            sums[1] += self.channel_sums(np.multiply(rows[b], centred[b], out=self.block(rows, b)))
        return sums[0].astype(dy.dtype), (sums[1] * self.inv_std).astype(dy.dtype)

    # ---------------------------------------------------------------- layout
    def rows(self, a: np.ndarray) -> np.ndarray:
        """Channel-last a as (N, P*C) rows (a view), else a itself."""
        return a.reshape(len(a), -1) if self.channels_last else a

    def spread(self, v: np.ndarray | None, like: np.ndarray) -> np.ndarray | None:
        """v (C,) shaped to combine with rows(like): tiled over a sample's P positions, or
        broadcastable along the channel axis."""
        if v is None:
            return None
        if self.channels_last:
            return np.tile(v, like[0].size // len(v))
        shape = [1] * like.ndim
        shape[self.channel_axis] = -1
        return v.reshape(shape)

    def channel_sums(self, a: np.ndarray) -> np.ndarray:
        """a: rows (or the array) of a block -> (C,), the sum over all but the channel axis."""
        if self.channels_last:  # one matrix-vector product, as BLAS is fast at it
            return functional.column_sums(a.reshape(-1, self.channel_count))
        return a.sum(axis=self.reduce_axes)

    def blocks(self, a: np.ndarray) -> list[slice]:
        return functional.batch_blocks(a)

    def block(self, like: np.ndarray, b: slice) -> np.ndarray:
        """Scratch for one block of like (one array the size of a full block, reused)."""
        shape = (functional.block_rows(like), *like.shape[1:])
        return self.workspace.empty("block", shape, like.dtype)[: len(like[b])]

    def update_moving_statistics(self, mean: np.ndarray, variance: np.ndarray) -> None:
        for key, batch in (("moving_mean", mean), ("moving_variance", variance)):
            moving = self.state[key]
            moving[...] = moving * self.momentum + batch.astype(moving.dtype) * (1 - self.momentum)

    def gain(self) -> np.ndarray:
        """gamma * inv_std (C,): what multiplies the centred input."""
        return self.inv_std * self.params["gamma"] if self.scale else self.inv_std

    def count(self, a: np.ndarray) -> int:
        """M, the values of one channel in a."""
        return a.size // a.shape[self.channel_axis]

    def scratch(self, name: str, like: np.ndarray) -> np.ndarray:
        """A workspace array shaped like ``like``: reused batch after batch (no fresh pages)."""
        return self.workspace.empty(name, like.shape, like.dtype)

    def get_config(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
            "beta_initializer": self.initializers["beta"],
            "gamma_initializer": self.initializers["gamma"],
            "moving_mean_initializer": self.initializers["moving_mean"],
            "moving_variance_initializer": self.initializers["moving_variance"],
        }
