"""Loss functions: the value, averaged over the batch as Keras does, and its gradient.

Each loss is two things, as in Keras 3: a function (``categorical_crossentropy(y_true,
y_pred)``) that returns the per-sample loss array, and a class whose instance returns the
mean of that array (Keras's "sum_over_batch_size") and knows its gradient.

``gradient(y_true, y_pred)`` is dL/dy_pred including the 1/N of the mean. Cross-entropy
after a softmax (or sigmoid) has a short, numerically stable gradient with respect to the
pre-activation z: dL/dz = (p - y) / N. ``gradient_before_activation`` gives it, and the
model uses it whenever the last layer's activation matches ``fused_activation``.

With ``from_logits=True`` the model's output *is* z: the value is computed from z with the
log-sum-exp trick and ``gradient(y_true, z)`` is dL/dz directly; such a loss has no fused
activation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from .errors import UnsupportedKerasFeature

EPSILON = 1e-7  # Keras clips probabilities to [eps, 1 - eps] before the log


def refuse_unless_default(
    owner: str, kwargs: dict[str, Any], defaults: dict[str, tuple[Any, ...]]
) -> None:
    """Refuse, naming it, a Keras argument cnnlab accepts only at its default value(s)."""
    for key, value in kwargs.items():
        if key not in defaults:
            raise UnsupportedKerasFeature(f"{owner}: argument {key!r} is not supported by cnnlab")
        if not any(value is default or value == default for default in defaults[key]):
            raise UnsupportedKerasFeature(
                f"{owner}: {key}={value!r} is not supported by cnnlab (only the default, "
                f"{defaults[key][0]!r})"
            )


# Arguments every keras.losses.Loss takes; cnnlab's losses always average over the batch.
LOSS_DEFAULTS: dict[str, tuple[Any, ...]] = {
    "reduction": ("sum_over_batch_size", "auto"),
    "dtype": (None,),
    "axis": (-1,),
    "ignore_class": (None,),
}


# ------------------------------------------------------------------ stable pieces
def log_softmax(z: np.ndarray) -> np.ndarray:
    """log softmax over the last axis: z - max - log sum exp(z - max)."""
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def sigmoid(z: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-z)) without overflow for large |z|."""
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def count(y_pred: np.ndarray) -> int:
    """How many predictions an output holds: every position but the class axis."""
    return y_pred.size // y_pred.shape[-1]


def labels(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Integer labels shaped (N, ..., 1) to index the class axis of y_pred (N, ..., K)."""
    return np.asarray(y_true).reshape(*y_pred.shape[:-1], 1).astype(np.intp)


def one_hot_like(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Integer labels (N, ...) or (N, ..., 1) -> one-hot of y_pred's shape (N, ..., K)."""
    target = np.zeros_like(y_pred)
    np.put_along_axis(target, labels(y_true, y_pred), 1, axis=-1)
    return target


# ------------------------------------------------------- Keras's loss functions
def categorical_crossentropy(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> np.ndarray:
    """keras.losses.categorical_crossentropy: -sum_k y_k log p_k per prediction, (N, ..., K) ->
    (N, ...)."""
    refuse_unless_default("categorical_crossentropy", {"axis": axis}, LOSS_DEFAULTS)
    y_true = smooth_categorical(np.asarray(y_true, dtype=np.asarray(y_pred).dtype), label_smoothing)
    if from_logits:
        return -(y_true * log_softmax(y_pred)).sum(axis=-1)
    return -(y_true * np.log(np.clip(y_pred, EPSILON, 1 - EPSILON))).sum(axis=-1)


def sparse_categorical_crossentropy(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    from_logits: bool = False,
    ignore_class: int | None = None,
    axis: int = -1,
) -> np.ndarray:
    """keras.losses.sparse_categorical_crossentropy: -log p[label], labels (N, ...) -> (N, ...)."""
    refuse_unless_default(
        "sparse_categorical_crossentropy",
        {"axis": axis, "ignore_class": ignore_class},
        LOSS_DEFAULTS,
    )
    index = labels(y_true, y_pred)
    if from_logits:
        return -np.take_along_axis(log_softmax(y_pred), index, axis=-1)[..., 0]
    return -np.log(
        np.clip(np.take_along_axis(y_pred, index, axis=-1)[..., 0], EPSILON, 1 - EPSILON)
    )


def binary_crossentropy(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    from_logits: bool = False,
    label_smoothing: float = 0.0,
    axis: int = -1,
) -> np.ndarray:
    """keras.losses.binary_crossentropy: -(y log p + (1 - y) log(1 - p)), mean over the last
    axis."""
    refuse_unless_default("binary_crossentropy", {"axis": axis}, LOSS_DEFAULTS)
    y = np.asarray(y_true, dtype=np.asarray(y_pred).dtype)
    y = y * (1 - label_smoothing) + 0.5 * label_smoothing if label_smoothing else y
    if (
        from_logits
    ):  # max(z, 0) - z y + log(1 + exp(-|z|)), as torch's binary_cross_entropy_with_logits
        return (np.maximum(y_pred, 0) - y_pred * y + np.log1p(np.exp(-np.abs(y_pred)))).mean(
            axis=-1
        )
    p = np.clip(y_pred, EPSILON, 1 - EPSILON)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p)).mean(axis=-1)


def mean_squared_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """keras.losses.mean_squared_error: mean((y_pred - y)^2) over the last axis."""
    return ((y_pred - same_rank(y_true, y_pred)) ** 2).mean(axis=-1)


def mean_absolute_error(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """keras.losses.mean_absolute_error: mean(|y_pred - y|) over the last axis."""
    return np.abs(y_pred - same_rank(y_true, y_pred)).mean(axis=-1)


def huber(y_true: np.ndarray, y_pred: np.ndarray, delta: float = 1.0) -> np.ndarray:
    """keras.losses.huber: e^2 / 2 where |e| <= delta, else delta |e| - delta^2 / 2; mean over the
    last axis."""
    error = y_pred - same_rank(y_true, y_pred)
    small = np.abs(error) <= delta
    return np.where(small, 0.5 * error**2, delta * np.abs(error) - 0.5 * delta**2).mean(axis=-1)


def same_rank(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """Targets (N,) against outputs (N, 1), or the reverse, line up as Keras's squeeze_or_expand
    does."""
    y_true = np.asarray(y_true, dtype=np.asarray(y_pred).dtype)
    if y_true.ndim == y_pred.ndim - 1 and y_pred.shape[-1] == 1:
        return y_true[..., None]
    if y_true.ndim == y_pred.ndim + 1 and y_true.shape[-1] == 1:
        return y_true[..., 0]
    return y_true


def smooth_categorical(y_true: np.ndarray, label_smoothing: float) -> np.ndarray:
    """Keras's label smoothing: y (1 - s) + s / K."""
    return (
        y_true * (1 - label_smoothing) + label_smoothing / y_true.shape[-1]
        if label_smoothing
        else y_true
    )


# -------------------------------------------------------------------- classes
class LossValue(float):
    """A loss value: a Python float that also answers ``.numpy()``, as an eager tensor does
    (TensorFlow's quickstart prints ``loss_fn(y, logits).numpy()``)."""

    def numpy(self) -> np.float32:
        return np.float32(self)


class Loss:
    """Base class. y_pred: (N, ...) model output; y_true: same shape (sparse: (N,) labels).

    ``function`` is the Keras loss function giving per-sample values; the instance returns
    their mean (keras.losses.Loss with reduction "sum_over_batch_size").
    """

    name = "loss"
    fused_activation: str | None = None
    from_logits = False

    def __init__(self, name: str | None = None, **kwargs: Any) -> None:
        refuse_unless_default(type(self).__name__, kwargs, LOSS_DEFAULTS)

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, y_true: np.ndarray, y_pred: np.ndarray) -> float:
        return LossValue(self.per_sample(y_true, y_pred).mean())

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} has no fused activation gradient")

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name}


class CrossEntropy(Loss):
    """What the three cross-entropies share: ``from_logits`` and, for two of them, label
    smoothing."""

    probability_activation = "softmax"

    def __init__(
        self,
        from_logits: bool = False,
        label_smoothing: float = 0.0,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(name, **kwargs)
        if not 0 <= label_smoothing <= 1:
            raise ValueError(
                f"{type(self).__name__}: label_smoothing must be in [0, 1], received "
                f"{label_smoothing!r}"
            )
        self.from_logits, self.label_smoothing = bool(from_logits), float(label_smoothing)
        self.fused_activation = None if self.from_logits else self.probability_activation

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        if self.from_logits:  # y_pred is z: the fused gradient of its probabilities
            return self.gradient_before_activation(y_true, self.probabilities(y_pred))
        return self.gradient_of_probabilities(y_true, y_pred)

    def probabilities(self, z: np.ndarray) -> np.ndarray:
        return np.exp(log_softmax(z))

    def gradient_of_probabilities(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def get_config(self) -> dict[str, Any]:
        config = {**super().get_config(), "from_logits": self.from_logits}
        return (
            {**config, "label_smoothing": self.label_smoothing} if self.label_smoothing else config
        )


class CategoricalCrossentropy(CrossEntropy):
    """L = -mean_n sum_k y_nk log p_nk, with one-hot (or soft) targets y
    (keras.losses.CategoricalCrossentropy).

    The mean runs over every position but the class axis, so an output (N, ..., K) counts
    N * ... predictions (``count``).
    """

    name = "categorical_crossentropy"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return categorical_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing)

    def gradient_of_probabilities(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        # d/dp of -y log(clip(p)): zero where the clip holds p fixed
        y_true = smooth_categorical(np.asarray(y_true, dtype=y_pred.dtype), self.label_smoothing)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)
        return np.where(inside, -y_true / np.where(inside, y_pred, 1), 0).astype(
            y_pred.dtype
        ) / count(y_pred)

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        # softmax + cross-entropy: dL/dz = (p sum_k y_k - y) / count, = (p - y) / count for one-hot
        # y
        y_true = smooth_categorical(np.asarray(y_true, dtype=y_pred.dtype), self.label_smoothing)
        return (y_pred * y_true.sum(axis=-1, keepdims=True) - y_true) / count(y_pred)


class SparseCategoricalCrossentropy(CrossEntropy):
    """L = -mean log p[y], with integer labels y of the output's shape without its class axis
    (keras.losses.SparseCategoricalCrossentropy)."""

    name = "sparse_categorical_crossentropy"

    def __init__(
        self,
        from_logits: bool = False,
        ignore_class: int | None = None,
        name: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            from_logits, label_smoothing=0.0, name=name, ignore_class=ignore_class, **kwargs
        )

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return sparse_categorical_crossentropy(y_true, y_pred, self.from_logits)

    def gradient_of_probabilities(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        index = labels(y_true, y_pred)
        p = np.take_along_axis(y_pred, index, axis=-1)
        inside = (p > EPSILON) & (p < 1 - EPSILON)
        grad = np.zeros_like(y_pred)
        np.put_along_axis(
            grad, index, np.where(inside, -1 / np.where(inside, p, 1), 0) / count(y_pred), axis=-1
        )
        return grad

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        index = labels(y_true, y_pred)
        grad = y_pred.copy()
        np.put_along_axis(grad, index, np.take_along_axis(grad, index, axis=-1) - 1, axis=-1)
        return grad / count(y_pred)


class BinaryCrossentropy(CrossEntropy):
    """L = -mean(y log p + (1 - y) log(1 - p)) over the last axis, then the batch
    (keras.losses.BinaryCrossentropy)."""

    name = "binary_crossentropy"
    probability_activation = "sigmoid"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return binary_crossentropy(y_true, y_pred, self.from_logits, self.label_smoothing)

    def probabilities(self, z: np.ndarray) -> np.ndarray:
        return sigmoid(z)

    def smoothed(self, y_true: np.ndarray, dtype: np.dtype) -> np.ndarray:
        y = np.asarray(y_true, dtype=dtype)
        return (
            y * (1 - self.label_smoothing) + 0.5 * self.label_smoothing
            if self.label_smoothing
            else y
        )

    def gradient_of_probabilities(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        y = self.smoothed(y_true, y_pred.dtype)
        inside = (y_pred > EPSILON) & (y_pred < 1 - EPSILON)  # the clip holds p fixed outside
        p = np.where(inside, y_pred, 0.5)
        return np.where(inside, (p - y) / (p * (1 - p)), 0).astype(y_pred.dtype) / y_pred.size

    def gradient_before_activation(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        # sigmoid + binary cross-entropy: dL/dz = (p - y) / (N * K)
        return (y_pred - self.smoothed(y_true, y_pred.dtype)) / y_pred.size


class MeanSquaredError(Loss):
    """L = mean((y_pred - y)^2) over the last axis, then the batch
    (keras.losses.MeanSquaredError)."""

    name = "mean_squared_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return mean_squared_error(y_true, y_pred)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return 2 * (y_pred - same_rank(y_true, y_pred)) / y_pred.size


class MeanAbsoluteError(Loss):
    """L = mean(|y_pred - y|) (keras.losses.MeanAbsoluteError); dL/dy_pred = sign(y_pred - y) /
    size."""

    name = "mean_absolute_error"

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return mean_absolute_error(y_true, y_pred)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.sign(y_pred - same_rank(y_true, y_pred)) / y_pred.size


class Huber(Loss):
    """keras.losses.Huber(delta=1.0): quadratic within delta of the target, linear beyond;
    dL/dy_pred = clip(y_pred - y, -delta, delta) / size."""

    name = "huber"

    def __init__(self, delta: float = 1.0, name: str | None = None, **kwargs: Any) -> None:
        super().__init__(name, **kwargs)
        if not delta > 0:
            raise ValueError(f"Huber: delta must be positive, received {delta!r}")
        self.delta = float(delta)

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return huber(y_true, y_pred, self.delta)

    def gradient(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        return np.clip(y_pred - same_rank(y_true, y_pred), -self.delta, self.delta) / y_pred.size

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "delta": self.delta}


# ------------------------------------------------------------------- registry
LOSS_CLASSES: tuple[type[Loss], ...] = (
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    BinaryCrossentropy,
    MeanSquaredError,
    MeanAbsoluteError,
    Huber,
)
LOSS_FUNCTIONS: dict[Callable[..., np.ndarray], type[Loss]] = {
    categorical_crossentropy: CategoricalCrossentropy,
    sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    binary_crossentropy: BinaryCrossentropy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    huber: Huber,
}
# Keras's names: the functions' names, the aliases of keras.losses.ALL_OBJECTS_DICT, the class
# names.
LOSSES: dict[str, type[Loss]] = {
    **{cls.name: cls for cls in LOSS_CLASSES},
    "mse": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "bce": BinaryCrossentropy,
    "huber_loss": Huber,
}
LOSS_NAMES = {**LOSSES, **{cls.__name__.lower(): cls for cls in LOSS_CLASSES}}

LossIdentifier = str | Loss | type[Loss] | Callable[..., Any] | dict[str, Any]


def get(identifier: LossIdentifier) -> Loss:
    """A loss as Keras's ``compile(loss=...)`` takes it: a name ("categorical_crossentropy", "mse",
    "CategoricalCrossentropy"), a class, an instance, one of Keras's loss functions
    (``categorical_crossentropy``, also through functools.partial), or a saved config
    (``{"name": ..., "from_logits": ...}`` from ``get_config``, or Keras's
    ``{"class_name", "config"}``).
    """
    if isinstance(identifier, Loss):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Loss):
        return identifier()
    if isinstance(identifier, dict):
        return from_config(identifier)
    if isinstance(identifier, str):
        return by_name(identifier)()
    if isinstance(identifier, functools.partial) and identifier.func in LOSS_FUNCTIONS:
        return LOSS_FUNCTIONS[identifier.func](**identifier.keywords)
    if callable(identifier) and identifier in LOSS_FUNCTIONS:
        return LOSS_FUNCTIONS[identifier]()
    what = getattr(identifier, "__name__", type(identifier).__name__)
    raise UnsupportedKerasFeature(
        f"loss {what!r} is not supported: cnnlab differentiates only its own losses, not Python "
        "code; "
        f"use one of {supported()}"
    )


def by_name(name: str) -> type[Loss]:
    """The loss class of a Keras name or alias, case-insensitive."""
    cls = LOSS_NAMES.get(name.lower())
    if cls is None:
        raise UnsupportedKerasFeature(f"unknown loss {name!r}; cnnlab supports {supported()}")
    return cls


def from_config(config: dict[str, Any]) -> Loss:
    """A loss from ``get_config()`` or from Keras's serialized form
    {"class_name": ..., "config": {...}}."""
    if "class_name" in config:
        return get({**config.get("config", {}), "name": config["class_name"]})
    arguments = dict(config)
    cls = by_name(str(arguments.pop("name", "")))
    arguments.pop("reduction", None)
    arguments.pop("dtype", None)
    return cls(**arguments)


def supported() -> str:
    return ", ".join(LOSSES)
