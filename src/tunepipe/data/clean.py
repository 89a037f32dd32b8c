"""Cleaning a table by the rules (:data:`~tunepipe.data.rules.RULES`): as one batch, or batch by batch.

**One batch** (a table within ``data.streaming_bytes``, held in memory): each rule in turn
sketches the table as the rules before it left it, decides, and acts. Every sketch holds the
whole table (quantile samples and category counts sized to its rows), so every decision is
exact: outlier bounds and fill values come from the deduplicated rows, the task from the
cleaned labels. Missing cells are filled; the cleaned table is one frame.

**Many batches** (larger tables), in bounded memory:

1. *Profile*: every rule observes every record batch (as the rules deciding on the first batch
   left it: types, infinities, rows without a label) and decides: types on the first batch,
   empty and constant columns, outlier bounds and the task over every labelled raw row, before
   duplicates are dropped.
2. *Clean and bucket*: every rule but the per-bucket one (duplicates) acts on each raw batch; each
   row goes to one of ``B`` bucket folders by a hash of its content (:func:`row_hashes`), so
   identical rows share a bucket. ``B`` keeps a bucket near :data:`BUCKET_MEMORY_BYTES` in pandas.
3. *Deduplicate and sketch*: one bucket at a time, its duplicates dropped, its rows sketched and
   written as one Parquet shard; the missing-value rule decides its fill values from those sketches
   (after rows were dropped for missing cells), and the shards keep their missing cells:
   preprocess fills them from the schema's ``fill_values``.

Peak memory is one batch (passes 1 and 2) or one bucket (pass 3) plus the sketches.
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

from tunepipe.config import CleaningConfig
from tunepipe.data.batches import Shard, table_batches
from tunepipe.data.plan import Counts, Plan, Rule, TableSketch
from tunepipe.data.readers import table_format
from tunepipe.data.report import Cleaned, RawSketch
from tunepipe.data.rules import RULES
from tunepipe.errors import DataError

log = logging.getLogger(__name__)

# Pandas memory one bucket may take in pass 3 (rows x bytes per row of the first batch); pass 3
# and preprocess peak at several times it (the frame, its hashes, copies for each split).
BUCKET_MEMORY_BYTES = 64 * 1024 * 1024
# Rows of the cleaned data kept for the report's histograms (many batches).
REPORT_SAMPLE_ROWS = 10_000


def row_hashes(frame: pd.DataFrame) -> np.ndarray:
    """A 64-bit hash of each row's content, the same for the same values in any process."""
    return pd.util.hash_pandas_object(frame, index=False).to_numpy(dtype=np.uint64)


def _no_rows_left(rule: Rule | None = None) -> DataError:
    which = f": rule {rule.name!r} dropped every row left" if rule else ""
    return DataError(f"no rows left after cleaning{which}")


def clean_table(frame: pd.DataFrame, label: str, task: str, config: CleaningConfig) -> Cleaned:
    """Cleans a table held in memory as one batch (``frame`` is not modified).

    Raises:
        DataError: The label is missing or empty, every feature is empty or constant, a per-column
            rule does not fit its column, the task does not fit the label, or no row is left.
    """
    plan = Plan(label, config, task, [str(column) for column in frame.columns], capacity=len(frame))
    raw = RawSketch(plan)
    raw.update(frame)
    counts: Counts = {}
    batch = frame
    for rule in RULES:
        state = rule.start(plan)
        rule.observe(state, batch, plan)
        rule.decide(state, plan)
        batch = rule.apply(batch, plan, counts)
        if batch.empty:
            raise _no_rows_left(rule)
    cleaned = TableSketch(plan)
    batch = batch.reset_index(drop=True)
    cleaned.update(batch)
    return Cleaned(plan, counts, raw, cleaned, batch)


def _profile(shards: list[Shard], label: str, task: str, config: CleaningConfig, max_rows: int | None,
             seed: int) -> tuple[Plan, RawSketch, int, float]:
    """Pass 1: every rule observes every batch; the rules decide. Returns the plan, the raw sketch,
    the rows the rules acting in pass 1 keep and the first batch's pandas bytes per row."""
    plan: Plan | None = None
    states: dict[Rule, Any] = {}
    raw: RawSketch | None = None
    kept, bytes_per_row = 0, 0.0
    for index, batch in enumerate(table_batches(shards, max_rows, "ingest: streaming: pass 1 of 3 (profile)")):
        if plan is None:
            typed = table_format(shards[0].path, shards[0].name) != "csv"  # CSV batches are read as text
            plan = Plan(label, config, task, [str(column) for column in batch.columns], typed=typed, seed=seed)
            bytes_per_row = float(batch.memory_usage(deep=True).sum()) / max(len(batch), 1)
        view: pd.DataFrame = batch
        for rule in RULES:
            if rule.decides == "profile" or (rule.decides == "first" and index == 0):
                if rule not in states:
                    states[rule] = rule.start(plan)
                rule.observe(states[rule], view, plan)
            if rule.decides == "first" and index == 0:
                rule.decide(states[rule], plan)
            if rule.acts_in_pass_1:
                view = rule.apply(view, plan, {})  # counted in pass 2
        raw = raw or RawSketch(plan)
        raw.update(batch)
        kept += len(view)
    assert plan is not None and raw is not None  # table_batches refuses a table without rows
    for rule in RULES:
        if rule.decides == "profile":
            rule.decide(states[rule], plan)
    return plan, raw, kept, bytes_per_row


def arrow_schema(plan: Plan) -> pa.Schema:
    """The cleaned rows' columns in the source's order: numbers as float64, categories and classes as text."""
    kept = set(plan.features) | {plan.label}
    types = {column: pa.float64() for column in plan.numeric}
    types.update({column: pa.string() for column in plan.categorical})
    types[plan.label] = pa.float64() if plan.task == "regression" else pa.string()
    return pa.schema([pa.field(column, types[column]) for column in plan.columns if column in kept])


def _bucket(plan: Plan, shards: list[Shard], folder: Path, buckets: int, flush_rows: int) -> Counts:
    """Pass 2: cleans every batch and writes its rows to their hash's bucket folder.

    Cleaned rows are held until there are ``flush_rows`` of them, then each bucket's share goes
    to a file of its own (``bucket-<b>/part-<flush>.parquet``): a file per flush and bucket,
    closed at once, keeps no writer's metadata growing with the data.
    """
    schema = arrow_schema(plan)
    counts: Counts = {}
    held: list[pd.DataFrame] = []
    flushes = 0
    for batch in table_batches(shards, progress="ingest: streaming: pass 2 of 3 (clean into buckets)"):
        for rule in RULES:
            if not rule.per_bucket:
                batch = rule.apply(batch, plan, counts)
        held.append(batch)
        if sum(len(frame) for frame in held) >= flush_rows:
            _flush(pd.concat(held, ignore_index=True), folder, buckets, flushes, schema)
            held, flushes = [], flushes + 1
    if held:
        _flush(pd.concat(held, ignore_index=True), folder, buckets, flushes, schema)
    return counts


def _flush(frame: pd.DataFrame, folder: Path, buckets: int, flush: int, schema: pa.Schema) -> None:
    # numbers as float64 in every batch, so equal rows hash alike and every file has one schema
    frame = frame.astype({field.name: np.float64 for field in schema if field.type == pa.float64()})
    which = row_hashes(frame) % np.uint64(buckets)
    for index in np.unique(which):
        target = folder / f"bucket-{int(index):05d}"
        target.mkdir(exist_ok=True)
        part = pa.Table.from_pandas(frame[which == index], schema=schema, preserve_index=False)
        pq.write_table(part, target / f"part-{flush:06d}.parquet")


def _deduplicate(plan: Plan, counts: Counts, buckets: list[Path], out: Path) -> tuple[TableSketch, pd.DataFrame]:
    """Pass 3: each bucket cleaned by the per-bucket rules, sketched and written as one shard;
    the rules deciding from the cleaned rows observe it and decide."""
    cleaned = TableSketch(plan)
    late = [rule for rule in RULES if rule.decides == "cleaned"]
    states = {rule: rule.start(plan) for rule in late}
    schema = arrow_schema(plan)
    sample = pd.DataFrame()
    for index, bucket in enumerate(buckets):
        frame = pq.read_table(bucket, schema=schema).to_pandas()
        shutil.rmtree(bucket)
        for rule in RULES:
            if rule.per_bucket:
                frame = rule.apply(frame, plan, counts)
        frame = frame.reset_index(drop=True)
        cleaned.update(frame)
        for rule in late:
            rule.observe(states[rule], frame, plan)
        if len(sample) < REPORT_SAMPLE_ROWS:
            sample = pd.concat([sample, frame.head(REPORT_SAMPLE_ROWS - len(sample))], ignore_index=True)
        frame.to_parquet(out / f"part-{index:05d}.parquet", index=False)
        log.info("ingest: streaming: pass 3 of 3 (deduplicate): bucket %d of %d, %d rows", index + 1, len(buckets),
                 len(frame))
    if not cleaned.rows:
        raise _no_rows_left()
    for rule in late:
        rule.decide(states[rule], plan)
    return cleaned, sample


def bucket_count(rows: int, bytes_per_row: float) -> int:
    """Buckets for pass 3: enough that one holds about :data:`BUCKET_MEMORY_BYTES` in pandas."""
    per_bucket = max(1_000, int(BUCKET_MEMORY_BYTES / max(bytes_per_row, 1.0)))
    return max(1, math.ceil(rows / per_bucket))


def clean_batches(shards: list[Shard], label: str, task: str, config: CleaningConfig, output_dir: Path,
                  shards_dir: Path, max_rows: int | None = None, seed: int = 0) -> Cleaned:
    """The three passes over record batches: writes the cleaned shards into ``shards_dir``.

    ``output_dir`` holds the buckets meanwhile; ``max_rows`` (``data.max_rows``; default ``None``:
    no limit) is checked while pass 1 counts; ``seed`` (default 0) seeds the quantile samples.

    Raises:
        DataError: Refused input (as :func:`clean_table`); nothing is written then.
    """
    plan, raw, kept, bytes_per_row = _profile(shards, label, task, config, max_rows, seed)
    buckets = bucket_count(kept, bytes_per_row)
    log.info("ingest: streaming: %d rows profiled; %d numeric and %d categorical features; %d buckets",
             raw.rows, len(plan.numeric), len(plan.categorical), buckets)
    with tempfile.TemporaryDirectory(prefix="tunepipe-buckets-", dir=output_dir) as scratch:
        flush_rows = max(1_000, int(BUCKET_MEMORY_BYTES / 2 / max(bytes_per_row, 1.0)))
        counts = _bucket(plan, shards, Path(scratch), buckets, flush_rows)
        cleaned, sample = _deduplicate(plan, counts, sorted(Path(scratch).glob("bucket-*")), shards_dir)
    return Cleaned(plan, counts, raw, cleaned, sample, buckets)
