"""The numpy metrics against scikit-learn (a dev-only reference) on seeded random data."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as sk

from tunepipe.evaluation.metrics import (
    MAX_ROC_POINTS,
    binary_roc_auc,
    classification_metrics,
    per_class_table,
    regression_metrics,
    roc_curve,
    thin_roc_curve,
)

pytestmark = pytest.mark.unit


def _probabilities(rng: np.random.Generator, rows: int, classes: int) -> np.ndarray:
    raw = rng.random((rows, classes)) ** 3
    return raw / raw.sum(axis=1, keepdims=True)


@pytest.mark.parametrize(("classes", "seed"), [(2, 0), (3, 1), (5, 2)])
def test_classification_metrics_match_scikit_learn(classes: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    y_true = rng.integers(0, classes, 200)
    probabilities = _probabilities(rng, 200, classes)
    y_pred = probabilities.argmax(axis=1)
    ours = classification_metrics(y_true, probabilities)
    assert ours["accuracy"] == pytest.approx(sk.accuracy_score(y_true, y_pred))
    for name, function in (("precision", sk.precision_score), ("recall", sk.recall_score), ("f1", sk.f1_score)):
        assert ours[name] == pytest.approx(function(y_true, y_pred, average="macro", zero_division=0))
        assert ours[f"{name}_weighted"] == pytest.approx(function(y_true, y_pred, average="weighted", zero_division=0))
    expected_auc = (sk.roc_auc_score(y_true, probabilities[:, 1]) if classes == 2
                    else sk.roc_auc_score(y_true, probabilities, multi_class="ovr", average="macro"))
    assert ours["roc_auc"] == pytest.approx(expected_auc)
    assert ours["log_loss"] == pytest.approx(sk.log_loss(y_true, probabilities, labels=list(range(classes))))


def test_per_class_table_matches_scikit_learn() -> None:
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 3, 120)
    probabilities = _probabilities(rng, 120, 3)
    precision, recall, f1, support = sk.precision_recall_fscore_support(
        y_true, probabilities.argmax(axis=1), labels=[0, 1, 2], zero_division=0)
    rows = per_class_table(y_true, probabilities, ["a", "b", "c"])
    assert [row["class"] for row in rows] == ["a", "b", "c"]
    np.testing.assert_allclose([row["precision"] for row in rows], precision)
    np.testing.assert_allclose([row["recall"] for row in rows], recall)
    np.testing.assert_allclose([row["f1"] for row in rows], f1)
    assert [row["support"] for row in rows] == support.tolist()


def test_roc_curve_matches_scikit_learn() -> None:
    rng = np.random.default_rng(4)
    positive = rng.integers(0, 2, 80).astype(bool)
    scores = np.round(rng.random(80), 1)  # many ties
    fpr, tpr, thresholds = roc_curve(positive, scores)
    sk_fpr, sk_tpr, sk_thresholds = sk.roc_curve(positive, scores, drop_intermediate=False)
    np.testing.assert_allclose(fpr, sk_fpr)
    np.testing.assert_allclose(tpr, sk_tpr)
    np.testing.assert_allclose(thresholds[1:], sk_thresholds[1:])
    assert thresholds[0] == pytest.approx(scores.max() + 1) and np.isfinite(thresholds).all()
    assert np.trapezoid(tpr, fpr) == pytest.approx(sk.roc_auc_score(positive, scores))


def test_log_loss_of_a_confident_mistake_is_finite() -> None:
    scores = classification_metrics(np.array([0, 1]), np.array([[0.0, 1.0], [0.0, 1.0]]))
    assert scores["log_loss"] == pytest.approx(-np.log(1e-15) / 2)


def test_regression_metrics_match_scikit_learn() -> None:
    rng = np.random.default_rng(5)
    y_true = rng.normal(50, 10, 150)
    y_pred = y_true + rng.normal(0, 3, 150)
    ours = regression_metrics(y_true, y_pred)
    assert ours["mae"] == pytest.approx(sk.mean_absolute_error(y_true, y_pred))
    assert ours["rmse"] == pytest.approx(np.sqrt(sk.mean_squared_error(y_true, y_pred)))
    assert ours["r2"] == pytest.approx(sk.r2_score(y_true, y_pred))
    assert ours["mape"] == pytest.approx(sk.mean_absolute_percentage_error(y_true, y_pred))


def test_mape_leaves_out_zero_truths() -> None:
    scores = regression_metrics(np.array([0.0, 2.0, 4.0]), np.array([1.0, 3.0, 3.0]))
    assert scores["mape"] == pytest.approx((0.5 + 0.25) / 2)
    assert np.isnan(regression_metrics(np.array([0.0, 0.0]), np.array([1.0, 1.0]))["mape"])


@pytest.mark.parametrize("rows", [1, 7, 5_000])
def test_roc_auc_and_curve_match_scikit_learn_with_and_without_ties(rows: int) -> None:
    rng = np.random.default_rng(rows)
    positive = np.arange(rows) % 2 == 0 if rows > 1 else np.array([True])
    for scores in (rng.random(rows), np.round(rng.random(rows), 2)):
        fpr, tpr, _ = roc_curve(positive, scores)
        if rows > 1:
            assert binary_roc_auc(positive, scores) == pytest.approx(sk.roc_auc_score(positive, scores))
            sk_fpr, sk_tpr, _ = sk.roc_curve(positive, scores, drop_intermediate=False)
            np.testing.assert_allclose(fpr, sk_fpr)
            np.testing.assert_allclose(tpr, sk_tpr)


def test_a_million_distinct_scores_are_scored_and_thinned() -> None:
    """Not timed: the former quadratic versions (a pass over the rows per distinct score) took
    minutes here; the benchmark measures the time."""
    rng = np.random.default_rng(0)
    positive, scores = rng.random(1_000_000) < 0.3, rng.random(1_000_000)
    auc = binary_roc_auc(positive, scores)
    fpr, tpr, _ = thin_roc_curve(*roc_curve(positive, scores))
    assert auc == pytest.approx(0.5, abs=0.01) and len(fpr) <= MAX_ROC_POINTS
    assert np.trapezoid(tpr, fpr) == pytest.approx(auc, abs=0.01)


def test_the_thinned_curve_keeps_its_ends_and_stays_close_to_the_whole_one() -> None:
    rng = np.random.default_rng(1)
    positive = rng.random(20_000) < 0.4
    scores = positive * 0.3 + rng.random(20_000)
    fpr, tpr, thresholds = roc_curve(positive, scores)
    thin_fpr, thin_tpr, thin_thresholds = thin_roc_curve(fpr, tpr, thresholds)
    assert len(thin_fpr) <= MAX_ROC_POINTS < len(fpr)
    assert (thin_fpr[0], thin_tpr[0], thin_fpr[-1], thin_tpr[-1]) == (0.0, 0.0, 1.0, 1.0)
    assert thin_thresholds[0] == thresholds[0] and np.all(np.diff(thin_thresholds) < 0)
    assert np.all(np.diff(thin_fpr) >= 0) and np.all(np.diff(thin_tpr) >= 0)
    # Each kept point is a point of the whole curve, and the area barely moves.
    whole = dict(zip(thresholds, zip(fpr, tpr, strict=True), strict=True))
    assert all(whole[t] == (f, r) for t, f, r in zip(thin_thresholds, thin_fpr, thin_tpr, strict=True))
    assert np.trapezoid(thin_tpr, thin_fpr) == pytest.approx(np.trapezoid(tpr, fpr), abs=2e-3)
    # Straight runs alone are dropped without any loss.
    steps = roc_curve(np.array([True, True, False, False]), np.array([0.9, 0.8, 0.2, 0.1]))
    assert [list(part) for part in thin_roc_curve(*steps)][:2] == [[0.0, 0.0, 1.0], [0.0, 1.0, 1.0]]
