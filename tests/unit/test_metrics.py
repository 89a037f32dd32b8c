"""Evaluation metrics against values worked out by hand."""

from __future__ import annotations

import math

import numpy as np
import pytest

from tunepipe.evaluation.metrics import binary_roc_auc, classification_metrics, confusion_matrix, regression_metrics

pytestmark = pytest.mark.unit


def test_confusion_matrix_rows_are_true_classes() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 1, 2, 0, 2])
    expected = np.array([[1, 1, 0], [0, 2, 0], [1, 0, 2]])
    np.testing.assert_array_equal(confusion_matrix(y_true, y_pred, 3), expected)


def test_confusion_matrix_keeps_absent_classes() -> None:
    matrix = confusion_matrix(np.array([0, 0]), np.array([0, 0]), 3)
    assert matrix.shape == (3, 3)
    assert matrix.sum() == 2
    assert matrix[0, 0] == 2


@pytest.mark.parametrize(
    ("positive", "scores", "expected"),
    [
        ([0, 0, 1, 1], [0.1, 0.2, 0.8, 0.9], 1.0),  # perfect
        ([1, 1, 0, 0], [0.1, 0.2, 0.8, 0.9], 0.0),  # reversed
        ([0, 1, 0, 1], [0.5, 0.5, 0.5, 0.5], 0.5),  # all tied
        # pairs (pos, neg): (0.8,0.1) win, (0.8,0.4) win, (0.35,0.1) win, (0.35,0.4) loss -> 3/4
        ([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8], 0.75),
        # one tie among four pairs: (0.5,0.5) counts half; (0.5,0.2) win, (0.9,*) wins -> 3.5/4
        ([0, 1, 0, 1], [0.2, 0.5, 0.5, 0.9], 0.875),
        # 2 positives x 3 negatives; pos 0.6 beats 0.1,0.3 ties 0.6 -> 2.5; pos 0.3 beats 0.1, ties 0.3 -> 1.5
        ([0, 1, 0, 1, 0], [0.1, 0.6, 0.3, 0.3, 0.6], 4.0 / 6.0),
    ],
)
def test_binary_roc_auc_by_hand(positive: list[int], scores: list[float], expected: float) -> None:
    assert binary_roc_auc(np.array(positive), np.array(scores)) == pytest.approx(expected)


def test_binary_roc_auc_one_class_is_nan() -> None:
    assert math.isnan(binary_roc_auc(np.array([1, 1]), np.array([0.2, 0.3])))
    assert math.isnan(binary_roc_auc(np.array([0, 0]), np.array([0.2, 0.3])))


def test_classification_metrics_three_classes_by_hand() -> None:
    y_true = np.array([0, 0, 1, 1, 2, 2])
    probabilities = np.array(
        [
            [0.8, 0.1, 0.1],  # 0 -> 0
            [0.2, 0.7, 0.1],  # 0 -> 1
            [0.1, 0.8, 0.1],  # 1 -> 1
            [0.1, 0.6, 0.3],  # 1 -> 1
            [0.1, 0.2, 0.7],  # 2 -> 2
            [0.5, 0.1, 0.4],  # 2 -> 0
        ]
    )
    scores = classification_metrics(y_true, probabilities)
    # matrix [[1,1,0],[0,2,0],[1,0,1]]: precision (1/2, 2/3, 1), recall (1/2, 1, 1/2)
    precision = (1 / 2 + 2 / 3 + 1) / 3
    recall = (1 / 2 + 1 + 1 / 2) / 3
    f1 = (2 * 0.25 / 1.0 + 2 * (2 / 3) / (5 / 3) + 2 * 0.5 / 1.5) / 3
    assert scores["accuracy"] == pytest.approx(4 / 6)
    assert scores["precision"] == pytest.approx(precision)
    assert scores["recall"] == pytest.approx(recall)
    assert scores["f1"] == pytest.approx(f1)
    # one-vs-rest AUC by hand, 2 positives x 4 negatives per class:
    # class 0: .8 beats all 4, .2 beats the three .1s -> 7/8
    # class 1: .8 beats all 4, .6 beats .1/.2/.1 -> 7/8
    # class 2: .7 and .4 beat all of .1/.1/.1/.3 -> 8/8
    assert scores["roc_auc"] == pytest.approx((7 / 8 + 7 / 8 + 1) / 3)


def test_classification_metrics_binary_uses_positive_column() -> None:
    y_true = np.array([0, 0, 1, 1])
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.3, 0.7], [0.2, 0.8]])
    scores = classification_metrics(y_true, probabilities)
    assert scores["accuracy"] == pytest.approx(0.75)
    # class 0: precision 1, recall 1/2; class 1: precision 2/3, recall 1
    assert scores["precision"] == pytest.approx((1 + 2 / 3) / 2)
    assert scores["recall"] == pytest.approx((0.5 + 1) / 2)
    assert scores["f1"] == pytest.approx((2 / 3 + 0.8) / 2)
    assert scores["roc_auc"] == pytest.approx(1.0)


def test_classes_absent_everywhere_are_left_out_of_macro_averages() -> None:
    y_true = np.array([0, 1, 0, 1])
    probabilities = np.array([[0.9, 0.1, 0.0], [0.1, 0.9, 0.0], [0.8, 0.2, 0.0], [0.3, 0.7, 0.0]])
    scores = classification_metrics(y_true, probabilities)
    assert scores["precision"] == pytest.approx(1.0)
    assert scores["recall"] == pytest.approx(1.0)
    assert scores["f1"] == pytest.approx(1.0)
    assert scores["roc_auc"] == pytest.approx(1.0)


def test_regression_metrics_by_hand() -> None:
    y_true = np.array([1.0, 2.0, 3.0, 4.0])
    y_pred = np.array([1.5, 2.0, 2.0, 5.0])
    scores = regression_metrics(y_true, y_pred)
    # errors 0.5, 0, -1, 1 ; SSE 2.25 ; SST 5
    assert scores["mae"] == pytest.approx(2.5 / 4)
    assert scores["rmse"] == pytest.approx(math.sqrt(2.25 / 4))
    assert scores["r2"] == pytest.approx(1 - 2.25 / 5)


def test_regression_metrics_accepts_column_predictions() -> None:
    y_true = np.array([1.0, 2.0, 3.0])
    scores = regression_metrics(y_true, y_true.reshape(-1, 1).astype(np.float32))
    assert scores == {"mae": 0.0, "rmse": 0.0, "r2": 1.0, "mape": 0.0}


def test_predicting_the_mean_gives_zero_r2() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.normal(3.0, 2.0, size=50)
    scores = regression_metrics(y_true, np.full(50, y_true.mean()))
    assert scores["r2"] == pytest.approx(0.0, abs=1e-12)
    assert scores["mae"] == pytest.approx(float(np.abs(y_true - y_true.mean()).mean()))


def test_constant_truth_r2_is_nan() -> None:
    assert math.isnan(regression_metrics(np.array([2.0, 2.0]), np.array([1.0, 3.0]))["r2"])
