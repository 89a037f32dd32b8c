"""A seeded, stratified sample of a split's rows: what Hyperband searches on when the data is large.

The tune step compares configurations, it does not produce the model: a sample that keeps each
class's share (classification) or each decile of the label (regression) ranks them as the whole
split would, at a fraction of the cost, and the final training then uses every training row
(``tuning.sample_rows``; docs/tuning.md says how its default was measured).

Allocation: each stratum gets its share of the sample rounded down, every stratum at least one
row, and the rows left over go to the strata with the largest remainders. Rows are drawn without
replacement by ``numpy.random.default_rng(seed)`` and kept in their original order, so the same
split, size and seed always give the same sample, in every process of a distributed search.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

# Regression labels are stratified by deciles: fine enough to keep the tails, coarse enough that
# each bin holds many rows at any sample size worth taking.
LABEL_BINS = 10
STRATA_CLASSES, STRATA_DECILES, STRATA_NONE = "class", "label decile", "none (every row)"

Arrays = tuple[dict[str, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class SampleDescription:
    """How many rows a split had and how many were kept, and by what they were stratified."""

    rows: int
    kept: int
    strata: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def strata_of(targets: np.ndarray, classification: bool) -> np.ndarray:
    """Each row's stratum: its class id, or the decile of its label (ties share a bin)."""
    if classification:
        return np.asarray(targets).reshape(-1)
    values = np.asarray(targets, dtype=float).reshape(-1)
    edges = np.unique(np.quantile(values, np.linspace(0, 1, LABEL_BINS + 1)[1:-1]))
    return np.digitize(values, edges)


def allocation(counts: np.ndarray, rows: int) -> np.ndarray:
    """Rows to draw from each stratum: proportional, at least one each, summing to ``rows``."""
    quota = counts * rows / counts.sum()
    take = np.minimum(counts, np.maximum(np.floor(quota).astype(int), 1))
    while take.sum() > rows:  # the at-least-one rule overshot: trim the largest takes
        take[np.argmax(take)] -= 1
    remainders = np.where(take < counts, quota - take, -np.inf)
    for index in np.argsort(-remainders, kind="stable")[: max(0, rows - int(take.sum()))]:
        take[index] += 1
    return take


def stratified_indices(strata: np.ndarray, rows: int, seed: int) -> np.ndarray:
    """Sorted indices of ``rows`` rows drawn by stratum; every index when ``rows`` is 0 or covers them all."""
    total = len(strata)
    if rows <= 0 or rows >= total:
        return np.arange(total)
    _, inverse, counts = np.unique(strata, return_inverse=True, return_counts=True)
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(inverse == index), size=int(size), replace=False)
              for index, size in enumerate(allocation(counts, rows)) if size]
    return np.sort(np.concatenate(chosen))


def sample_arrays(arrays: Arrays, rows: int, seed: int, classification: bool) -> tuple[Arrays, SampleDescription]:
    """At most ``rows`` rows of a split's inputs and targets (0: all of them), stratified and seeded."""
    inputs, targets = arrays
    total = len(targets)
    if rows <= 0 or rows >= total:
        return arrays, SampleDescription(total, total, STRATA_NONE)
    kept = stratified_indices(strata_of(targets, classification), rows, seed)
    sampled = ({name: values[kept] for name, values in inputs.items()}, targets[kept])
    return sampled, SampleDescription(total, len(kept), STRATA_CLASSES if classification else STRATA_DECILES)
