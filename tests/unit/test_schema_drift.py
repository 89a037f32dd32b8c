"""Schema inference and the drift check against a baseline schema."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.data.ingest import clean, run_ingest
from tunepipe.data.schema import compare_schemas
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit


def _data(rows: int = 60, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({
        "size": rng.normal(10, 2, rows), "colour": rng.choice(["red", "blue"], rows),
        "y": rng.choice(["cat", "dog"], rows),
    })


def _schema(frame: pd.DataFrame) -> dict:
    return clean(frame, "y").schema


def _kinds(findings: list[dict]) -> dict[tuple[str, str], str]:
    return {(item["column"], item["kind"]): item["severity"] for item in findings}


def test_schema_records_types_ranges_categories_and_missing_fractions() -> None:
    frame = _data()
    frame.loc[:5, "size"] = np.nan
    schema = _schema(frame)
    size = schema["features"]["size"]
    assert size["type"] == "numeric" and size["missing_fraction"] == pytest.approx(6 / 60)
    assert size["min"] <= size["mean"] <= size["max"]
    assert schema["features"]["colour"]["values"] == ["blue", "red"] or set(schema["features"]["colour"]["values"]) == {
        "blue", "red"}
    assert schema["label_profile"]["type"] == "categorical"


def test_identical_data_has_no_findings() -> None:
    assert compare_schemas(_schema(_data()), _schema(_data())) == []


def test_new_and_missing_columns() -> None:
    baseline = _schema(_data())
    changed = _data().drop(columns=["colour"]).assign(weight=1.0, extra=np.arange(60.0) / 2)  # not a row counter
    kinds = _kinds(compare_schemas(baseline, _schema(changed)))
    assert kinds[("colour", "missing_column")] == "fatal"
    assert kinds[("extra", "new_column")] == "warning"


def test_type_changes_fatal_for_the_label_only() -> None:
    baseline = _schema(_data())
    changed = _data().assign(colour=np.arange(60.0) / 2, y=np.random.default_rng(1).normal(size=60))
    kinds = _kinds(compare_schemas(baseline, clean(changed, "y", "regression").schema))
    assert kinds[("colour", "type_change")] == "warning"
    assert kinds[("y", "type_change")] == "fatal"


def test_unseen_categories_range_and_missing_shifts() -> None:
    baseline = _schema(_data())
    drifted = _data(seed=1)
    drifted.loc[:4, "colour"] = "green"
    drifted["size"] = drifted["size"] + 20
    drifted.loc[:20, "size"] = np.nan
    findings = compare_schemas(baseline, _schema(drifted))
    kinds = _kinds(findings)
    assert kinds[("colour", "unseen_categories")] == "warning"
    assert kinds[("size", "range_shift")] == "warning"
    assert kinds[("size", "mean_shift")] == "warning"
    assert kinds[("size", "missing_shift")] == "warning"
    assert any("'green'" in item["message"] for item in findings)


def test_drift_findings_go_in_the_report(tmp_path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _data().to_csv(first, index=False)
    drifted = _data(seed=2)
    drifted.loc[:4, "colour"] = "green"
    drifted.to_csv(second, index=False)
    run_ingest(str(first), "y", "auto", tmp_path / "run1")
    result = run_ingest(str(second), "y", "auto", tmp_path / "run2", baseline_schema_uri=str(tmp_path / "run1"))
    drift = json.loads((tmp_path / "run2" / artifacts.DATA_REPORT_FILE).read_text())["drift"]
    assert drift["baseline"].endswith(artifacts.SCHEMA_FILE)
    assert ("colour", "unseen_categories") in _kinds(drift["findings"])
    assert result.report["drift"] == drift
    assert "unseen" in (tmp_path / "run2" / artifacts.DATA_REPORT_HTML_FILE).read_text()


def test_fatal_drift_fails_the_run_with_an_explanation(tmp_path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    _data().to_csv(first, index=False)
    _data().drop(columns=["colour"]).to_csv(second, index=False)
    run_ingest(str(first), "y", "auto", tmp_path / "run1")
    baseline = str(tmp_path / "run1" / artifacts.SCHEMA_FILE)
    with pytest.raises(DataError, match=r"drift check against .* failed:\n  column 'colour' .* is missing"):
        run_ingest(str(second), "y", "auto", tmp_path / "run2", baseline_schema_uri=baseline)
    assert not (tmp_path / "run2").exists()


def test_a_baseline_that_is_not_a_schema_is_refused(tmp_path) -> None:
    data = tmp_path / "d.csv"
    _data().to_csv(data, index=False)
    bogus = tmp_path / "bogus.json"
    bogus.write_text("[1, 2]")
    with pytest.raises(DataError, match="not a tunepipe schema"):
        run_ingest(str(data), "y", "auto", tmp_path / "out", baseline_schema_uri=str(bogus))
