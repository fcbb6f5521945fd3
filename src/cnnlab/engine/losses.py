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
    """L = -mean_n sum_k y_nk log p_nk, with one-hot (or soft) targets y."""

    name = "categorical_crossentropy"
    fused_activation = "softmax"

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return float(-(y_true * np.log(p)).sum(axis=-1).mean())

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return -y_true / p / len(y_pred)

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        # softmax + cross-entropy: dL/dz = (p - y) / N
        return (y_pred - y_true) / len(y_pred)


class SparseCategoricalCrossentropy(Loss):
    """L = -mean_n log p_{n, y_n}, with integer labels y: (N,) or (N, 1)."""

    name = "sparse_categorical_crossentropy"
    fused_activation = "softmax"

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        labels = y_true.reshape(-1).astype(np.intp)
        p = np.clip(y_pred[np.arange(len(labels)), labels], EPSILON, 1 - EPSILON)
        return float(-np.log(p).mean())

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        labels = y_true.reshape(-1).astype(np.intp)
        rows = np.arange(len(labels))
        grad = np.zeros_like(y_pred)
        grad[rows, labels] = -1 / np.clip(y_pred[rows, labels], EPSILON, 1 - EPSILON) / len(labels)
        return grad

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        labels = y_true.reshape(-1).astype(np.intp)
        grad = y_pred.copy()
        grad[np.arange(len(labels)), labels] -= 1
        return grad / len(labels)


class BinaryCrossentropy(Loss):
    """L = -mean(y log p + (1 - y) log(1 - p)) over the last axis, then the batch."""

    name = "binary_crossentropy"
    fused_activation = "sigmoid"

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return float(-(y_true * np.log(p) + (1 - y_true) * np.log(1 - p)).mean())

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        return (p - y_true) / (p * (1 - p)) / y_pred.size

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
