"""Mergeable column statistics in bounded memory, for data that is read one record batch at a time.

Each sketch is updated batch by batch and two sketches of the same column merge into the
sketch of both (so shards or buckets can be summarised apart). What is exact and what is not:

- :class:`NumericSketch`: count, missing, mean and variance (Chan et al.'s pairwise update,
  in float64), minimum and maximum are **exact**. Quantiles (the median fill, the IQR outlier
  rule) come from a uniform sample of at most :data:`QUANTILE_SAMPLE` values: the ``k`` values
  with the smallest seeded random keys (a bottom-k sample, which merges exactly). By the
  Dvoretzky-Kiefer-Wolfowitz inequality, the sample's empirical distribution is within
  ``epsilon = sqrt(ln(2 / delta) / (2 k))`` of the column's in every rank with probability
  ``1 - delta``: for ``k`` = 20,000 and ``delta`` = 0.01, a quantile asked for at rank ``q`` is a
  value whose true rank lies in ``q +/- 0.0115`` (:func:`rank_error`). Below ``k`` values the
  sample is the whole column and quantiles are exact.
- :class:`CategorySketch`: exact counts of up to :data:`MAX_TRACKED_CATEGORIES` distinct values.
  Past that the rarest half is dropped whenever the table fills (counts of what is kept stay
  exact from the moment it was last admitted), and ``approximate`` is set; a categorical column
  with that many values is an identifier rather than a feature, so the report says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Values kept for quantiles per numeric column: 20,000 float64 values and keys, 320 KB.
QUANTILE_SAMPLE = 20_000
# Distinct values counted exactly per categorical column before the rarest are dropped.
MAX_TRACKED_CATEGORIES = 100_000


def rank_error(sample_size: int, delta: float = 0.01) -> float:
    """The DKW bound: the largest rank error of a quantile from ``sample_size`` uniform draws,
    with probability ``1 - delta`` (default 0.01)."""
    return math.sqrt(math.log(2 / delta) / (2 * sample_size)) if sample_size else 1.0


@dataclass
class NumericSketch:
    """Exact moments and range of a numeric column, and a bottom-k sample for its quantiles.

    Attributes:
        count: Present (non-missing, finite) values.
        missing: Missing values (NaN) seen.
    """

    count: int = 0
    missing: int = 0
    mean: float = 0.0
    m2: float = 0.0  # sum of squared deviations from the mean
    minimum: float = math.inf
    maximum: float = -math.inf
    sample_size: int = QUANTILE_SAMPLE
    keys: np.ndarray = field(default_factory=lambda: np.empty(0))
    values: np.ndarray = field(default_factory=lambda: np.empty(0))

    def update(self, column: pd.Series | np.ndarray, rng: np.random.Generator) -> None:
        """Adds one batch's values; NaN counts as missing, infinities are ignored (ingest handles them)."""
        values = np.asarray(column, dtype=np.float64)
        self.missing += int(np.isnan(values).sum())
        finite = np.isfinite(values)
        present = values[finite]
        if not present.size:
            return
        if present.size == values.size:
            mean = float(present.mean())
            m2 = float(((present - mean) ** 2).sum())
        else:  # summed with zeros in place of the rest, as numpy's nanmean and nanvar (and pandas' mean) sum
            mean = float(np.where(finite, values, 0.0).sum() / present.size)
            m2 = float(np.where(finite, (values - mean) ** 2, 0.0).sum())
        self._merge_moments(present.size, mean, m2, float(present.min()), float(present.max()))
        self._keep_smallest(rng.random(present.size), present)

    def merge(self, other: NumericSketch) -> None:
        """Adds another sketch of the same column (another shard or bucket)."""
        self.missing += other.missing
        if other.count:
            self._merge_moments(other.count, other.mean, other.m2, other.minimum, other.maximum)
            self._keep_smallest(other.keys, other.values)

    def _merge_moments(self, count: int, mean: float, m2: float, minimum: float, maximum: float) -> None:
        if not self.count:  # the first values: taken as they are, so one batch gives numpy's mean bit for bit
            self.count, self.mean, self.m2, self.minimum, self.maximum = count, mean, m2, minimum, maximum
            return
        total = self.count + count
        delta = mean - self.mean
        self.mean += delta * count / total
        self.m2 += m2 + delta * delta * self.count * count / total
        self.count = total
        self.minimum, self.maximum = min(self.minimum, minimum), max(self.maximum, maximum)

    def _keep_smallest(self, keys: np.ndarray, values: np.ndarray) -> None:
        if not self.sample_size:
            return
        keys, values = np.concatenate([self.keys, keys]), np.concatenate([self.values, values])
        if keys.size > self.sample_size:
            keep = np.argpartition(keys, self.sample_size - 1)[: self.sample_size]
            keys, values = keys[keep], values[keep]
        self.keys, self.values = keys, values

    @property
    def variance(self) -> float:
        """Population variance (``ddof=0``, as numpy's ``var``) of the present values."""
        return self.m2 / self.count if self.count else 0.0

    @property
    def exact_quantiles(self) -> bool:
        """Whether every present value is in the sample, so quantiles are exact."""
        return self.values.size == self.count

    def quantile(self, q: float | list[float]) -> Any:
        """Quantile(s) of the present values (linear interpolation, as numpy's default)."""
        return np.quantile(self.values, q) if self.values.size else np.full(np.shape(q), np.nan)

    def with_fill(self, fill: float) -> NumericSketch:
        """The sketch of the column once its missing values are filled with ``fill`` (moments exact;
        the quantile sample unchanged)."""
        filled = NumericSketch(self.count, 0, self.mean, self.m2, self.minimum, self.maximum, self.sample_size,
                               self.keys, self.values)
        if self.missing:
            filled._merge_moments(self.missing, float(fill), 0.0, float(fill), float(fill))
        return filled

    def describe(self) -> dict[str, Any]:
        """What the data report records: exact moments and range, and how exact the quantiles are."""
        return {
            "count": self.count, "missing": self.missing, "mean": self.mean, "std": math.sqrt(self.variance),
            "min": self.minimum, "max": self.maximum, "quantile_sample": int(self.values.size),
            "quantile_rank_error": 0.0 if self.exact_quantiles else rank_error(int(self.values.size)),
        }


@dataclass
class CategorySketch:
    """Counts of a text column's values (``approximate`` once more than the cap were seen)."""

    counts: dict[str, int] = field(default_factory=dict)
    missing: int = 0
    approximate: bool = False
    cap: int = MAX_TRACKED_CATEGORIES

    def update(self, column: pd.Series) -> None:
        """Adds one batch's values (as text); missing values are counted apart."""
        present = column.dropna()
        self.missing += len(column) - len(present)
        self._add(present.astype(str).value_counts().to_dict())

    def merge(self, other: CategorySketch) -> None:
        """Adds another sketch of the same column."""
        self.missing += other.missing
        self.approximate |= other.approximate
        self._add(other.counts)

    def _add(self, counts: dict[Any, int]) -> None:
        for value, count in counts.items():
            self.counts[str(value)] = self.counts.get(str(value), 0) + int(count)
        if len(self.counts) > self.cap:
            kept = sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))[: self.cap // 2]
            self.counts = dict(kept)
            self.approximate = True

    def ordered(self) -> list[tuple[str, int]]:
        """Values by count (most frequent first), then by value: the vocabulary's order."""
        return sorted(self.counts.items(), key=lambda item: (-item[1], item[0]))

    def by_count(self) -> list[tuple[str, int]]:
        """Values by count (most frequent first), ties in the order first counted: on one batch,
        the order of ``pandas.Series.value_counts``, which the schema and the label balance keep."""
        return sorted(self.counts.items(), key=lambda item: -item[1])

    def with_fill(self, fill: str) -> CategorySketch:
        """The sketch once missing values are filled with ``fill``."""
        counts = dict(self.counts)
        if self.missing:
            counts[fill] = counts.get(fill, 0) + self.missing
        return CategorySketch(counts, 0, self.approximate, self.cap)
