"""The blessing decision: may this model be published?

A candidate is blessed when every configured threshold holds on the test split. Thresholds
map a metric name to a bound; the metric's direction decides which side is good (accuracy
0.9 means at least 0.9, rmse 5 means at most 5). ``force_export`` publishes a model that
failed, and the override is recorded wherever the decision is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tunepipe.errors import ConfigError

HIGHER_IS_BETTER = frozenset({"accuracy", "precision", "recall", "f1", "roc_auc", "r2"})
LOWER_IS_BETTER = frozenset({"mae", "rmse"})


@dataclass(frozen=True)
class Check:
    """One threshold compared with the measured value."""

    metric: str
    value: float
    bound: float
    direction: str  # "min" (value must be >= bound) or "max" (value must be <= bound)
    passed: bool


@dataclass(frozen=True)
class Blessing:
    """The decision, the numbers compared, and why."""

    blessed: bool
    forced: bool
    checks: list[Check] = field(default_factory=list)

    @property
    def publish(self) -> bool:
        return self.blessed or self.forced

    @property
    def reason(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        if not self.checks:
            return "no thresholds configured"
        if not failed:
            return "all thresholds met: " + ", ".join(_describe(c) for c in self.checks)
        verdict = "failed thresholds: " + ", ".join(_describe(c) for c in failed)
        return verdict + ("; exported anyway because force_export is set" if self.forced else "")

    def to_dict(self) -> dict:
        return {**asdict(self), "publish": self.publish, "reason": self.reason}

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))


def _describe(check: Check) -> str:
    relation = ">=" if check.direction == "min" else "<="
    return f"{check.metric} {check.value:.4f} {relation} {check.bound:g}"


def validate_thresholds(thresholds: dict[str, float], task: str) -> None:
    """Raises :class:`ConfigError` for a metric that the task does not report."""
    known = HIGHER_IS_BETTER | LOWER_IS_BETTER
    reported = {"accuracy", "precision", "recall", "f1", "roc_auc"} if task == "classification" else {
        "mae", "rmse", "r2"}
    for metric in thresholds:
        if metric not in known or metric not in reported:
            raise ConfigError(
                f"threshold on unknown metric {metric!r} for {task} (known: {', '.join(sorted(reported))})"
            )


def bless(metrics: dict[str, float], thresholds: dict[str, float], task: str, force_export: bool) -> Blessing:
    """Compares test metrics with thresholds; with none configured, every model is blessed."""
    validate_thresholds(thresholds, task)
    checks = []
    for metric, bound in sorted(thresholds.items()):
        value = metrics[metric]
        direction = "min" if metric in HIGHER_IS_BETTER else "max"
        passed = value >= bound if direction == "min" else value <= bound
        checks.append(Check(metric, float(value), float(bound), direction, bool(passed)))
    blessed = all(check.passed for check in checks)
    return Blessing(blessed=blessed, forced=force_export and not blessed, checks=checks)
