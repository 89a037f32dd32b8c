"""A cleaning rule is declared once: one registered in a test acts alike on one batch and on many."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.config import InputLimits
from tunepipe.data.ingest import IngestResult, run_ingest
from tunepipe.data.plan import Counts, Described, Plan, Rule, count
from tunepipe.data.rules import RULES

pytestmark = pytest.mark.unit

SENTINEL = -999.0
MEMORY, STREAM = InputLimits(streaming="never"), InputLimits(streaming="always")


class SentinelToMissing(Rule):
    """Legacy exports write -999 for "unknown": where a numeric column holds it, it becomes missing."""

    name = "sentinel_to_missing"

    def start(self, plan: Plan) -> dict[str, int]:
        return {}

    def observe(self, state: dict[str, int], batch: pd.DataFrame, plan: Plan) -> None:
        for column in plan.numeric:
            state[column] = state.get(column, 0) + int((batch[column] == SENTINEL).sum())

    def decide(self, state: dict[str, int], plan: Plan) -> None:
        plan.decided[self.name] = [column for column, seen in state.items() if seen]

    def apply(self, batch: pd.DataFrame, plan: Plan, counts: Counts) -> pd.DataFrame:
        frame = batch.copy(deep=False)
        for column in plan.decided[self.name]:
            found = (frame[column] == SENTINEL).to_numpy()
            count(counts, column, "sentinels", int(found.sum()))
            frame[column] = frame[column].mask(found)
        return frame

    def describe(self, plan: Plan, counts: Counts, report: Described) -> None:
        for column in plan.decided[self.name]:
            report.columns[column]["sentinels"] = counts.get(column, {}).get("sentinels", 0)
            report.notes.append(f"column {column!r}: {SENTINEL:g} read as missing")


@pytest.fixture
def sentinel_rule() -> Iterator[Rule]:
    """The rule registered after the rows without a label are dropped, without editing any module."""
    rule = SentinelToMissing()
    RULES.insert([known.name for known in RULES].index("rows_without_label") + 1, rule)
    yield rule
    RULES.remove(rule)


def _table(folder: Path) -> tuple[str, pd.DataFrame]:
    rng = np.random.default_rng(5)
    rows = 3_000
    frame = pd.DataFrame({
        "weight": rng.exponential(3, rows).round(3),
        "size": rng.normal(10, 2, rows).round(4),
        "colour": rng.choice(["red", "green", "blue"], rows).astype(object),
        "y": rng.choice(["p", "q"], rows).astype(object),
    })
    frame.loc[rng.choice(rows, 45, replace=False), "weight"] = SENTINEL
    frame.loc[rng.choice(rows, 30, replace=False), "y"] = None
    frame = pd.concat([frame, frame.iloc[rng.choice(rows, 80, replace=False)]], ignore_index=True)
    folder.mkdir(parents=True)
    for index, part in enumerate(np.array_split(frame, 3)):
        part.to_parquet(folder / f"part-{index}.parquet", index=False)
    return str(folder), frame


def _rows(result: IngestResult, out: Path) -> pd.DataFrame:
    if (out / artifacts.CLEANED_DATA_FILE).exists():
        rows = pd.read_parquet(out / artifacts.CLEANED_DATA_FILE)
    else:
        rows = pd.read_parquet(out / artifacts.CLEANED_SHARDS_DIR).fillna(result.schema["fill_values"])
    return rows.sort_values(list(rows.columns)).reset_index(drop=True)


def _run(source: str, out: Path) -> tuple[tuple[IngestResult, pd.DataFrame], tuple[IngestResult, pd.DataFrame]]:
    one = run_ingest(source, "y", "auto", out / "one", limits=MEMORY)
    many = run_ingest(source, "y", "auto", out / "many", limits=STREAM)
    return (one, _rows(one, out / "one")), (many, _rows(many, out / "many"))


def test_a_registered_rule_acts_alike_on_one_batch_and_many(tmp_path, sentinel_rule) -> None:
    source, frame = _table(tmp_path / "source")
    expected = int(((frame["weight"] == SENTINEL) & frame["y"].notna()).sum())  # duplicates included: before them
    (one, one_rows), (many, many_rows) = _run(source, tmp_path)
    for result, rows in ((one, one_rows), (many, many_rows)):
        actions: dict[str, Any] = result.report["columns"]["weight"]
        assert actions["sentinels"] == expected > 40
        assert "column 'weight': -999 read as missing" in result.report["notes"]
        assert not (rows["weight"] == SENTINEL).any()
        assert actions["imputed"] == expected and actions["imputation"] == "median"
        assert result.schema["features"]["weight"]["min"] >= 0.0
        assert "sentinels" not in result.report["columns"].get("size", {})
    assert one.report["columns"] == many.report["columns"]
    assert one.schema["fill_values"] == many.schema["fill_values"]
    pd.testing.assert_frame_equal(one_rows, many_rows, check_dtype=False)


def test_without_the_rule_the_sentinel_stays(tmp_path) -> None:
    source, _ = _table(tmp_path / "source")
    (one, one_rows), (many, many_rows) = _run(source, tmp_path)
    for result, rows in ((one, one_rows), (many, many_rows)):
        assert "sentinels" not in result.report["columns"].get("weight", {})
        assert (rows["weight"] == SENTINEL).sum() > 40
