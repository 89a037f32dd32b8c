"""Ingest: read a table or an image folder (local or ``gs://``), validate, clean and describe it.

Reading is :mod:`tunepipe.data.sources` (where) and :mod:`tunepipe.data.readers` / :mod:`tunepipe.data.images`
(how); cleaning is :mod:`tunepipe.data.cleaning`, configured globally and per column; the schema
and the drift check against a baseline are :mod:`tunepipe.data.schema`. Everything done is
counted in a JSON data report, also rendered as HTML (:mod:`tunepipe.reports.report_html`).
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunepipe import artifacts
from tunepipe.config import CleaningConfig, ImageConfig, InputLimits
from tunepipe.data.batches import Shard, source_bytes
from tunepipe.data.cleaning import clean_frame, label_balance
from tunepipe.data.images import is_image_folder, read_image_folder
from tunepipe.data.readers import read_file, read_shards
from tunepipe.data.schema import MAX_INTEGER_CLASSES, check_drift, column_profile, infer_schema, load_schema
from tunepipe.data.sources import fingerprint, local_files, materialized, read_text
from tunepipe.errors import DataError
from tunepipe.storage import atomic

__all__ = ["IngestResult", "clean", "fingerprint", "infer_task", "read_table", "run_ingest"]

log = logging.getLogger(__name__)

@dataclass(frozen=True)
class IngestResult:
    """What ingest produced: the cleaned frame, its schema and the report of actions."""

    frame: pd.DataFrame
    schema: dict[str, Any]
    report: dict[str, Any]


def _data_files(folder: Path, uri: str) -> list[Path]:
    # Spark and Hadoop write _SUCCESS and _committed markers beside the shards.
    files = [path for path in local_files(folder) if not path.name.startswith("_")]
    if not files:
        raise DataError(f"{uri}: the folder holds no data files")
    return files


def _shards(folder: Path, uri: str, max_rows: int | None = None) -> pd.DataFrame:
    files = _data_files(folder, uri)
    names = [f"{uri.rstrip('/')}/{path.relative_to(folder)}" for path in files]
    return read_shards(files, names, max_rows)


def read_table(uri: str) -> pd.DataFrame:
    """Reads a table: one CSV, Parquet or JSONL file, or a folder / ``gs://`` prefix of shards.

    Raises:
        DataError: Unsupported URI or format, unreadable or empty content, an image folder.
    """
    with materialized(uri) as path:
        if path.is_file():
            return read_file(path, uri if "://" in uri and not uri.startswith("sample://") else str(path))
        if is_image_folder(path):
            raise DataError(f"{uri}: is an image folder, not a table")
        return _shards(path, uri)


def infer_task(labels: pd.Series) -> str:
    """Classification for text, boolean or few distinct integer labels; regression otherwise."""
    values = labels.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    integral = bool(np.all(np.equal(np.mod(values.to_numpy(dtype=float), 1), 0)))
    if integral and values.nunique() <= MAX_INTEGER_CLASSES:
        return "classification"
    return "regression"


def column_stats(frame: pd.DataFrame) -> dict[str, dict[str, Any]]:
    """Per-column statistics for the report: type, range or categories, missing fraction."""
    missing = frame.isna().mean()
    stats = {}
    for column in frame.columns:
        profile = column_profile(frame[column], float(missing[column]))
        profile.pop("values", None)
        stats[str(column)] = profile
    return stats


def _task(frame: pd.DataFrame, label: str, task: str) -> str:
    resolved = infer_task(frame[label]) if task == "auto" else task
    if resolved == "regression" and not pd.api.types.is_numeric_dtype(frame[label]):
        raise DataError(f"label column {label!r} is not numeric, so it cannot be regressed")
    if resolved == "classification":
        classes = frame[label].astype(str).unique()
        if len(classes) < 2:
            raise DataError(f"label column {label!r} has a single class {classes[0]!r}; classification needs two")
    return resolved


def clean(
    frame: pd.DataFrame, label: str, task: str = "auto", cleaning: CleaningConfig | None = None
) -> IngestResult:
    """Cleans a raw frame and returns it with its schema and a report of every action.

    Args:
        frame: Raw rows as read.
        label: The column to predict.
        task: ``classification``, ``regression`` or ``auto`` (inferred from the label).
        cleaning: Cleaning rules (default: :class:`~tunepipe.config.CleaningConfig`'s defaults).

    Raises:
        DataError: The label column is missing, empty or has one class; the task does not fit
            the label; every feature is empty.
    """
    config = cleaning or CleaningConfig()
    before = column_stats(frame)
    cleaned = clean_frame(frame, label, config)
    result = cleaned.frame
    resolved_task = _task(result, label, task)
    schema = infer_schema(result, label, resolved_task, {c: s["missing_fraction"] for c, s in before.items()})
    for column in schema["categorical"]:
        result[column] = result[column].astype(str)
    # what the served model fills a missing value with, exactly as ingest would have (categoricals as text)
    schema["fill_values"] = {
        column: None if cleaned.fills.get(column) is None
        else (str(cleaned.fills[column]) if column in schema["categorical"] else cleaned.fills[column])
        for column in [*schema["numeric"], *schema["categorical"]]
    }
    report: dict[str, Any] = {"rows_in": len(frame), "rows_out": len(result), **cleaned.counts}
    if resolved_task == "classification":
        result[label] = result[label].astype(str)
        report["label_balance"] = label_balance(result[label], config.imbalance_ratio)
        if report["label_balance"]["imbalanced"]:
            balance = report["label_balance"]
            cleaned.notes.append(
                f"label {label!r} is imbalanced: {balance['majority']!r} outnumbers {balance['minority']!r} "
                f"{balance['ratio']:.1f} to 1 (augmentation.oversample can rebalance the training split)"
            )
    report.update(columns=cleaned.columns, notes=cleaned.notes, before=before, after=column_stats(result))
    return IngestResult(frame=result, schema=schema, report=report)


def _load(
    source: str, label: str, task: str, cleaning: CleaningConfig, images: ImageConfig, limits: InputLimits,
    output_dir: Path,
) -> IngestResult:
    with materialized(source, allowed_roots=limits.allowed_roots, max_bytes=limits.max_bytes) as path:
        if path.is_dir() and is_image_folder(path):
            frame, image_report = read_image_folder(path, label, images, name=source, max_rows=limits.max_rows)
            from tunepipe.data.images import image_schema

            if task == "regression":
                raise DataError(f"{source}: an image folder is a classification dataset, not regression")
            schema = image_schema(frame, label, image_report)
            if schema["label_profile"]["categories"] < 2:
                raise DataError(f"{source}: a single class folder; classification needs two")
            report = {"rows_in": image_report["files"], "rows_out": len(frame), "images": image_report,
                      "label_balance": label_balance(frame[label], cleaning.imbalance_ratio),
                      "notes": [f"skipped corrupt image {item['file']}" for item in image_report["corrupt_skipped"]]}
            return IngestResult(frame, schema, report)
        shards = _table_files(path, source)
        if limits.streams(source_bytes(shards)):
            from tunepipe.data.stream_ingest import streaming_clean

            log.info("ingest: %s is %s bytes: streaming record batches (data.streaming: %s)",
                     source, f"{source_bytes(shards):,}", limits.streaming)
            schema, report, sample = streaming_clean(shards, label, task, cleaning, output_dir, limits.max_rows)
            return IngestResult(sample, schema, report)
        raw = read_file(path, source, limits.max_rows) if path.is_file() else _shards(path, source, limits.max_rows)
    return clean(raw, label, task, cleaning)


def _table_files(path: Path, source: str) -> list[Shard]:
    if path.is_file():
        return [Shard(path, source if "://" in source and not source.startswith("sample://") else str(path))]
    return [Shard(file, f"{source.rstrip('/')}/{file.relative_to(path)}") for file in _data_files(path, source)]


def run_ingest(
    source: str, label: str, task: str, output_dir: str | Path,
    cleaning: CleaningConfig | None = None, images: ImageConfig | None = None,
    baseline_schema_uri: str = "", html_path: str | Path | None = None, limits: InputLimits | None = None,
) -> IngestResult:
    """Reads, cleans and writes the dataset, schema and report into ``output_dir``.

    Files: :data:`~tunepipe.artifacts.CLEANED_DATA_FILE` (a streamed table: the Parquet shards of
    :data:`~tunepipe.artifacts.CLEANED_SHARDS_DIR`), :data:`~tunepipe.artifacts.SCHEMA_FILE`
    and :data:`~tunepipe.artifacts.DATA_REPORT_FILE`; the HTML report goes to ``html_path``
    (default: :data:`~tunepipe.artifacts.DATA_REPORT_HTML_FILE` in ``output_dir``).

    Args:
        baseline_schema_uri: An earlier run's schema (file, or the folder holding
            ``schema.json``), local or ``gs://``; empty (default) skips the drift check.
        limits: Allowed local roots, most rows and bytes (default: :class:`InputLimits`'
            defaults), checked before the data is read where the sizes are known.

    Raises:
        DataError: Refused input, or a fatal drift finding; nothing is written then.
    """
    log.info("ingest: reading %s", source)
    limits = limits or InputLimits()
    out = Path(output_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f"{atomic.TEMPORARY_PREFIX}ingest-") as scratch:
        result = _load(source, label, task, cleaning or CleaningConfig(), images or ImageConfig(), limits,
                       Path(scratch))
        result.schema["fingerprint"] = fingerprint(source, allowed_roots=limits.allowed_roots)
        result.report["source"] = source
        if baseline_schema_uri:
            uri = baseline_schema_uri
            if not uri.endswith(".json"):
                uri = f"{uri.rstrip('/')}/{artifacts.SCHEMA_FILE}"
            baseline = load_schema(read_text(uri, allowed_roots=limits.allowed_roots), uri)
            result.report["drift"] = {"baseline": uri, "findings": check_drift(baseline, result.schema, uri)}
        _write(result, out, Path(scratch), html_path)
    log.info(
        "ingest: %d rows in, %d out (%d without label, %d duplicates); task %s",
        result.report["rows_in"], result.report["rows_out"], result.report.get("dropped_without_label", 0),
        result.report.get("dropped_duplicates", 0), result.schema["task"],
    )
    for note in result.report.get("notes", []):
        log.info("ingest: note: %s", note)
    return result


def _write(result: IngestResult, out: Path, scratch: Path, html_path: str | Path | None) -> None:
    """The cleaned data (a streamed table's shards move in from ``scratch``), schema and reports."""
    from tunepipe.reports.report_html import render

    out.mkdir(parents=True, exist_ok=True)
    if result.schema.get("streaming"):
        atomic.install_folder(scratch / artifacts.CLEANED_SHARDS_DIR, out / artifacts.CLEANED_SHARDS_DIR)
    else:
        with atomic.replacing(out / artifacts.CLEANED_DATA_FILE) as partial:
            result.frame.to_parquet(partial, index=False)
    atomic.write_text(out / artifacts.SCHEMA_FILE, json.dumps(result.schema, indent=2))
    atomic.write_text(out / artifacts.DATA_REPORT_FILE, json.dumps(result.report, indent=2))
    page = Path(html_path) if html_path else out / artifacts.DATA_REPORT_HTML_FILE
    page.parent.mkdir(parents=True, exist_ok=True)
    atomic.write_text(page, render(result.report, result.frame, result.schema["numeric"]))
