"""The blessing decision: may this model be published?

A candidate is blessed when every configured threshold holds on the test split and it passes
the champion rule in the task's main metric (accuracy for classification, RMSE for
regression), both models scored on the same test rows in the same step. The comparison is
paired: the difference candidate - champion gets a 95 % interval from a paired bootstrap
(:mod:`tunepipe.evaluation.bootstrap`), and

- rule ``not_worse`` (default) refuses the candidate only when the whole interval lies on the
  worse side of ``champion_margin``: worse with 95 % confidence by more than the margin, so a
  challenger of equal quality is never refused by one row of noise;
- rule ``better`` publishes only a candidate whose whole interval lies on the better side of 0
  (better with 95 % confidence; the margin plays no part).

With no champion yet, thresholds alone decide. Thresholds map a
metric name to a bound; the metric's direction decides which side is good (accuracy 0.9
means at least 0.9, rmse 5 means at most 5). ``force_export`` publishes a model that failed,
and the override is recorded wherever the decision is.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tunepipe.config.thresholds import HIGHER_IS_BETTER, LOWER_IS_BETTER, validate_thresholds
from tunepipe.evaluation.bootstrap import PairedDifference
from tunepipe.storage import atomic


@dataclass(frozen=True)
class Check:
    """One threshold compared with the measured value."""

    metric: str
    value: float
    bound: float
    direction: str  # "min" (value must be >= bound) or "max" (value must be <= bound)
    passed: bool


@dataclass(frozen=True)
class ChampionComparison:
    """The candidate against the current champion, in the main metric, on the same rows.

    ``difference`` is candidate - champion in the metric's own units, ``low`` and ``high`` its
    95 % paired-bootstrap interval. ``error`` says why the champion could not be scored (e.g. it
    needs a column the data no longer has); such a comparison fails, so a changed schema needs
    ``force_export``.
    """

    version: int
    metric: str
    candidate: float
    champion: float
    margin: float
    passed: bool
    champion_metrics: dict[str, float] = field(default_factory=dict)
    error: str | None = None
    rule: str = "not_worse"
    difference: float = float("nan")
    low: float = float("nan")
    high: float = float("nan")

    def describe(self) -> str:
        if self.error:
            return f"champion version {self.version} could not be scored: {self.error}"
        if self.rule == "better":
            verdict = "better than" if self.passed else "not shown better than"
            condition = "with 95% confidence"
        else:
            verdict = "not shown worse than" if self.passed else "worse than"
            condition = f"by more than margin {self.margin:g} with 95% confidence"
        return (f"{verdict} champion version {self.version} {condition}: {self.metric} {self.candidate:.4f} vs "
                f"{self.champion:.4f}, difference {self.difference:+.4f} "
                f"(95% CI {self.low:+.4f} to {self.high:+.4f})")


def improvement_interval(metric: str, low: float, high: float) -> tuple[float, float]:
    """A difference's interval turned so that larger means better (RMSE and other losses flip)."""
    return (-high, -low) if metric in LOWER_IS_BETTER else (low, high)


def compare_with_champion(
    candidate: dict[str, float], champion: dict[str, float], paired: PairedDifference, version: int,
    margin: float, rule: str = "not_worse",
) -> ChampionComparison:
    """Decides by ``rule`` from the paired difference's interval (see the module docstring).

    Args:
        candidate, champion: Each model's metrics on the test rows.
        paired: Candidate - champion in the main metric, with its interval.
        version: The champion's version.
        margin: How far worse (in the metric's units) rule ``not_worse`` tolerates.
        rule: ``not_worse`` or ``better``.
    """
    worst, best = improvement_interval(paired.metric, paired.low, paired.high)
    passed = worst > 0 if rule == "better" else best >= -margin  # NaN never passes
    return ChampionComparison(
        version, paired.metric, float(candidate[paired.metric]), float(champion[paired.metric]), margin,
        bool(passed), dict(champion), None, rule, paired.difference, paired.low, paired.high,
    )


@dataclass(frozen=True)
class Blessing:
    """The decision, the numbers compared, and why."""

    blessed: bool
    forced: bool
    checks: list[Check] = field(default_factory=list)
    champion: ChampionComparison | None = None

    @property
    def publish(self) -> bool:
        return self.blessed or self.forced

    @property
    def reason(self) -> str:
        failed = [c for c in self.checks if not c.passed]
        if not self.checks:
            parts = ["no thresholds configured"]
        elif not failed:
            parts = ["all thresholds met: " + ", ".join(_describe(c) for c in self.checks)]
        else:
            parts = ["failed thresholds: " + ", ".join(_describe(c) for c in failed)]
        parts.append(self.champion.describe() if self.champion else "no champion yet")
        verdict = "; ".join(parts)
        return verdict + ("; exported anyway because force_export is set" if self.forced else "")

    def to_dict(self) -> dict:
        return {**asdict(self), "publish": self.publish, "reason": self.reason}

    def save(self, path: str | Path) -> None:
        atomic.write_text(path, json.dumps(self.to_dict(), indent=2))


def _describe(check: Check) -> str:
    relation = ">=" if check.direction == "min" else "<="
    return f"{check.metric} {check.value:.4f} {relation} {check.bound:g}"


def bless(
    metrics: dict[str, float], thresholds: dict[str, float], task: str, force_export: bool,
    champion: ChampionComparison | None = None,
) -> Blessing:
    """Compares test metrics with thresholds and the champion (if any).

    With no thresholds and no champion, every model is blessed.
    """
    validate_thresholds(thresholds, task)
    checks = []
    for metric, bound in sorted(thresholds.items()):
        value = metrics[metric]
        direction = "min" if metric in HIGHER_IS_BETTER else "max"
        passed = value >= bound if direction == "min" else value <= bound
        checks.append(Check(metric, float(value), float(bound), direction, bool(passed)))
    blessed = all(check.passed for check in checks) and (champion is None or champion.passed)
    return Blessing(blessed=blessed, forced=force_export and not blessed, checks=checks, champion=champion)
