"""The cleaning rules on many batches (data.streaming: always) against one batch (never), on the same messy table."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.config import CleaningConfig, InputLimits
from tunepipe.data import clean
from tunepipe.data.ingest import IngestResult, run_ingest
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit

STREAM, MEMORY = InputLimits(streaming="always"), InputLimits(streaming="never")
PROFILE_KEYS = ("min", "max", "mean", "std")


def _messy(rows: int = 3_000, seed: int = 0, duplicates: int = 60) -> pd.DataFrame:
    """Missing values, infinities, outliers, numbers as text with bad cells, a constant and an empty column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "size": rng.normal(10, 2, rows).round(4),
        "weight": rng.exponential(3, rows).round(3),
        "code": rng.integers(0, 1_000, rows).astype(str).astype(object),
        "colour": rng.choice(["red", "green", "blue", "teal"], rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
        "const": np.full(rows, 7.5),
        "empty": np.full(rows, np.nan),
        "y": rng.choice(["p", "q", "r"], rows).astype(object),
    })
    frame.loc[rng.choice(rows, 150, replace=False), "size"] = np.nan
    frame.loc[rng.choice(rows, 10, replace=False), "size"] = np.inf
    frame.loc[rng.choice(rows, 5, replace=False), "weight"] = -np.inf
    frame.loc[rng.choice(rows, 20, replace=False), "weight"] = 1e4
    frame.loc[rng.choice(rows, 8, replace=False), "code"] = "unknown"
    frame.loc[rng.choice(rows, 100, replace=False), "colour"] = None
    unlabelled = rng.choice(rows, 40, replace=False)
    frame.loc[unlabelled, "y"] = None
    frame.loc[unlabelled[:3], "size"] = np.inf  # counted as the in-memory path counts them: on every row
    # exact copies, in the last shard, of rows spread over every shard
    return pd.concat([frame, frame.iloc[rng.choice(rows, duplicates, replace=False)]], ignore_index=True)


def _write(frame: pd.DataFrame, folder: Path, fmt: str, shards: int = 3) -> str:
    folder.mkdir(parents=True)
    for index, part in enumerate(np.array_split(frame, shards)):
        if fmt == "csv":
            part.to_csv(folder / f"part-{index}.csv", index=False)
        else:
            part.to_parquet(folder / f"part-{index}.parquet", index=False)
    return str(folder)


def _both(source: str, out: Path, cleaning: CleaningConfig | None = None) -> tuple[IngestResult, IngestResult]:
    memory = run_ingest(source, "y", "auto", out / "memory", cleaning=cleaning, limits=MEMORY)
    stream = run_ingest(source, "y", "auto", out / "stream", cleaning=cleaning, limits=STREAM)
    return memory, stream


def _dropped(result: IngestResult) -> dict[str, str]:
    return {column: actions["dropped"] for column, actions in result.report["columns"].items() if "dropped" in actions}


@pytest.fixture(scope="module", params=["csv", "parquet"])
def messy_runs(request, tmp_path_factory) -> tuple[IngestResult, IngestResult, Path]:
    root = tmp_path_factory.mktemp(request.param)
    source = _write(_messy(), root / "source", request.param)
    return (*_both(source, root), root)


def test_streaming_decides_and_counts_as_in_memory(messy_runs) -> None:
    memory, stream, _ = messy_runs
    for key in ("task", "numeric", "categorical", "label"):
        assert stream.schema[key] == memory.schema[key], key
    assert stream.schema["numeric"] == ["size", "weight", "code"] and stream.schema["categorical"] == ["colour"]
    for key in ("rows_in", "rows_out", "duplicate_rows", "dropped_duplicates", "dropped_without_label"):
        assert stream.report[key] == memory.report[key], key
    assert stream.report["duplicate_rows"] == 59 and stream.report["dropped_without_label"] == 41
    assert stream.report["dropped_duplicates"] == 0  # kept as observations by default
    assert _dropped(stream) == _dropped(memory) == {"const": "constant (7.5)", "empty": "all values missing"}
    # infinities, unparseable cells, imputations and their fill values, column by column
    assert stream.report["columns"] == memory.report["columns"]
    assert stream.report["columns"]["code"]["unparseable_cells"] == 8
    assert sorted(stream.report["notes"]) == sorted(memory.report["notes"])
    assert stream.report["label_balance"] == memory.report["label_balance"]
    assert stream.schema["rows"] == memory.schema["rows"] == stream.report["rows_out"]


def test_fill_values_and_profiles_equal_in_memory(messy_runs) -> None:
    memory, stream, _ = messy_runs
    # 2,960 cleaned rows, below the quantile sample: the median fill is exact
    fills, expected_fills = stream.schema["fill_values"], memory.schema["fill_values"]
    assert fills.keys() == expected_fills.keys() and fills["colour"] == expected_fills["colour"] == "red"
    for column in memory.schema["numeric"]:
        assert fills[column] == pytest.approx(expected_fills[column], rel=1e-12), column
    assert stream.schema["features"].keys() == memory.schema["features"].keys()
    for column, expected in memory.schema["features"].items():
        got = stream.schema["features"][column]
        assert got["type"] == expected["type"], column
        assert got["missing_fraction"] == pytest.approx(expected["missing_fraction"], rel=1e-12), column
        if expected["type"] == "numeric":
            for key in PROFILE_KEYS:
                assert got[key] == pytest.approx(expected[key], rel=1e-9), (column, key)
        else:
            assert got["values"] == expected["values"] and got["categories"] == expected["categories"]
    assert stream.schema["label_profile"] == memory.schema["label_profile"]


def test_report_before_and_after_agree_with_in_memory(messy_runs) -> None:
    memory, stream, _ = messy_runs
    # after: the cleaned, filled rows, label included (nothing missing any more)
    assert stream.report["after"].keys() == memory.report["after"].keys()
    for column, expected in memory.report["after"].items():
        got = stream.report["after"][column]
        assert got.keys() == expected.keys() and got["missing_fraction"] == expected["missing_fraction"] == 0.0
        for key in (*PROFILE_KEYS, "categories"):
            if key in expected:
                assert got[key] == pytest.approx(expected[key], rel=1e-9), (column, key)
    # before: missing fractions over every raw row (ranges: the labelled rows only, as documented)
    assert stream.report["before"].keys() == memory.report["before"].keys()
    for column, expected in memory.report["before"].items():
        assert stream.report["before"][column]["missing_fraction"] == pytest.approx(expected["missing_fraction"])


def test_streamed_output_is_shards_of_the_same_rows(messy_runs) -> None:
    memory, stream, root = messy_runs
    out = root / "stream"
    assert stream.schema["streaming"] is True and "streaming" not in memory.schema
    assert not (out / artifacts.CLEANED_DATA_FILE).exists()
    shards = sorted((out / artifacts.CLEANED_SHARDS_DIR).iterdir())
    assert shards and all(path.name.startswith("part-") and path.suffix == ".parquet" for path in shards)
    assert json.loads((out / artifacts.SCHEMA_FILE).read_text()) == stream.schema
    assert json.loads((out / artifacts.DATA_REPORT_FILE).read_text())["rows_out"] == stream.report["rows_out"]
    # missing cells stay missing in the shards (preprocess fills them); filled, they are the in-memory rows
    streamed = pd.read_parquet(out / artifacts.CLEANED_SHARDS_DIR)
    assert streamed.isna().any().any()
    streamed = streamed.fillna(stream.schema["fill_values"])
    expected = pd.read_parquet(root / "memory" / artifacts.CLEANED_DATA_FILE)
    columns = list(expected.columns)
    assert list(streamed.columns) == columns
    ordered = [frame.sort_values(columns).reset_index(drop=True) for frame in (streamed, expected)]
    pd.testing.assert_frame_equal(*ordered, check_dtype=False, rtol=1e-12)
    assert not list(root.glob("**/bucket-*.parquet"))  # pass 3 deletes its buckets


def test_duplicates_are_all_found_across_several_buckets(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(clean, "BUCKET_MEMORY_BYTES", 1)  # 1,000 rows a bucket, the least
    frame = _messy(rows=4_500, duplicates=400)
    memory, stream = _both(_write(frame, tmp_path / "source", "parquet", shards=4), tmp_path,
                           CleaningConfig(drop_duplicates=True))
    buckets = stream.report["streaming"]["buckets"]
    assert buckets == 5
    assert len(list((tmp_path / "stream" / artifacts.CLEANED_SHARDS_DIR).glob("part-*.parquet"))) == buckets
    assert stream.report["dropped_duplicates"] == memory.report["dropped_duplicates"] > 350
    assert stream.report["duplicate_rows"] == stream.report["dropped_duplicates"]
    assert stream.report["rows_out"] == memory.report["rows_out"]


@pytest.mark.parametrize("method", ["iqr", "zscore"])
def test_outlier_clipping_counts_as_in_memory(tmp_path, method: str) -> None:
    cleaning = CleaningConfig(outliers=method, zscore_threshold=2.0)
    memory, stream = _both(_write(_messy(duplicates=0), tmp_path / "source", "csv"), tmp_path, cleaning)
    for column in ("size", "weight", "code"):
        expected, got = memory.report["columns"][column], stream.report["columns"][column]
        assert got.get("outliers_clipped") == expected.get("outliers_clipped"), column
        if "clip_range" in expected:
            assert got["clip_range"] == pytest.approx(expected["clip_range"], rel=1e-9)
    assert stream.report["columns"]["weight"]["outliers_clipped"] >= 20


def test_outlier_bounds_are_judged_before_duplicates_are_dropped(tmp_path) -> None:
    """Documented: the streaming path's bounds come from every labelled raw row, duplicates included."""
    frame = _messy(duplicates=0)
    frame = pd.concat([frame] + [frame[frame["weight"] > 6]] * 5, ignore_index=True)  # shifts the quartiles
    memory, stream = _both(_write(frame, tmp_path / "source", "parquet"), tmp_path,
                           CleaningConfig(outliers="iqr", drop_duplicates=True))
    raw = frame.loc[frame["y"].notna(), "weight"].replace(-np.inf, np.nan).to_numpy()
    low, high = np.nanquantile(raw, [0.25, 0.75])
    bounds = [low - 1.5 * (high - low), high + 1.5 * (high - low)]
    assert stream.report["columns"]["weight"]["clip_range"] == pytest.approx(bounds, rel=1e-9)
    assert memory.report["columns"]["weight"]["clip_range"] != pytest.approx(bounds, rel=1e-3)
    assert stream.report["rows_out"] == memory.report["rows_out"]


def _csv(path: Path, frame: pd.DataFrame) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)


def test_refusals_name_the_file(tmp_path) -> None:
    frame = _messy(rows=600, duplicates=0)
    source = _write(frame, tmp_path / "ok", "csv")
    with pytest.raises(DataError, match="label column 'nope' not found"):
        run_ingest(source, "nope", "auto", tmp_path / "out1", limits=STREAM)
    _csv(tmp_path / "mixed" / "part-0.csv", frame)
    _csv(tmp_path / "mixed" / "part-1.csv", frame.assign(extra=1.0))
    with pytest.raises(DataError, match=r"part-1\.csv: columns .* differ from the first shard's"):
        run_ingest(str(tmp_path / "mixed"), "y", "auto", tmp_path / "out2", limits=STREAM)
    limits = InputLimits(streaming="always", max_rows=450)  # 200 rows a shard: the third passes it
    with pytest.raises(DataError, match=r"part-2\.csv: 200 rows \(600 with the shards before it\), more than data"):
        run_ingest(source, "y", "auto", tmp_path / "out3", limits=limits)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "data.csv").write_text("")
    with pytest.raises(DataError, match=r"data\.csv: is empty"):
        run_ingest(str(tmp_path / "empty" / "data.csv"), "y", "auto", tmp_path / "out4", limits=STREAM)
    _csv(tmp_path / "header" / "data.csv", frame.head(0))
    with pytest.raises(DataError, match=r"data\.csv: has no data rows"):
        run_ingest(str(tmp_path / "header" / "data.csv"), "y", "auto", tmp_path / "out5", limits=STREAM)
    for index in range(1, 6):
        assert not (tmp_path / f"out{index}").exists()


def test_fatal_drift_or_a_refused_input_leaves_nothing(tmp_path) -> None:
    first, second = tmp_path / "first.csv", tmp_path / "second.csv"
    frame = _messy(rows=500, duplicates=0)
    _csv(first, frame)
    _csv(second, frame.drop(columns=["colour"]))
    run_ingest(str(first), "y", "auto", tmp_path / "run1", limits=STREAM)
    baseline = str(tmp_path / "run1" / artifacts.SCHEMA_FILE)
    with pytest.raises(DataError, match=r"drift check against .* failed:\n  column 'colour' .* is missing"):
        run_ingest(str(second), "y", "auto", tmp_path / "run2", baseline_schema_uri=baseline, limits=STREAM)
    assert not (tmp_path / "run2").exists()
    _csv(second, frame.assign(y=None))
    with pytest.raises(DataError, match="label column 'y' has no values"):
        run_ingest(str(second), "y", "auto", tmp_path / "run3", limits=STREAM)
    assert not (tmp_path / "run3").exists()
    # nor anything beside it: the scratch folder with the buckets is gone too
    assert sorted(path.name for path in tmp_path.iterdir()) == ["first.csv", "run1", "second.csv"]
    assert sorted(path.name for path in (tmp_path / "run1").iterdir()) == sorted(
        [artifacts.CLEANED_SHARDS_DIR, artifacts.SCHEMA_FILE, artifacts.DATA_REPORT_FILE,
         artifacts.DATA_REPORT_HTML_FILE])


def test_auto_streams_above_streaming_bytes_only(tmp_path) -> None:
    source = tmp_path / "data.parquet"
    _messy(rows=400, duplicates=0).to_parquet(source, index=False)
    size = source.stat().st_size
    assert InputLimits().streaming == "auto"
    assert not InputLimits(streaming_bytes=size).streams(size) and InputLimits(streaming_bytes=size - 1).streams(size)
    assert InputLimits(streaming="always", streaming_bytes=size * 10).streams(size)
    assert not InputLimits(streaming="never", streaming_bytes=0).streams(size)
    below = run_ingest(str(source), "y", "auto", tmp_path / "below", limits=InputLimits(streaming_bytes=size))
    above = run_ingest(str(source), "y", "auto", tmp_path / "above", limits=InputLimits(streaming_bytes=size - 1))
    assert "streaming" not in below.schema and (tmp_path / "below" / artifacts.CLEANED_DATA_FILE).is_file()
    assert above.schema["streaming"] and (tmp_path / "above" / artifacts.CLEANED_SHARDS_DIR).is_dir()
    assert not (tmp_path / "above" / artifacts.CLEANED_DATA_FILE).exists()
    assert above.report["rows_out"] == below.report["rows_out"]


def test_csv_numbers_stay_numbers_without_coercion(tmp_path) -> None:
    """Read as text, a CSV column whose cells all parse is numeric as it stands, as one batch reads it."""
    cleaning = CleaningConfig(coerce_numeric_text=False)
    memory, stream = _both(_write(_messy(duplicates=0), tmp_path / "source", "csv"), tmp_path, cleaning)
    for result in (memory, stream):
        assert result.schema["numeric"] == ["size", "weight"]
        assert result.schema["categorical"] == ["code", "colour"]  # 8 cells "unknown": text, not coerced
        assert "coerced_to_numeric" not in result.report["columns"].get("code", {})


@pytest.mark.parametrize(("labels", "classes"), [([0, 1, 2], ["0", "1", "2"]), ([0.0, 1.0, np.nan], ["0.0", "1.0"])])
def test_numeric_class_labels_are_written_as_the_first_batch_types_them(tmp_path, labels, classes) -> None:
    frame = _messy(rows=600, duplicates=0).assign(y=np.resize(np.array(labels), 600))
    memory, stream = _both(_write(frame, tmp_path / "source", "parquet"), tmp_path)
    for result in (memory, stream):
        assert result.schema["task"] == "classification"
        assert sorted(result.report["label_balance"]["counts"]) == classes
    assert stream.report["label_balance"] == memory.report["label_balance"]
