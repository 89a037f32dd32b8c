"""The blessing decision against thresholds, and force_export."""

import math

import pytest

from tunepipe.errors import ConfigError
from tunepipe.evaluation.blessing import bless, compare_with_champion

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


@pytest.mark.parametrize(
    ("task", "candidate", "champion", "margin", "passed"),
    [
        ("classification", {"accuracy": 0.90}, {"accuracy": 0.90}, 0.0, True),  # as good is enough
        ("classification", {"accuracy": 0.89}, {"accuracy": 0.90}, 0.0, False),
        ("classification", {"accuracy": 0.89}, {"accuracy": 0.90}, 0.02, True),  # within the margin
        ("regression", {"rmse": 5.0}, {"rmse": 4.0}, 0.0, False),  # lower is better
        ("regression", {"rmse": 5.0}, {"rmse": 4.0}, 1.0, True),
        ("regression", {"rmse": 3.0}, {"rmse": 4.0}, 0.0, True),
        ("classification", {"accuracy": 0.95}, {"accuracy": math.nan}, 0.0, False),  # NaN never passes
    ],
)
def test_champion_comparison_uses_the_main_metric_and_margin(task, candidate, champion, margin, passed) -> None:
    comparison = compare_with_champion(candidate, champion, 3, task, margin)
    assert comparison.passed is passed and comparison.version == 3
    assert comparison.metric == ("accuracy" if task == "classification" else "rmse")
    decision = bless(candidate, {}, task, force_export=False, champion=comparison)
    assert decision.blessed is passed
    assert ("not worse than champion version 3" in decision.reason) is passed


def test_thresholds_and_champion_must_both_pass_and_force_export_overrides() -> None:
    better_than_champion = compare_with_champion({"accuracy": 0.8}, {"accuracy": 0.7}, 1, "classification", 0.0)
    decision = bless({"accuracy": 0.8}, {"accuracy": 0.9}, "classification", False, better_than_champion)
    assert not decision.blessed and "failed thresholds" in decision.reason
    worse = compare_with_champion({"accuracy": 0.8}, {"accuracy": 0.85}, 1, "classification", 0.0)
    forced = bless({"accuracy": 0.8}, {"accuracy": 0.5}, "classification", True, worse)
    assert not forced.blessed and forced.forced and forced.publish
    assert "worse than champion version 1: accuracy 0.8000 < 0.8500 - margin 0" in forced.reason
    assert forced.to_dict()["champion"]["champion"] == 0.85
