"""The blessing decision against thresholds, and force_export."""

import math

import pytest

from tunepipe.blessing import bless
from tunepipe.errors import ConfigError

pytestmark = pytest.mark.unit


def test_no_thresholds_blesses_every_model() -> None:
    decision = bless({"accuracy": 0.1}, {}, "classification", force_export=False)
    assert decision.blessed and decision.publish and not decision.forced
    assert decision.reason == "no thresholds configured"


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
    ("metric", "task"), [("rmse", "classification"), ("accuracy", "regression"), ("f2", "regression")]
)
def test_threshold_on_a_metric_the_task_does_not_report_is_an_error(metric, task) -> None:
    with pytest.raises(ConfigError, match=metric):
        bless({"accuracy": 1.0, "rmse": 1.0}, {metric: 1.0}, task, force_export=False)
