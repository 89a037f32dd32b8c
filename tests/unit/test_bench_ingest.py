"""The ingest benchmark's baselines: the hand-written pandas script with the default and the pyarrow
engine cleans the benchmark table to the same rows, and the goal is decided against the faster one."""

import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import ingest  # noqa: E402


def test_both_pandas_engines_clean_the_benchmark_table_alike(tmp_path: Path) -> None:
    csv = tmp_path / "bench.csv"
    ingest.make_csv(csv, 2000)

    default, pyarrow = ingest.plain_pandas(str(csv), "c"), ingest.plain_pandas(str(csv), "pyarrow")

    assert default == pyarrow
    assert 1990 < default <= 2000  # of 2,020 lines: the 1% duplicates and the unlabelled rows are gone


def test_time_ratios_are_ratios_of_medians_against_both_engines_and_the_faster_decides() -> None:
    runs = {
        "pandas": [{"seconds": s} for s in (4.0, 5.0, 30.0)],
        "pandas-pyarrow": [{"seconds": s} for s in (2.0, 2.5, 2.0)],
        "tunepipe": [{"seconds": s} for s in (3.0, 2.0, 9.0)],
    }

    ratios, baseline = ingest.time_ratios(runs)

    assert baseline == "pandas-pyarrow"
    assert ratios == {"pandas": pytest.approx(3.0 / 5.0), "pandas-pyarrow": pytest.approx(3.0 / 2.0)}
    goal = ingest._goal(ratios, baseline, "median of 3", 1_000_000)
    assert goal.met is False and goal.measured.startswith("1.50x pandas (pyarrow engine); 0.60x pandas (default")
