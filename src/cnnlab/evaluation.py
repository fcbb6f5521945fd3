"""One Evaluation: a model's test predictions and every test metric cnnlab reports, made once.

Every path that scores a trained model builds an :class:`Evaluation` and reads its figures
from it: ``cnnlab train`` and ``cnnlab evaluate`` (``metrics.json``), ``cnnlab compare``
(both engines in ``comparison.json``), ``cnnlab compare PROGRAM.py``, ``cnnlab approx`` and
every study trial (the study's database). The run's figures (confusion matrices, per-class
scores) are drawn from the same object, so a report cannot show a number that
``metrics.json`` does not hold.

The metrics themselves are scikit-learn's (``cnnlab.metrics``); this module decides which
ones a test set gets and names them as ``metrics.json`` does (design.md):

- a classifier: ``test_loss`` (sparse categorical cross-entropy of the probabilities),
  ``test_accuracy``, ``accuracy``, ``precision_macro``, ``recall_macro``, ``f1_macro``,
  ``roc_auc_ovr``, ``confusion_matrix``, ``per_class``, ``n_samples``;
- a regressor: ``test_loss`` (the mean squared error), ``mse``, ``mae``, ``r2``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

PREDICT_BATCH = 32  # Keras's predict default: 2.5x the images per second of batches of 1000
# the scores a classifier's summary shows first: the CLI's table, a study's stored trial
HEADLINE = (
    "test_accuracy",
    "test_loss",
    "precision_macro",
    "recall_macro",
    "f1_macro",
    "roc_auc_ovr",
)


@dataclass(frozen=True)
class Evaluation:
    """A model's outputs on a test set and every metric of them (``scores``).

    ``y_true``: ``(N,)`` integer labels (classifier) or ``(N,)``/``(N, 1)`` targets;
    ``output``: ``(N, K)`` class probabilities or ``(N, 1)`` predicted values."""

    kind: str  # "classification" | "regression"
    y_true: np.ndarray
    output: np.ndarray
    class_names: tuple[str, ...]
    scores: dict[str, Any]

    @classmethod
    def of_classifier(
        cls, y_true: np.ndarray, y_prob: np.ndarray, class_names: list[str] | None = None
    ) -> Evaluation:
        """Every classification metric of probabilities ``y_prob`` (N, K) against ``y_true``."""
        from .engine import losses
        from .metrics import as_probability_matrix, classification_metrics  # scikit-learn

        scores = classification_metrics(y_true, y_prob, class_names)
        probs = as_probability_matrix(y_prob)  # a sigmoid's (N, 1) as two columns
        loss = losses.get("sparse_categorical_crossentropy")(np.asarray(y_true), probs)
        names = tuple(row["class"] for row in scores["per_class"])
        return cls(
            "classification",
            np.asarray(y_true),
            np.asarray(y_prob),
            names,
            {"test_loss": float(loss), "test_accuracy": scores["accuracy"], **scores},
        )

    @classmethod
    def of_regressor(cls, y_true: np.ndarray, y_pred: np.ndarray) -> Evaluation:
        """Mean squared and absolute error and R² of predicted values against ``y_true``."""
        from .metrics import regression_metrics

        scores = regression_metrics(y_true, y_pred)
        return cls(
            "regression",
            np.asarray(y_true),
            np.asarray(y_pred),
            (),
            {"test_loss": scores["mse"], **scores},
        )

    @property
    def y_prob(self) -> np.ndarray:
        """The class probabilities (N, K) of a classifier."""
        if self.kind != "classification":
            raise ValueError("a regression has no class probabilities")
        return self.output

    @property
    def predicted(self) -> np.ndarray:
        """The predicted class of each sample (N,), or the predicted values of a regression."""
        if self.kind == "classification":
            return self.output.argmax(axis=1)
        return self.output.reshape(-1)

    @property
    def confusion_matrix(self) -> np.ndarray:
        """(K, K) counts, true classes on rows, predicted on columns."""
        return np.asarray(self.scores["confusion_matrix"])

    def metrics(self, **facts: Any) -> dict[str, Any]:
        """The ``metrics.json`` of this evaluation: the scores, the class names of a classifier,
        then the facts of the run given by the caller (params, epoch_seconds, engine, ...)."""
        names = {"class_names": list(self.class_names)} if self.class_names else {}
        return {**self.scores, **names, **facts}


def evaluate_model(
    model: Any, x_test: Any, y_test: np.ndarray, class_names: list[str] | None = None
) -> Evaluation:
    """Predict the test set with a trained engine model (batches of 32, as Keras) and score it
    as a classifier."""
    return Evaluation.of_classifier(
        y_test, model.predict(x_test, batch_size=PREDICT_BATCH, verbose=0), class_names
    )


def run_facts(model: Any, epoch_seconds: list[float], engine: str, dataset: str) -> dict[str, Any]:
    """The facts of a training run that ``metrics.json`` records beside the scores."""
    return {
        "params": int(model.count_params()),
        "epoch_seconds": [float(s) for s in epoch_seconds],
        "engine": engine,
        "dataset": dataset,
    }
