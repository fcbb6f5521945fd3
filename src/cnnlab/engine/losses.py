"""Loss functions: the value, averaged over the batch as Keras does, and its gradient.

``gradient(y_true, y_pred)`` is dL/dy_pred including the 1/N of the mean. Cross-entropy
after a softmax (or sigmoid) has a short, numerically stable gradient with respect to the
pre-activation z: dL/dz = (p - y) / N. ``gradient_before_activation`` gives it, and the
model uses it whenever the last layer's activation matches ``fused_activation``.
"""

from __future__ import annotations

import numpy as np

EPSILON = 1e-7  # Keras clips probabilities to [eps, 1 - eps] before the log


class Loss:
    """Base class. y_pred: (N, ...) model output; y_true: same shape (sparse: (N,) labels)."""

    name = "loss"
    fused_activation: str | None = None

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        raise NotImplementedError

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no fused activation gradient")

    def get_config(self) -> dict:
        return {"name": self.name}


class CategoricalCrossentropy(Loss):
    """L = -mean_n sum_k y_nk log p_nk, with one-hot (or soft) targets y.

    The mean runs over every position but the class axis, so an output (N, ..., K) counts
    N * ... predictions (``count``).
    """

    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return float(-(y_true * np.log(p)).sum(axis=-1).mean())

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        # d/dp of -y log(clip(p)): zero where the clip holds p fixed
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        return np.where(inside, -y_true / np.where(inside, y_pred, 1), 0).astype(y_pred.dtype) / count(y_pred)

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        # softmax + cross-entropy: dL/dz = (p - y) / count
        return (y_pred - y_true) / count(y_pred)


class SparseCategoricalCrossentropy(Loss):
    """L = -mean log p[y], with integer labels y of the output's shape without its class axis."""

    name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        p = np.take_along_axis(y_pred, labels(y_true, y_pred), axis=-1)
        return float(-np.log(np.clip(p, EPSILON, 1 - EPSILON)).mean())

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        index = labels(y_true, y_pred)
        p = np.take_along_axis(y_pred, index, axis=-1)
        inside = (p > EPSILON) & (p < 1 - EPSILON)
        grad = np.zeros_like(y_pred)
        np.put_along_axis(grad, index, np.where(inside, -1 / np.where(inside, p, 1), 0) / count(y_pred), axis=-1)
        return grad

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        index = labels(y_true, y_pred)
        grad = y_pred.copy()
        np.put_along_axis(grad, index, np.take_along_axis(grad, index, axis=-1) - 1, axis=-1)
        return grad / count(y_pred)


def count(y_pred: np.ndarray) -> int:
    """How many predictions an output holds: every position but the class axis."""
    return y_pred.size // y_pred.shape[-1]


def labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Integer labels shaped (N, ..., 1) to index the class axis of y_pred (N, ..., K)."""
    return np.asarray(y_true).reshape(*y_pred.shape[:-1], 1).astype(np.intp)


class BinaryCrossentropy(Loss):
    """L = -mean(y log p + (1 - y) log(1 - p)) over the last axis, then the batch."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return float(-(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)).mean())

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)  # the clip holds p fixed outside
        p = np.where(inside, y_pred, 0.5)
        return np.where(inside, (p - y_true) / (p * (1 - p)), 0).astype(y_pred.dtype) / y_pred.size

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        # sigmoid + binary cross-entropy: dL/dz = (p - y) / (N * K)
        return (y_pred - y_true) / y_pred.size


class MeanSquaredError(Loss):
    """L = mean((y_pred - y)^2) over the last axis, then the batch."""

    name = "mean_squared_error"

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return float(((y_pred - y_true) ** 2).mean())

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return 2 * (y_pred - y_true) / y_pred.size


LOSSES: dict[str, type[Loss]] = {
    "categorical_crossentropy": CategoricalCrossentropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "binary_crossentropy": BinaryCrossentropy,
    "mean_squared_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get(identifier: str | Loss) -> Loss:
    """A loss by Keras name ("categorical_crossentropy", "mse", ...) or instance."""
    if isinstance(identifier, Loss):
        return identifier
    if not isinstance(identifier, str) or identifier.lower() not in LOSSES:
        raise ValueError(f"unknown loss {identifier!r}; choose one of {', '.join(sorted(LOSSES))}")
    return LOSSES[identifier.lower()]()
