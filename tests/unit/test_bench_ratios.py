"""Every ratio on the benchmark page is a ratio of medians: the figures in a table and the ratio
formed from them agree, and one disturbed repetition cannot move it far."""

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from common import median, ratio_of_medians  # noqa: E402


def test_ratio_is_median_over_median_not_the_median_of_ratios() -> None:
    ours, theirs = [1.0, 10.0, 3.0], [2.0, 1.0, 3.0]

    assert ratio_of_medians(ours, theirs) == pytest.approx(1.5)  # 3 / 2
    assert median([a / b for a, b in zip(ours, theirs, strict=True)]) == pytest.approx(1.0)  # what it is not
    assert sum(ours) / sum(theirs) != pytest.approx(1.5)  # nor a ratio of means


def test_ratio_agrees_with_the_medians_a_table_shows_whatever_the_pairing() -> None:
    ours, theirs = [4.0, 5.0, 9.0], [2.0, 8.0, 2.5]

    assert ratio_of_medians(ours, theirs) == ratio_of_medians(ours[::-1], theirs) == median(ours) / median(theirs)


def test_one_run_each_is_the_plain_ratio_and_no_runs_is_refused() -> None:
    assert ratio_of_medians([3.0], [4.0]) == 0.75
    with pytest.raises(ValueError):
        ratio_of_medians([], [1.0])
