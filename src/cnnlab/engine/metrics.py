"""Metrics as Keras 3's ``compile(metrics=[...])`` takes them, reduced as Keras reduces them.

Each metric is a function giving one value per position (keras.metrics.categorical_accuracy,
...) and a name, the key in the logs. Keras's ``MeanMetricWrapper`` averages each sample's
values over its non-batch axes, then averages samples; ``batch_totals`` returns the batch's
share of that: (sum over samples, sample count), so an epoch's value is the sample-weighted
mean over its batches.

``"accuracy"``/``"acc"`` is resolved as Keras 3 resolves it (keras.src.trainers.compile_utils),
from the shapes of y_true and y_pred, not from the loss: a single output unit -> binary accuracy
(threshold 0.5, on logits too); labels of lower rank than the output, or (N, 1) labels against
several units -> sparse categorical accuracy; otherwise categorical accuracy.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import numpy as np

from . import losses
from .errors import UnsupportedKerasFeature
from .losses import mean_absolute_error, mean_squared_error, same_rank

MetricFunction = Callable[..., np.ndarray]


# ---------------------------------------------------------- Keras's functions
def binary_accuracy(y_true: np.ndarray, y_pred: np.ndarray, threshold: float = 0.5) -> np.ndarray:
    """keras.metrics.binary_accuracy: 1 where (y_pred > threshold) equals y_true, per element."""
    return (same_rank(y_true, y_pred) == (y_pred > threshold)).astype(np.float32)


def categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """keras.metrics.categorical_accuracy: argmax(y_true) == argmax(y_pred), (N, ..., K) ->
    (N, ...)."""
    return (np.argmax(y_true, axis=-1) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """keras.metrics.sparse_categorical_accuracy: label == argmax(y_pred); labels (N, ...) or
    (N, ..., 1)."""
    return (losses.labels(y_true, y_pred)[..., 0] == np.argmax(y_pred, axis=-1)).astype(np.float32)


def top_k_categorical_accuracy(y_true: np.ndarray, y_pred: np.ndarray, k: int = 5) -> np.ndarray:
    """keras.metrics.top_k_categorical_accuracy: argmax(y_true) among the k largest outputs."""
    return sparse_top_k_categorical_accuracy(np.argmax(y_true, axis=-1), y_pred, k)


def sparse_top_k_categorical_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, k: int = 5
) -> np.ndarray:
    """keras.metrics.sparse_top_k_categorical_accuracy: the label's output is among the k largest
    (ties count in its favour, as in_top_k does)."""
    index = losses.labels(y_true, y_pred)
    target = np.take_along_axis(y_pred, index, axis=-1)
    return ((y_pred > target).sum(axis=-1) < k).astype(np.float32)


def accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """keras.metrics.accuracy: 1 where y_pred equals y_true exactly, per element."""
    return (same_rank(y_true, y_pred) == y_pred).astype(np.float32)


def accuracy_for(y_true: np.ndarray, y_pred: np.ndarray) -> MetricFunction:
    """Which accuracy "accuracy" means for these shapes
    (Keras 3's is_binary_or_sparse_categorical)."""
    y_true = np.asarray(y_true)
    if y_pred.shape[-1] == 1:
        return binary_accuracy
    if y_true.ndim < y_pred.ndim or (y_true.shape[-1] == 1 and y_pred.shape[-1] > 1):
        return sparse_categorical_accuracy
    return categorical_accuracy


def resolved_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    return accuracy_for(y_true, y_pred)(y_true, y_pred)


# -------------------------------------------------------------------- classes
class Metric:
    """A Keras metric: ``function`` (per-position values) under ``name`` (the key in the logs).

    ``batch_totals(y_true, y_pred)``: each sample's values averaged over its non-batch axes,
    summed over the batch, and the number of samples (keras.metrics.MeanMetricWrapper).
    """

    default_name = "metric"

    def __init__(self, name: str | None = None, dtype: Any = None, **arguments: Any) -> None:
        self.name = name or self.default_name
        self.arguments = arguments

    def function(self, y_true: np.ndarray, y_pred: np.ndarray, **arguments: Any) -> np.ndarray:
        raise NotImplementedError

    def per_sample(self, y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
        """One value per sample: (N,)."""
        values = np.asarray(self.function(y_true, y_pred, **self.arguments), dtype=np.float64)
        return values.reshape(len(values), -1).mean(axis=1) if values.ndim > 1 else values

    def batch_totals(self, y_true: np.ndarray, y_pred: np.ndarray) -> tuple[float, int]:
        values = self.per_sample(y_true, y_pred)
        return float(values.sum()), len(values)

    def get_config(self) -> dict[str, Any]:
        return {"name": self.name, **self.arguments}


def metric_class(
    class_name: str, function: MetricFunction, default_name: str, base: type[Metric] = Metric
) -> type[Metric]:
    """A keras.metrics class: the function under its default name
    (the wrappers differ in nothing else)."""
    doc = f"keras.metrics.{class_name}: {(function.__doc__ or '').split(':', 1)[-1].strip()}"
    return type(
        class_name,
        (base,),
        {"function": staticmethod(function), "default_name": default_name, "__doc__": doc},
    )


class AccuracyByShape(Metric):
    """What compile(metrics=["accuracy"]) makes: binary, sparse or categorical accuracy chosen from
    the shapes of each batch, as Keras 3 does (see the module notes)."""

    default_name = "accuracy"
    function = staticmethod(resolved_accuracy)


class BinaryAccuracy(Metric):
    """keras.metrics.BinaryAccuracy(threshold=0.5): y_pred > threshold against the 0/1 targets."""

    default_name = "binary_accuracy"
    function = staticmethod(binary_accuracy)

    def __init__(self, name: str | None = None, dtype: Any = None, threshold: float = 0.5) -> None:
        super().__init__(name, dtype, threshold=float(threshold))


class TopKCategoricalAccuracy(Metric):
    """keras.metrics.TopKCategoricalAccuracy(k=5): the true class among the k largest outputs."""

    default_name = "top_k_categorical_accuracy"
    function = staticmethod(top_k_categorical_accuracy)

    def __init__(self, k: int = 5, name: str | None = None, dtype: Any = None) -> None:
        super().__init__(name, dtype, k=int(k))


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    """keras.metrics.SparseTopKCategoricalAccuracy(k=5): integer labels among the k largest
    outputs."""

    default_name = "sparse_top_k_categorical_accuracy"
    function = staticmethod(sparse_top_k_categorical_accuracy)


Accuracy = metric_class("Accuracy", accuracy, "accuracy")
CategoricalAccuracy = metric_class(
    "CategoricalAccuracy", categorical_accuracy, "categorical_accuracy"
)
SparseCategoricalAccuracy = metric_class(
    "SparseCategoricalAccuracy", sparse_categorical_accuracy, "sparse_categorical_accuracy"
)
MeanSquaredError = metric_class("MeanSquaredError", mean_squared_error, "mean_squared_error")
MeanAbsoluteError = metric_class("MeanAbsoluteError", mean_absolute_error, "mean_absolute_error")


class CrossentropyMetric(Metric):
    """The mean of a cross-entropy loss as a metric (keras.metrics.CategoricalCrossentropy, ...)."""

    def __init__(
        self,
        name: str | None = None,
        dtype: Any = None,
        from_logits: bool = False,
        **arguments: Any,
    ) -> None:
        super().__init__(name, dtype, from_logits=bool(from_logits), **arguments)


CategoricalCrossentropy = metric_class(
    "CategoricalCrossentropy",
    losses.categorical_crossentropy,
    "categorical_crossentropy",
    CrossentropyMetric,
)
SparseCategoricalCrossentropy = metric_class(
    "SparseCategoricalCrossentropy",
    losses.sparse_categorical_crossentropy,
    "sparse_categorical_crossentropy",
    CrossentropyMetric,
)
BinaryCrossentropy = metric_class(
    "BinaryCrossentropy", losses.binary_crossentropy, "binary_crossentropy", CrossentropyMetric
)


# ------------------------------------------------------------------- registry
METRIC_CLASSES: tuple[type[Metric], ...] = (
    Accuracy,
    BinaryAccuracy,
    CategoricalAccuracy,
    SparseCategoricalAccuracy,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy,
    MeanSquaredError,
    MeanAbsoluteError,
    CategoricalCrossentropy,
    SparseCategoricalCrossentropy,
    BinaryCrossentropy,
)
# Keras 3's string names: each class's snake_case name, its class name, and the aliases of
# keras.metrics.ALL_OBJECTS_DICT; "accuracy"/"acc" are resolved from the shapes instead.
METRICS: dict[str, type[Metric]] = {
    **{cls.default_name: cls for cls in METRIC_CLASSES if cls is not Accuracy},
    "mse": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "bce": BinaryCrossentropy,
}
METRIC_NAMES = {
    **METRICS,
    **{cls.__name__.lower(): cls for cls in METRIC_CLASSES if cls is not Accuracy},
}
METRIC_FUNCTIONS: dict[MetricFunction, type[Metric]] = {
    binary_accuracy: BinaryAccuracy,
    categorical_accuracy: CategoricalAccuracy,
    sparse_categorical_accuracy: SparseCategoricalAccuracy,
    top_k_categorical_accuracy: TopKCategoricalAccuracy,
    sparse_top_k_categorical_accuracy: SparseTopKCategoricalAccuracy,
    accuracy: Accuracy,
    mean_squared_error: MeanSquaredError,
    mean_absolute_error: MeanAbsoluteError,
    losses.categorical_crossentropy: CategoricalCrossentropy,
    losses.sparse_categorical_crossentropy: SparseCategoricalCrossentropy,
    losses.binary_crossentropy: BinaryCrossentropy,
}

MetricIdentifier = str | Metric | type[Metric] | MetricFunction


def get(identifier: MetricIdentifier, loss: losses.Loss | None = None) -> Metric:
    """A metric as ``compile(metrics=[...])`` takes it: a name ("accuracy", "acc", "mse",
    "sparse_categorical_accuracy", ...), a class, an instance, or one of Keras's metric or loss
    functions. Its ``name`` is Keras 3's log key: the string itself, else the instance's name,
    else the function's name. ``loss`` is not needed: Keras 3 resolves "accuracy" from the data's
    shapes (see the module notes); it is accepted so a model may pass it.
    """
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        return by_name(identifier)
    if isinstance(identifier, functools.partial) and identifier.func in METRIC_FUNCTIONS:
        return METRIC_FUNCTIONS[identifier.func](**identifier.keywords)
    if callable(identifier) and identifier in METRIC_FUNCTIONS:
        return METRIC_FUNCTIONS[identifier](name=identifier.__name__)
    what = getattr(identifier, "__name__", type(identifier).__name__)
    raise UnsupportedKerasFeature(
        f"metric {what!r} is not supported: cnnlab computes only its own metrics, "
        f"not Python code; use one of {supported()}"
    )


def by_name(name: str) -> Metric:
    """The metric a string names, logged under that string (as Keras 3 does)."""
    if name.lower() in ("accuracy", "acc"):
        return AccuracyByShape(name=name)
    cls = METRIC_NAMES.get(name.lower())
    if cls is None:
        raise UnsupportedKerasFeature(f"unknown metric {name!r}; cnnlab supports {supported()}")
    return cls(name=name)


def supported() -> str:
    return ", ".join(["accuracy", "acc", *METRICS])
