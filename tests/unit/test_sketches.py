"""Mergeable column sketches of the streaming path: exact moments, bottom-k quantiles, category counts."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pandas as pd
import pytest

from tunepipe.data.features import SpecFitter
from tunepipe.data.sketches import CategorySketch, NumericSketch, rank_error

pytestmark = pytest.mark.unit

REL = 1e-9


def _batches(values: np.ndarray, rng: np.random.Generator, pieces: int) -> list[np.ndarray]:
    """``values`` cut at random places into ``pieces`` uneven batches (some may be empty)."""
    cuts = np.sort(rng.integers(0, len(values), pieces - 1))
    return np.split(values, cuts)


def _sketch(batches: list[np.ndarray], seed: int, sample_size: int = 20_000) -> NumericSketch:
    sketch, rng = NumericSketch(sample_size=sample_size), np.random.default_rng(seed)
    for batch in batches:
        sketch.update(batch, rng)
    return sketch


def _assert_moments(sketch: NumericSketch, values: np.ndarray) -> None:
    finite = values[np.isfinite(values)]
    assert sketch.count == finite.size
    assert sketch.missing == int(np.isnan(values).sum())
    assert sketch.mean == pytest.approx(finite.mean(), rel=REL)
    assert sketch.variance == pytest.approx(finite.var(), rel=REL)
    assert sketch.minimum == finite.min() and sketch.maximum == finite.max()


def _messy_values(rows: int, seed: int) -> np.ndarray:
    # a large offset and a small spread: a naive sum-of-squares variance loses every digit here
    rng = np.random.default_rng(seed)
    values = rng.normal(1e6, 3.0, rows)
    values[rng.choice(rows, rows // 20, replace=False)] = np.nan
    values[rng.choice(rows, 7, replace=False)] = np.inf
    values[rng.choice(rows, 5, replace=False)] = -np.inf
    return values


def test_moments_and_range_equal_numpy_over_many_batches() -> None:
    values = _messy_values(50_000, seed=1)
    sketch = _sketch(_batches(values, np.random.default_rng(2), 37), seed=3)
    _assert_moments(sketch, values)
    assert sketch.describe()["std"] == pytest.approx(values[np.isfinite(values)].std(), rel=REL)


def test_merging_sketches_built_apart_is_exact_and_order_independent() -> None:
    values = _messy_values(40_000, seed=4)
    parts = np.array_split(values, [3_000, 3_001, 17_000, 31_000])  # one part of a single value
    sketches = [_sketch(_batches(part, np.random.default_rng(index), 5), seed=index)
                for index, part in enumerate(parts)]
    forward, backward = NumericSketch(), NumericSketch()
    for sketch in sketches:
        forward.merge(sketch)
    for sketch in reversed(sketches):
        backward.merge(sketch)
    backward.merge(NumericSketch(missing=2))  # an empty sketch only adds its missing count
    _assert_moments(forward, values)
    assert backward.missing == forward.missing + 2
    for name in ("count", "mean", "variance", "minimum", "maximum"):
        assert getattr(backward, name) == pytest.approx(getattr(forward, name), rel=REL)
    # the bottom-k sample is a set: the same values whatever the merge order
    assert sorted(backward.values) == sorted(forward.values)


def test_nan_is_missing_and_infinities_are_ignored() -> None:
    sketch = NumericSketch()
    sketch.update(np.array([1.0, np.nan, np.inf, -np.inf, 3.0, np.nan]), np.random.default_rng(0))
    assert (sketch.count, sketch.missing) == (2, 2)
    assert (sketch.minimum, sketch.maximum, sketch.mean, sketch.variance) == (1.0, 3.0, 2.0, 1.0)
    assert sorted(sketch.values) == [1.0, 3.0]
    sketch.update(pd.Series([np.nan, np.nan]), np.random.default_rng(1))  # a batch with nothing present
    assert (sketch.count, sketch.missing, sketch.mean) == (2, 4, 2.0)


@pytest.mark.parametrize("rows", [1, 999, 5_000])
def test_quantiles_are_exact_below_the_sample_size(rows: int) -> None:
    values = np.random.default_rng(rows).lognormal(size=rows)
    sketch = _sketch(_batches(values, np.random.default_rng(0), 9), seed=0, sample_size=5_000)
    assert sketch.exact_quantiles
    levels = [0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 1.0]
    np.testing.assert_array_equal(sketch.quantile(levels), np.quantile(values, levels))
    assert sketch.describe()["quantile_rank_error"] == 0.0


def _true_rank_errors(sketch: NumericSketch, ordered: np.ndarray) -> np.ndarray:
    levels = np.arange(1, 10) / 10
    estimates = sketch.quantile(list(levels))
    low = np.searchsorted(ordered, estimates, side="left") / ordered.size
    high = np.searchsorted(ordered, estimates, side="right") / ordered.size
    # the estimate's true rank is anywhere in [low, high] (ties); its distance to the target
    return np.maximum(0.0, np.maximum(low - levels, levels - high))


def test_deciles_above_the_sample_size_lie_within_the_dkw_rank_error() -> None:
    rng = np.random.default_rng(7)
    values = np.concatenate([rng.exponential(2.0, 150_000), rng.normal(40, 1, 50_000)])
    ordered = np.sort(values)
    # fed in ascending order, so a sample biased to the first or the last batches misses whole deciles
    sketch = _sketch(np.array_split(ordered, 64), seed=8)
    assert not sketch.exact_quantiles and sketch.values.size == 20_000
    assert rank_error(20_000) == pytest.approx(0.0115, abs=1e-4)
    assert sketch.describe()["quantile_rank_error"] == rank_error(20_000)
    assert np.all(_true_rank_errors(sketch, ordered) <= rank_error(20_000))
    # the same from two halves sketched apart and merged
    merged = _sketch(np.array_split(ordered[::2], 16), seed=9)
    merged.merge(_sketch(np.array_split(ordered[1::2], 16), seed=10))
    assert merged.values.size == 20_000
    assert np.all(_true_rank_errors(merged, ordered) <= rank_error(20_000))


def test_rank_error_shrinks_with_the_sample() -> None:
    assert rank_error(0) == 1.0
    assert rank_error(80_000) == pytest.approx(rank_error(20_000) / 2)
    assert rank_error(20_000, delta=0.1) < rank_error(20_000)


@pytest.mark.parametrize("fill", [None, -50.0, 1e6 + 100])
def test_with_fill_moments_equal_numpy_on_the_filled_array(fill: float | None) -> None:
    values = _messy_values(20_000, seed=11)
    values = values[~np.isinf(values)]
    sketch = _sketch(np.array_split(values, 6), seed=12)
    fill = float(np.nanmedian(values)) if fill is None else fill
    filled = sketch.with_fill(fill)
    _assert_moments(filled, np.where(np.isnan(values), fill, values))
    assert filled.missing == 0 and sketch.missing == np.isnan(values).sum() > 0  # the original is unchanged
    np.testing.assert_array_equal(filled.values, sketch.values)  # the quantile sample is the present values'
    complete = _sketch([values[~np.isnan(values)]], seed=13)
    assert complete.with_fill(0.0).mean == complete.mean  # nothing missing: nothing changes


def _words(rng: np.random.Generator, rows: int) -> pd.Series:
    words = pd.Series(rng.choice(["a", "b", "c", "d", "e", "f"], rows, p=[0.3, 0.25, 0.2, 0.1, 0.1, 0.05]),
                      dtype=object)
    words[rng.choice(rows, rows // 10, replace=False)] = None
    return words


def test_category_counts_are_exact_below_the_cap_across_batches_and_merges() -> None:
    words = _words(np.random.default_rng(0), 10_000)
    whole, halves = CategorySketch(), [CategorySketch(), CategorySketch()]
    for index, batch in enumerate(np.array_split(words, 13)):
        whole.update(batch)
        halves[index % 2].update(batch)
    halves[1].merge(halves[0])
    expected = Counter(words.dropna())
    for sketch in (whole, halves[1]):
        assert sketch.counts == expected and sketch.missing == 1_000 and not sketch.approximate
    filled = whole.with_fill("a")
    assert filled.counts["a"] == expected["a"] + 1_000 and filled.missing == 0
    assert whole.counts["a"] == expected["a"]


def test_category_counts_above_a_small_cap_keep_the_most_frequent() -> None:
    rng = np.random.default_rng(1)
    frequent = {"x": 900, "y": 700, "z": 500}
    cells = [value for value, count in frequent.items() for _ in range(count)]
    cells += [f"rare-{index}" for index in range(3_000)]
    cells = list(rng.permutation(np.array(cells, dtype=object)))
    sketch = CategorySketch(cap=20)
    for batch in np.array_split(np.array(cells, dtype=object), 50):
        sketch.update(pd.Series(batch))
    assert sketch.approximate
    assert len(sketch.counts) <= 20
    assert [value for value, _ in sketch.ordered()[:3]] == ["x", "y", "z"]
    for value, count in frequent.items():  # admitted in the first batch and never dropped: exact
        assert sketch.counts[value] == count
    merged = CategorySketch()
    merged.merge(sketch)
    assert merged.approximate


def test_ordering_is_count_then_value_the_specification_s_vocabulary_order() -> None:
    rng = np.random.default_rng(2)
    # ties on purpose: 'b' and 'a' twice as often as 'd' and 'c', numbers as text included
    column = pd.Series(rng.permutation(["b", "a"] * 40 + ["d", "c", "10", "9"] * 20 + ["e"] * 3), dtype=object)
    sketch = CategorySketch()
    for batch in np.array_split(column, 4):
        sketch.update(batch)
    ordered = [value for value, _ in sketch.ordered()]
    assert ordered == ["a", "b", "10", "9", "c", "d", "e"]
    by_rule = [value for value, _ in sorted(column.value_counts().items(), key=lambda item: (-item[1], item[0]))]
    assert ordered == by_rule  # most frequent first, ties by value as text
    train = pd.DataFrame({"c": column, "y": ["p", "q"] * (len(column) // 2) + ["p"] * (len(column) % 2)})
    schema = {"label": "y", "task": "classification", "numeric": [], "categorical": ["c"]}
    assert SpecFitter(schema).update(train).spec().categorical[0].vocabulary == ordered
