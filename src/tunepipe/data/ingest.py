"""Ingest: read a table or an image folder (local, ``gs://`` or ``s3://``), clean and describe it.

Reading is :mod:`tunepipe.data.sources` (where) and :mod:`tunepipe.data.readers` /
:mod:`tunepipe.data.batches` / :mod:`tunepipe.data.images` (how). A table is cleaned by the rules of
:mod:`tunepipe.data.rules` (:mod:`tunepipe.data.clean`): as one batch when its files hold at most
``data.streaming_bytes``, batch by batch above; the same sketches give its schema and data report
(:mod:`tunepipe.data.report`), checked for drift against a baseline (:mod:`tunepipe.data.schema`)
and rendered as HTML (:mod:`tunepipe.reports.report_html`).

An image folder has a front of its own: it decodes to a frame of pixels and classes that no
cleaning rule applies to (no types to decide, no missing cells, no duplicates by content; corrupt
files are skipped by :mod:`tunepipe.data.images`), so only its label balance is reported.
"""

from __future__ import annotations

import json
import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from tunepipe import artifacts
from tunepipe.config import CleaningConfig, ImageConfig, InputLimits
from tunepipe.data.batches import Shard, source_bytes
from tunepipe.data.clean import clean_batches, clean_table
from tunepipe.data.images import is_image_folder, read_image_folder
from tunepipe.data.readers import read_shards
from tunepipe.data.report import balance_of_counts, describe
from tunepipe.data.schema import check_drift, load_schema
from tunepipe.data.sources import fingerprint, local_files, materialized, read_text
from tunepipe.data.task import infer_task
from tunepipe.errors import DataError
from tunepipe.storage import atomic

__all__ = ["IngestResult", "clean", "fingerprint", "infer_task", "read_table", "run_ingest"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What ingest produced: the cleaned frame (a sample of it when streamed), its schema and the report."""

    frame: pd.DataFrame
    schema: dict[str, Any]
    report: dict[str, Any]


def _data_files(folder: Path, uri: str) -> list[Path]:
    # Spark and Hadoop write _SUCCESS and _committed markers beside the shards.
    files = [path for path in local_files(folder) if not path.name.startswith("_")]
    if not files:
        raise DataError(f"{uri}: the folder holds no data files")
    return files


def _table_files(path: Path, source: str) -> list[Shard]:
    """The table's files (one, or every data file of a folder), each named as errors name it."""
    if path.is_file():
        return [Shard(path, source if "://" in source and not source.startswith("sample://") else str(path))]
    return [Shard(file, f"{source.rstrip('/')}/{file.relative_to(path)}") for file in _data_files(path, source)]


def _read(shards: list[Shard], max_rows: int | None = None) -> pd.DataFrame:
    """The whole table as one frame (``max_rows``: default ``None``, no limit)."""
    return read_shards([shard.path for shard in shards], [shard.name for shard in shards], max_rows)


def read_table(uri: str) -> pd.DataFrame:
    """Reads a table: one CSV, Parquet or JSONL file, or a folder / ``gs://`` prefix of shards.

    Raises:
        DataError: Unsupported URI or format, unreadable or empty content, an image folder.
    """
    with materialized(uri) as path:
        if is_image_folder(path):
            raise DataError(f"{uri}: is an image folder, not a table")
        return _read(_table_files(path, uri))


def clean(
    frame: pd.DataFrame, label: str, task: str = "auto", cleaning: CleaningConfig | None = None
) -> IngestResult:
    """Cleans a table held in memory (as one batch) and returns it with its schema and report.

    Args:
        frame: Raw rows as read (not modified).
        label: The column to predict.
        task: ``classification``, ``regression`` or ``auto`` (inferred from the label).
        cleaning: Cleaning rules (default: :class:`~tunepipe.config.CleaningConfig`'s defaults).

    Raises:
        DataError: The label column is missing, empty or has one class; the task does not fit
            the label; every feature is empty.
    """
    cleaned = clean_table(frame, label, task, cleaning or CleaningConfig())
    schema, report = describe(cleaned)
    return IngestResult(cleaned.frame, schema, report)


def _images(path: Path, source: str, label: str, task: str, images: ImageConfig, limits: InputLimits,
            imbalance_ratio: float) -> IngestResult:
    from tunepipe.data.images import image_schema

    frame, image_report = read_image_folder(path, label, images, name=source, max_rows=limits.max_rows)
    if task == "regression":
        raise DataError(f"{source}: an image folder is a classification dataset, not regression")
    schema = image_schema(frame, label, image_report)
    if schema["label_profile"]["categories"] < 2:
        raise DataError(f"{source}: a single class folder; classification needs two")
    counts = frame[label].astype(str).value_counts().to_dict()
    report = {"rows_in": image_report["files"], "rows_out": len(frame), "images": image_report,
              "label_balance": balance_of_counts(counts, imbalance_ratio),
              "notes": [f"skipped corrupt image {item['file']}" for item in image_report["corrupt_skipped"]]}
    return IngestResult(frame, schema, report)


def _load(
    source: str, label: str, task: str, cleaning: CleaningConfig, images: ImageConfig, limits: InputLimits,
    output_dir: Path,
) -> IngestResult:
    with materialized(source, allowed_roots=limits.allowed_roots, max_bytes=limits.max_bytes) as path:
        if path.is_dir() and is_image_folder(path):
            return _images(path, source, label, task, images, limits, cleaning.imbalance_ratio)
        shards = _table_files(path, source)
        if limits.streams(source_bytes(shards)):
            log.info("ingest: %s is %s bytes: streaming record batches (data.streaming: %s)",
                     source, f"{source_bytes(shards):,}", limits.streaming)
            with atomic.replacing_folder(output_dir / artifacts.CLEANED_SHARDS_DIR) as partial:
                cleaned = clean_batches(shards, label, task, cleaning, output_dir, partial, limits.max_rows)
                schema, report = describe(cleaned, many=True)
            return IngestResult(cleaned.frame, schema, report)
        raw = _read(shards, limits.max_rows)
    return clean(raw, label, task, cleaning)


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
        "ingest: %d rows in, %d out (%d without label dropped; %d duplicate rows, %d of them dropped); task %s",
        result.report["rows_in"], result.report["rows_out"], result.report.get("dropped_without_label", 0),
        result.report.get("duplicate_rows", 0), result.report.get("dropped_duplicates", 0), result.schema["task"],
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
