"""cnnlab.metrics against values worked out by hand and against scikit-learn itself."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from cnnlab.metrics import agreement, classification_metrics, regression_metrics, roc_auc_ovr


def probabilities_for(predicted: list[int], n_classes: int, confidence: float = 0.8) -> np.ndarray:
    """Rows that put ``confidence`` on the predicted class and share the rest equally."""
    rest = (1.0 - confidence) / (n_classes - 1)
    probs = np.full((len(predicted), n_classes), rest)
    probs[np.arange(len(predicted)), predicted] = confidence
    return probs


# Six samples, three classes; predictions 0 1 1 1 2 0 against truth 0 0 1 1 2 2.
Y_TRUE = np.array([0, 0, 1, 1, 2, 2])
Y_PROB = probabilities_for([0, 1, 1, 1, 2, 0], 3)


def test_hand_computed_scores_of_six_samples() -> None:
    result = classification_metrics(Y_TRUE, Y_PROB, ["a", "b", "c"])
    assert result["n_samples"] == 6
    assert result["accuracy"] == pytest.approx(4 / 6)
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # precision: predicted 0 -> right 1 of 2; predicted 1 -> 2 of 3; predicted 2 -> 1 of 1
    assert [row["precision"] for row in result["per_class"]] == pytest.approx([1 / 2, 2 / 3, 1.0])
    assert [row["recall"] for row in result["per_class"]] == pytest.approx([1 / 2, 1.0, 1 / 2])
    assert [row["f1"] for row in result["per_class"]] == pytest.approx([1 / 2, 0.8, 2 / 3])
    assert [row["support"] for row in result["per_class"]] == [2, 2, 2]
    assert [row["class"] for row in result["per_class"]] == ["a", "b", "c"]
    assert result["precision_macro"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert result["recall_macro"] == pytest.approx((1 / 2 + 1 + 1 / 2) / 3)
    assert result["f1_macro"] == pytest.approx((1 / 2 + 0.8 + 2 / 3) / 3)


def test_result_is_plain_json() -> None:
    result = classification_metrics(Y_TRUE, Y_PROB.astype(np.float32))
    assert json.loads(json.dumps(result)) == result
    assert type(result["accuracy"]) is float
    assert type(result["confusion_matrix"][0][0]) is int
    assert [row["class"] for row in result["per_class"]] == ["0", "1", "2"]


def test_multiclass_auc_is_sklearns_macro_one_vs_rest() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, size=50)
    probs = rng.dirichlet(np.ones(4), size=50)
    expected = roc_auc_score(labels, probs, multi_class="ovr", average="macro")
    assert classification_metrics(labels, probs)["roc_auc_ovr"] == pytest.approx(expected)


def test_float32_rows_that_miss_one_by_rounding_still_score() -> None:
    rng = np.random.default_rng(1)
    labels = np.arange(40) % 4
    probs = (rng.dirichlet(np.ones(4), size=40) * (1 + 3e-5)).astype(np.float32)
    assert 0.0 <= roc_auc_ovr(labels, probs) <= 1.0


def test_binary_auc_uses_the_positive_column() -> None:
    # The classic example: one of the four positive/negative pairs is ranked wrongly.
    labels = np.array([0, 0, 1, 1])
    positive = np.array([0.1, 0.4, 0.35, 0.8])
    two_columns = np.stack([1 - positive, positive], axis=1)
    assert classification_metrics(labels, two_columns)["roc_auc_ovr"] == pytest.approx(0.75)
    assert roc_auc_ovr(labels, positive) == pytest.approx(0.75)  # one sigmoid output


def test_class_absent_from_truth_gives_no_auc_and_a_full_matrix() -> None:
    labels = np.array([0, 0, 1, 1])
    probs = probabilities_for([0, 1, 1, 2], 3)
    result = classification_metrics(labels, probs)
    assert result["roc_auc_ovr"] is None
    assert result["confusion_matrix"] == [[1, 1, 0], [0, 1, 1], [0, 0, 0]]
    assert result["per_class"][2] == {
        "class": "2",
        "precision": 0.0,
        "recall": 0.0,
        "f1": 0.0,
        "support": 0,
    }


@pytest.mark.parametrize(
    ("labels", "probs", "message"),
    [
        (np.array([0, 1]), np.eye(3), "2 labels but y_prob has 3 rows"),
        (np.array([0, 1, 3]), np.eye(3), "outside 0..2"),
        (np.array([0, 1, 2]), np.ones((3, 3, 1)), "shape \\(N, K\\)"),
    ],
)
def test_bad_shapes_are_refused(labels: np.ndarray, probs: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(labels, probs)


def test_class_names_must_match_the_classes() -> None:
    with pytest.raises(ValueError, match="2 names but y_prob has 3 classes"):
        classification_metrics(Y_TRUE, Y_PROB, ["a", "b"])


def test_regression_metrics_by_hand() -> None:
    result = regression_metrics(np.array([1.0, 2.0, 3.0]), np.array([[1.0], [2.0], [4.0]]))
    # errors 0, 0, 1: mse = mae = 1/3; total sum of squares 2, residual 1 -> r2 = 0.5
    assert result == pytest.approx({"mse": 1 / 3, "mae": 1 / 3, "r2": 0.5})
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        regression_metrics(np.zeros(3), np.zeros(2))


def test_agreement_of_two_engines() -> None:
    prob_a = probabilities_for([0, 1, 2, 2], 3, confidence=0.8)
    prob_b = probabilities_for([0, 1, 2, 0], 3, confidence=0.7)
    result = agreement(prob_a, prob_b)
    assert result["same_prediction_share"] == pytest.approx(3 / 4)
    # row 4: class 2 drops from 0.8 to 0.15 -> 0.65
    assert result["max_abs_prob_diff"] == pytest.approx(0.65)
    assert agreement(prob_a, prob_a) == {"same_prediction_share": 1.0, "max_abs_prob_diff": 0.0}
    with pytest.raises(ValueError, match="differ in shape"):
        agreement(prob_a, prob_b[:3])
