"""Bootstrap confidence intervals: of each test metric, and of two models' difference on the same rows.

The test rows are resampled with replacement (seeded), each metric is recomputed from the
model's fixed outputs with every row counted as often as the resample holds it, and the
interval is the 2.5th to 97.5th percentile of those values (the percentile bootstrap). The
paired form gives both models the same resamples, so the rows both get right or both get
wrong cancel out and only their disagreements move the difference: that is what makes a
comparison on a few dozen rows mean anything.

Known limit of the percentile bootstrap: a metric with no errors on the test rows (accuracy
1.0 on 52 rows) has the interval [1.0, 1.0]; the rows cannot show what they do not hold.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

CONFIDENCE = 0.95
# 1,000 resamples put the 2.5th percentile on the 25th value: steady to about 0.002 on 50-row splits.
RESAMPLES = 1000
# Above ROW_BUDGET / RESAMPLES rows (30,000) fewer resamples, never under MIN_RESAMPLES: each costs
# O(rows), and on large test sets the interval is narrow anyway. 150,000 binary rows: about 0.7 s.
ROW_BUDGET = 30_000_000
MIN_RESAMPLES = 200
# An interval is given when at least this share of the resamples define the metric (ROC AUC is
# undefined on a resample that holds one class only); otherwise it is NaN to NaN.
DEFINED_SHARE = 0.9


class Scores(Protocol):
    """Fixed predictions that can be scored under row weights
    (:class:`tunepipe.evaluation.metrics.ClassificationScores`, ``RegressionScores``)."""

    @property
    def rows(self) -> int: ...

    def metrics(self, weights: np.ndarray | None = None, names: frozenset[str] | None = None
                ) -> dict[str, float]: ...


def resamples_for(rows: int) -> int:
    """How many resamples a test split of ``rows`` rows gets: :data:`RESAMPLES`, fewer on large splits."""
    return int(max(MIN_RESAMPLES, min(RESAMPLES, ROW_BUDGET // max(rows, 1))))


def resample_weights(rows: int, seed: int) -> Iterator[np.ndarray]:
    """Each resample as row counts (how often each row was drawn); the same seed gives the same resamples."""
    generator = np.random.default_rng(seed)
    for _ in range(resamples_for(rows)):
        yield np.bincount(generator.integers(0, rows, rows), minlength=rows).astype(np.float64)


def percentile_interval(values: np.ndarray) -> tuple[float, float]:
    """The central :data:`CONFIDENCE` share of ``values``; NaN to NaN when too few are defined."""
    finite = values[np.isfinite(values)]
    if len(finite) == 0 or len(finite) < DEFINED_SHARE * len(values):
        return float("nan"), float("nan")
    tail = (1.0 - CONFIDENCE) / 2 * 100
    low, high = np.percentile(finite, [tail, 100 - tail])
    return float(low), float(high)


def metric_intervals(scores: Scores, seed: int) -> dict[str, list[float]]:
    """``{metric: [low, high]}``: the 95 % percentile-bootstrap interval of each test metric."""
    samples = [scores.metrics(weights) for weights in resample_weights(scores.rows, seed)]
    return {name: list(percentile_interval(np.array([sample[name] for sample in samples])))
            for name in samples[0]}


def bootstrap_settings(rows: int, seed: int) -> dict[str, Any]:
    """What the intervals of a ``rows``-row test split were computed with (recorded beside them)."""
    return {"method": "percentile", "confidence": CONFIDENCE, "resamples": resamples_for(rows), "seed": seed}


@dataclass(frozen=True)
class PairedDifference:
    """Candidate minus champion in one metric, on the same rows, with its paired-bootstrap interval."""

    metric: str
    difference: float
    low: float
    high: float
    resamples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def paired_difference(candidate: Scores, champion: Scores, metric: str, seed: int) -> PairedDifference:
    """The difference ``candidate - champion`` in ``metric`` and its 95 % interval, both models
    scored on every resample of the same rows.

    Raises:
        ValueError: The two were scored on different numbers of rows.
    """
    if candidate.rows != champion.rows:
        raise ValueError(f"paired comparison needs the same rows: {candidate.rows} vs {champion.rows}")
    only = frozenset({metric})
    point = candidate.metrics(names=only)[metric] - champion.metrics(names=only)[metric]
    differences = np.array([candidate.metrics(weights, only)[metric] - champion.metrics(weights, only)[metric]
                            for weights in resample_weights(candidate.rows, seed)])
    low, high = percentile_interval(differences)
    return PairedDifference(metric, float(point), low, high, len(differences))
