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
        channels = (input_shape[self.channel_axis - 1],)
        rng = rng or np.random.default_rng()
        wanted = {"gamma": self.scale, "beta": self.center}
        for key in ("gamma", "beta"):
            if wanted[key]:
                self.params[key] = initializers.get(self.initializers[key])(channels, rng, floatx())
        for key in ("moving_mean", "moving_variance"):
            self.state[key] = initializers.get(self.initializers[key])(channels, rng, floatx())

    # ---------------------------------------------------------------- maths
    def channel_sums(self, a: np.ndarray) -> np.ndarray:
        """a: (N, ..., C, ...) -> (C,), the sum over every axis but the channel axis."""
        if self.channel_axis == a.ndim - 1:
            return functional.column_sums(a.reshape(-1, a.shape[-1]))  # one matrix-vector product
        return a.sum(axis=self.reduce_axes)

    def per_channel(self, v: np.ndarray, ndim: int) -> np.ndarray:
        """v: (C,) -> broadcastable along the channel axis of an ndim-array."""
        shape = [1] * ndim
        shape[self.channel_axis] = -1
        return v.reshape(shape)

    def forward(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        # x: (N, ..., C) -> y: same shape; statistics (C,) over the M = x.size / C values of a
        # channel. y = x_hat * gamma + beta with x_hat = (x - mean) * inv_std, computed as one
        # product of the centred x with gamma * inv_std: x_hat itself is never stored
        # (backward uses centred)
        self.batch_statistics = bool(training) and self.trainable
        mean = (
            self.channel_sums(x) / self.count(x)
            if self.batch_statistics
            else self.state["moving_mean"]
        )
        self.centred = np.subtract(
            x, self.per_channel(mean, x.ndim), out=self.scratch("centred", x)
        )
        if self.batch_statistics:
            squares = np.multiply(self.centred, self.centred, out=self.scratch("product", x))
            variance = self.channel_sums(squares) / self.count(x)  # biased, as Keras
            self.update_moving_statistics(mean, variance)
        else:
            variance = self.state["moving_variance"]
        self.inv_std = (1 / np.sqrt(variance + self.epsilon)).astype(x.dtype)
        y = np.multiply(
            self.centred, self.per_channel(self.gain(), x.ndim), out=self.scratch("y", x)
        )
        if self.center:
            y += self.per_channel(self.params["beta"], x.ndim)
        return y

    def update_moving_statistics(self, mean: np.ndarray, variance: np.ndarray) -> None:
        for key, batch in (("moving_mean", mean), ("moving_variance", variance)):
            moving = self.state[key]
            moving[...] = moving * self.momentum + batch.astype(moving.dtype) * (1 - self.momentum)

    def backward(self, dy: np.ndarray) -> np.ndarray | None:
        # dy: (N, ..., C) -> dx: same shape; grads gamma, beta: (C,). With x_hat = centred *
        # inv_std: dbeta = sum(dy), dgamma = sum(dy * x_hat) = inv_std * sum(dy * centred)
        dbeta = self.channel_sums(dy)
        dgamma = (
            self.channel_sums(np.multiply(dy, self.centred, out=self.scratch("product", dy)))
            * self.inv_std
        )
        if self.center:
            self.grads["beta"] = dbeta
        if self.scale:
            self.grads["gamma"] = dgamma
        if not self.needs_input_grad:
            return None
        gain, ndim = self.gain(), dy.ndim
        dx = self.scratch("dx", dy)
        if not self.batch_statistics:  # the moving statistics are constants: an affine map
            return np.multiply(dy, self.per_channel(gain, ndim), out=dx)
        # dx = gamma * inv_std * (dy - mean(dy) - x_hat * mean(dy * x_hat))
        #    = gain * (dy - dbeta / M) - centred * (gain * inv_std * dgamma / M)
        count = self.count(dy)
        np.subtract(dy, self.per_channel(dbeta / count, ndim), out=dx)
        dx *= self.per_channel(gain, ndim)
        dx -= np.multiply(
            self.centred,
            self.per_channel(gain * self.inv_std * dgamma / count, ndim),
            out=self.scratch("product", dy),
        )
        return dx

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
