"""Ingest for data larger than memory: three passes over record batches, bounded memory throughout.

1. **Profile** (:mod:`tunepipe.data.stream_plan`): sketches of every column, then every cleaning
   decision (types, dropped columns, outlier bounds, the task).
2. **Clean and bucket**: each raw batch is cleaned by the plan, each row hashed on its content
   (``pandas.util.hash_pandas_object``, the same hash :func:`~tunepipe.data.cleaning.duplicate_rows`
   starts from) and written to one of ``B`` bucket folders by that hash, so identical rows always
   share a bucket. ``B`` keeps a bucket near :data:`BUCKET_MEMORY_BYTES` in pandas.
3. **Deduplicate and describe**: one bucket at a time is read, its exact duplicates dropped, its
   rows summarised (sketches again, now of the cleaned data) and written as one Parquet shard of
   ``<output>/shards/``.

Peak memory is one batch (pass 1 and 2) or one bucket (pass 3) plus the sketches, whatever the
data's size. Missing feature cells stay missing in the shards: their fill values (mean, median,
mode of the cleaned data) are known only after pass 3, so they go into the schema's
``fill_values`` and preprocess fills each row as it reads it. The data report has the same
sections as the in-memory path's; its histograms are drawn from one bucket (a hash-random sample).
"""

from __future__ import annotations

import logging
import math
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from tunepipe import artifacts
from tunepipe.config import CleaningConfig
from tunepipe.data.batches import Shard, table_batches
from tunepipe.data.cleaning import balance_of_counts, fill_method
from tunepipe.data.schema import MAX_RECORDED_CATEGORIES, SCHEMA_VERSION
from tunepipe.data.sketches import QUANTILE_SAMPLE, CategorySketch, NumericSketch
from tunepipe.data.stream_plan import ROWS, CleaningPlan, Profile, make_plan
from tunepipe.data.stream_report import CleanedSketches, column_actions, notes
from tunepipe.errors import DataError
from tunepipe.storage import atomic

log = logging.getLogger(__name__)

# Pandas memory one bucket may take in pass 3 (rows x bytes per row of the first batch); pass 3
# and preprocess peak at several times it (the frame, its hashes, copies for each split).
BUCKET_MEMORY_BYTES = 64 * 1024 * 1024
# Rows of the cleaned data kept for the report's histograms.
REPORT_SAMPLE_ROWS = 10_000


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's content, the same for the same values in any process."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def _arrow_schema(plan: CleaningPlan) -> pa.Schema:
    fields = [pa.field(column, pa.float64()) for column in plan.numeric]
    fields += [pa.field(column, pa.string()) for column in plan.categorical]
    label_type = pa.float64() if plan.task == "regression" else pa.string()
    return pa.schema([*fields, pa.field(plan.label, label_type)])


def _bucket(plan: CleaningPlan, shards: list[Shard], folder: Path, buckets: int,
            flush_rows: int) -> dict[str, dict[str, int]]:
    """Pass 2: cleans every batch and writes its rows to their hash's bucket folder.

    Cleaned rows are held until there are ``flush_rows`` of them, then each bucket's share goes
    to a file of its own (``bucket-<b>/part-<flush>.parquet``): a file per flush and bucket,
    closed at once, keeps no writer's metadata growing with the data.
    """
    schema = _arrow_schema(plan)
    counts: dict[str, dict[str, int]] = {}
    held: list[pd.DataFrame] = []
    flushes = 0
    for batch in table_batches(shards, progress="ingest: streaming: pass 2 of 3 (clean into buckets)"):
        held.append(plan.apply(batch, counts))
        if sum(len(frame) for frame in held) >= flush_rows:
            _flush(pd.concat(held, ignore_index=True), folder, buckets, flushes, schema)
            held, flushes = [], flushes + 1
    if held:
        _flush(pd.concat(held, ignore_index=True), folder, buckets, flushes, schema)
    return counts


def _flush(frame: pd.DataFrame, folder: Path, buckets: int, flush: int, schema: pa.Schema) -> None:
    which = row_hashes(frame) % np.uint64(buckets)
    for index in np.unique(which):
        target = folder / f"bucket-{int(index):05d}"
        target.mkdir(exist_ok=True)
        part = pa.Table.from_pandas(frame[which == index], schema=schema, preserve_index=False)
        pq.write_table(part, target / f"part-{flush:06d}.parquet")


def _deduplicate(plan: CleaningPlan, buckets: list[Path], out: Path, config: CleaningConfig,
                 seed: int) -> tuple[CleanedSketches, int, pd.DataFrame]:
    """Pass 3: each bucket deduplicated, summarised and written as one shard."""
    from tunepipe.data.cleaning import duplicate_rows

    sketches = CleanedSketches(plan, seed)
    schema = _arrow_schema(plan)
    duplicates = 0
    sample = pd.DataFrame()
    for index, bucket in enumerate(buckets):
        frame = pq.read_table(bucket, schema=schema).to_pandas()
        shutil.rmtree(bucket)
        if config.drop_duplicates and len(frame):
            repeated = duplicate_rows(frame)
            duplicates += int(repeated.sum())
            frame = frame[~repeated].reset_index(drop=True)
        sketches.update(frame)
        if len(sample) < REPORT_SAMPLE_ROWS:
            sample = pd.concat([sample, frame.head(REPORT_SAMPLE_ROWS - len(sample))], ignore_index=True)
        frame.to_parquet(out / f"part-{index:05d}.parquet", index=False)
        log.info("ingest: streaming: pass 3 of 3 (deduplicate): bucket %d of %d, %d rows", index + 1, len(buckets),
                 len(frame))
    return sketches, duplicates, sample


def _fill(sketch: NumericSketch | CategorySketch, method: str, constant: Any, column: str) -> Any:
    """The fill value of the in-memory path's ``_fill_value``, from a sketch of the cleaned column."""
    if isinstance(sketch, NumericSketch):
        if method in ("mean", "drop"):
            return float(sketch.mean)
        if method == "median":
            return float(sketch.quantile(0.5))
        if method == "mode":
            values, counts = np.unique(sketch.values, return_counts=True)
            return float(values[np.argmax(counts)]) if values.size else None
        if isinstance(constant, str):
            raise DataError(f"cleaning: fill_value {constant!r} is text but column {column!r} is numeric")
        return float(constant)
    if method in ("mode", "drop", "mean", "median"):
        ordered = sketch.ordered()
        return ordered[0][0] if ordered else None
    return str(constant)


def fill_values(sketches: CleanedSketches, config: CleaningConfig) -> dict[str, Any]:
    """Every feature's fill value: what preprocess and the served model fill a missing cell with."""
    fills = {}
    for column, sketch in sketches.features():
        rule = config.rule(column)
        method = fill_method(config, column, column in sketches.numeric)
        constant = rule.fill_value if rule.fill_value is not None else config.fill_value
        fills[column] = _fill(sketch, method, constant, column)
    return fills


def _profiles(sketches: CleanedSketches, fills: dict[str, Any], missing: dict[str, float]) -> dict[str, Any]:
    profiles: dict[str, Any] = {}
    for column, numbers in sketches.numeric.items():
        filled = numbers.with_fill(fills[column]) if fills[column] is not None else numbers
        described = filled.describe()
        profiles[column] = {"type": "numeric", **{key: described[key] for key in ("min", "max", "mean", "std")},
                            "missing_fraction": missing.get(column, 0.0)}
    for column, text in sketches.text.items():
        counted = text.with_fill(str(fills[column])) if fills[column] is not None else text
        ordered = counted.ordered()
        profiles[column] = {"type": "categorical", "categories": len(ordered),
                            "values": [value for value, _ in ordered[:MAX_RECORDED_CATEGORIES]],
                            "missing_fraction": missing.get(column, 0.0)}
    return profiles


def _label_profile(sketches: CleanedSketches) -> dict[str, Any]:
    if sketches.label is not None and sketches.target is None:
        ordered = sketches.label.ordered()
        return {"type": "categorical", "categories": len(ordered),
                "values": [value for value, _ in ordered[:MAX_RECORDED_CATEGORIES]], "missing_fraction": 0.0}
    assert sketches.target is not None
    described = sketches.target.describe()
    return {"type": "numeric", **{key: described[key] for key in ("min", "max", "mean", "std")},
            "missing_fraction": 0.0}


def streaming_schema(plan: CleaningPlan, sketches: CleanedSketches, fills: dict[str, Any],
                     profile: Profile) -> dict[str, Any]:
    """The schema of :func:`~tunepipe.data.schema.infer_schema`, from the sketches (plus ``streaming``)."""
    missing = {column: count / max(profile.rows_in, 1) for column, count in profile.raw_missing.items()}
    return {
        "schema_version": SCHEMA_VERSION, "kind": "table", "label": plan.label, "task": plan.task,
        "numeric": plan.numeric, "categorical": plan.categorical,
        "features": _profiles(sketches, fills, missing),
        "label_profile": {**_label_profile(sketches), "missing_fraction": missing.get(plan.label, 0.0)},
        "rows": sketches.rows, "streaming": True,
        "fill_values": {column: None if fills[column] is None
                        else (str(fills[column]) if column in plan.categorical else fills[column])
                        for column in [*plan.numeric, *plan.categorical]},
    }


def bucket_count(profile: Profile) -> int:
    """Buckets for pass 3: enough that one holds about :data:`BUCKET_MEMORY_BYTES` in pandas."""
    labelled = profile.rows_in - profile.without_label
    per_bucket = max(1_000, int(BUCKET_MEMORY_BYTES / max(profile.bytes_per_row, 1.0)))
    return max(1, math.ceil(labelled / per_bucket))


def streaming_clean(shards: list[Shard], label: str, task: str, config: CleaningConfig, output_dir: Path,
                    max_rows: int | None = None, seed: int = 0) -> tuple[dict[str, Any], dict[str, Any], pd.DataFrame]:
    """The three passes: writes ``output_dir/shards/`` and returns the schema, the report and a sample.

    ``max_rows`` (``data.max_rows``; default ``None``: no limit) is checked while pass 1 counts;
    ``seed`` (default 0) seeds the quantile samples, so the same data gives the same report.

    Raises:
        DataError: Refused input (as :func:`~tunepipe.data.cleaning.clean_frame`); nothing is written then.
    """
    plan, profile = make_plan(table_batches(shards, max_rows, "ingest: streaming: pass 1 of 3 (profile)"), label, task,
                              config, seed)
    buckets = bucket_count(profile)
    log.info("ingest: streaming: %d rows profiled; %d numeric and %d categorical features; %d buckets",
             profile.rows_in, len(plan.numeric), len(plan.categorical), buckets)
    with tempfile.TemporaryDirectory(prefix="tunepipe-buckets-", dir=output_dir) as scratch:
        flush_rows = max(1_000, int(BUCKET_MEMORY_BYTES / 2 / max(profile.bytes_per_row, 1.0)))
        counts = _bucket(plan, shards, Path(scratch), buckets, flush_rows)
        bucket_files = sorted(Path(scratch).glob("bucket-*"))
        with atomic.replacing_folder(output_dir / artifacts.CLEANED_SHARDS_DIR) as partial:
            sketches, duplicates, sample = _deduplicate(plan, bucket_files, partial, config, seed)
            if not sketches.rows:
                raise DataError("no rows left after cleaning")
            fills = fill_values(sketches, config)
            schema = streaming_schema(plan, sketches, fills, profile)
    report = streaming_report(plan, profile, sketches, counts, duplicates, fills, config)
    report["before"] = _before(profile)
    report["after"] = {column: {key: value for key, value in described.items() if key != "values"}
                       | {"missing_fraction": 0.0}  # the cleaned rows, filled (the schema keeps the raw fraction)
                       for column, described in [*schema["features"].items(), (label, schema["label_profile"])]}
    report["streaming"] = {"buckets": buckets, "passes_over_source": 2,
                           "quantiles": f"bottom-k samples of {QUANTILE_SAMPLE:,} values per column"}
    return schema, report, sample


def _before(profile: Profile) -> dict[str, dict[str, Any]]:
    """The raw columns' profiles (over the labelled rows: pass 1 sketches only those)."""
    before: dict[str, dict[str, Any]] = {}
    for column, missing in profile.raw_missing.items():
        fraction = missing / max(profile.rows_in, 1)
        if column in profile.numeric:
            described = profile.numeric[column].describe()
            before[column] = {"type": "numeric", **{key: described[key] for key in ("min", "max", "mean", "std")},
                              "missing_fraction": fraction}
        elif column in profile.text:
            before[column] = {"type": "categorical", "categories": len(profile.text[column].counts),
                              "missing_fraction": fraction}
        else:
            before[column] = {"missing_fraction": fraction}
    return before


def streaming_report(plan: CleaningPlan, profile: Profile, sketches: CleanedSketches,
                     counts: dict[str, dict[str, int]], duplicates: int, fills: dict[str, Any],
                     config: CleaningConfig) -> dict[str, Any]:
    """The data report's counts, column actions and notes, as the in-memory path words them."""
    rows = counts.pop(ROWS, {})
    report: dict[str, Any] = {
        "rows_in": profile.rows_in, "rows_out": sketches.rows, "dropped_without_label": profile.without_label,
        "dropped_duplicates": duplicates,
    }
    if config.infinities == "drop":
        report["dropped_infinite_rows"] = rows.get("dropped_infinite_rows", 0)
    if rows.get("dropped_missing_rows"):
        report["dropped_missing_rows"] = rows["dropped_missing_rows"]
    if sketches.label is not None:
        report["label_balance"] = balance_of_counts(sketches.label.counts, config.imbalance_ratio)
    report["columns"] = column_actions(plan, sketches, counts, fills, config)
    report["notes"] = notes(plan, report)
    return report
