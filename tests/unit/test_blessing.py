"""The blessing decision against thresholds, and force_export."""

import math

import pytest

from tunepipe.errors import ConfigError
from tunepipe.evaluation.blessing import bless, compare_with_champion
from tunepipe.evaluation.bootstrap import PairedDifference

pytestmark = pytest.mark.unit


def test_no_thresholds_blesses_every_model() -> None:
    decision = bless({"accuracy": 0.1}, {}, "classification", force_export=False)
    assert decision.blessed and decision.publish and not decision.forced
    assert decision.reason == "no thresholds configured; no champion yet"


@pytest.mark.parametrize(
    ("metrics", "thresholds", "task", "blessed"),
    [
        ({"accuracy": 0.90}, {"accuracy": 0.90}, "classification", True),  # the bound itself passes
        ({"accuracy": 0.89}, {"accuracy": 0.90}, "classification", False),
        ({"rmse": 4.0, "r2": 0.8}, {"rmse": 5.0}, "regression", True),  # lower is better
        ({"rmse": 6.0, "r2": 0.8}, {"rmse": 5.0}, "regression", False),
        ({"rmse": 4.0, "r2": 0.5}, {"rmse": 5.0, "r2": 0.7}, "regression", False),  # every bound must hold
        ({"roc_auc": math.nan}, {"roc_auc": 0.5}, "classification", False),  # NaN never passes
    ],
)
def test_thresholds_follow_each_metric_direction(metrics, thresholds, task, blessed) -> None:
    decision = bless(metrics, thresholds, task, force_export=False)
    assert decision.blessed is blessed and decision.publish is blessed
    assert len(decision.checks) == len(thresholds)


def test_force_export_publishes_a_refused_model_and_says_so() -> None:
    decision = bless({"accuracy": 0.5}, {"accuracy": 0.9}, "classification", force_export=True)
    assert not decision.blessed and decision.forced and decision.publish
    assert "accuracy 0.5000 >= 0.9" in decision.reason and "force_export" in decision.reason
    saved = decision.to_dict()
    assert saved["publish"] is True and saved["checks"][0]["passed"] is False


def test_force_export_is_not_recorded_when_it_changed_nothing() -> None:
    decision = bless({"accuracy": 0.95}, {"accuracy": 0.9}, "classification", force_export=True)
    assert decision.blessed and not decision.forced


@pytest.mark.parametrize(
    ("metric", "task"),
    [("rmse", "classification"), ("accuracy", "regression"), ("f2", "regression"), ("log_loss", "regression")],
)
def test_threshold_on_a_metric_the_task_does_not_report_is_an_error(metric, task) -> None:
    with pytest.raises(ConfigError, match=metric):
        bless({"accuracy": 1.0, "rmse": 1.0}, {metric: 1.0}, task, force_export=False)


def paired(metric: str, candidate: float, champion: float, low: float, high: float) -> PairedDifference:
    return PairedDifference(metric, candidate - champion, low, high, 1000)


@pytest.mark.parametrize(
    ("metric", "candidate", "champion", "low", "high", "margin", "rule", "passed"),
    [
        # not_worse: refused only when the whole interval is worse than -margin
        ("accuracy", 0.90, 0.90, 0.0, 0.0, 0.0, "not_worse", True),  # identical predictions
        ("accuracy", 0.88, 0.90, -0.06, 0.02, 0.0, "not_worse", True),  # worse, but within noise
        ("accuracy", 0.80, 0.90, -0.15, -0.05, 0.0, "not_worse", False),  # worse with confidence
        ("accuracy", 0.80, 0.90, -0.15, -0.05, 0.05, "not_worse", True),  # ... but not by more than the margin
        ("accuracy", 0.80, 0.90, -0.15, -0.06, 0.05, "not_worse", False),
        ("rmse", 5.0, 4.0, 0.5, 1.5, 0.0, "not_worse", False),  # lower is better: a larger rmse is worse
        ("rmse", 5.0, 4.0, 0.5, 1.5, 1.0, "not_worse", True),
        ("rmse", 5.0, 4.0, -0.2, 1.5, 0.0, "not_worse", True),
        # better: published only when the whole interval is better than 0 (the margin plays no part)
        ("accuracy", 0.90, 0.90, 0.0, 0.0, 0.0, "better", False),  # an equal candidate is refused
        ("accuracy", 0.95, 0.90, -0.01, 0.10, 0.5, "better", False),
        ("accuracy", 0.95, 0.90, 0.01, 0.10, 0.0, "better", True),
        ("rmse", 3.0, 4.0, -1.5, -0.5, 0.0, "better", True),
        ("rmse", 3.0, 4.0, -1.5, 0.1, 0.0, "better", False),
        ("accuracy", 0.95, math.nan, math.nan, math.nan, 0.0, "not_worse", False),  # NaN never passes
        ("accuracy", 0.95, math.nan, math.nan, math.nan, 0.0, "better", False),
    ],
)
def test_champion_comparison_decides_from_the_paired_interval(
    metric, candidate, champion, low, high, margin, rule, passed
) -> None:
    task = "classification" if metric == "accuracy" else "regression"
    difference = paired(metric, candidate, champion, low, high)
    comparison = compare_with_champion({metric: candidate}, {metric: champion}, difference, 3, margin, rule)
    assert comparison.passed is passed and comparison.version == 3 and comparison.rule == rule
    recorded = (comparison.difference, comparison.low, comparison.high)
    assert recorded == (difference.difference, low, high) or all(math.isnan(value) for value in recorded[1:])
    decision = bless({metric: candidate}, {}, task, force_export=False, champion=comparison)
    assert decision.blessed is passed
    expected = ("better than" if passed else "not shown better than") if rule == "better" else (
        "not shown worse than" if passed else "worse than")
    assert decision.reason.split("; ")[1].startswith(f"{expected} champion version 3"), decision.reason
    assert "95% CI" in decision.reason


def test_thresholds_and_champion_must_both_pass_and_force_export_overrides() -> None:
    better_than_champion = compare_with_champion(
        {"accuracy": 0.8}, {"accuracy": 0.7}, paired("accuracy", 0.8, 0.7, 0.05, 0.15), 1, 0.0)
    decision = bless({"accuracy": 0.8}, {"accuracy": 0.9}, "classification", False, better_than_champion)
    assert not decision.blessed and "failed thresholds" in decision.reason
    worse = compare_with_champion(
        {"accuracy": 0.8}, {"accuracy": 0.85}, paired("accuracy", 0.8, 0.85, -0.1, -0.01), 1, 0.0)
    forced = bless({"accuracy": 0.8}, {"accuracy": 0.5}, "classification", True, worse)
    assert not forced.blessed and forced.forced and forced.publish
    assert ("worse than champion version 1 by more than margin 0 with 95% confidence: accuracy 0.8000 vs 0.8500, "
            "difference -0.0500 (95% CI -0.1000 to -0.0100)") in forced.reason
    assert forced.to_dict()["champion"]["champion"] == 0.85
    assert forced.to_dict()["champion"]["low"] == -0.1
