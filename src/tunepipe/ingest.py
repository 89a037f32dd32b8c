"""Ingest: read a CSV or Parquet file, clean it, and describe what was done.

Cleaning is deliberately conservative and fully reported: exact duplicate rows and rows
without a label are dropped, numeric-looking text columns are coerced to numbers (the cells
that would not convert are counted), missing numeric values take the column median and
missing categorical values the most frequent value.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunepipe import artifacts
from tunepipe.datasets import resolve
from tunepipe.errors import DataError

log = logging.getLogger(__name__)

READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
# A text column is treated as numeric when at least this share of its non-missing cells parse
# as numbers: a few typos ("n/a", "12,5") should not turn a measurement into a category.
NUMERIC_TEXT_SHARE = 0.9
# An integer label with at most this many distinct values is taken for class ids.
MAX_INTEGER_CLASSES = 20


@dataclass(frozen=True)
class IngestResult:
    """What ingest produced: the cleaned frame, its schema and the report of actions."""

    frame: pd.DataFrame
    schema: dict[str, Any]
    report: dict[str, Any]


def local_path(uri: str) -> Path:
    """Resolves a data URI to a local file, refusing schemes this version cannot read.

    Raises:
        DataError: The URI is not a local path, or the file does not exist.
    """
    resolved = resolve(uri)
    if "://" in resolved:
        raise DataError(f"{uri}: only local files and sample:// datasets are supported as data sources")
    path = Path(resolved)
    if not path.is_file():
        raise DataError(f"{uri}: no such file")
    return path


def fingerprint(uri: str) -> str:
    """SHA-256 of the source file's bytes: identifies the data in caches and model cards."""
    digest = hashlib.sha256()
    with local_path(uri).open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return f"sha256:{digest.hexdigest()}"


def read_table(uri: str) -> pd.DataFrame:
    """Reads a CSV or Parquet file into a frame.

    Raises:
        DataError: Unsupported extension, unreadable content, or no rows.
    """
    path = local_path(uri)
    kind = READERS.get(path.suffix.lower())
    if kind is None:
        supported = ", ".join(sorted(READERS))
        raise DataError(f"{uri}: unsupported file type {path.suffix!r} (supported: {supported})")
    try:
        frame = pd.read_csv(path) if kind == "csv" else pd.read_parquet(path)
    except Exception as error:  # pandas and pyarrow raise many unrelated types
        raise DataError(f"{uri}: cannot be read as {kind}: {error}") from None
    if frame.empty:
        raise DataError(f"{uri}: has no data rows")
    return frame


def infer_task(labels: pd.Series) -> str:
    """Classification for text, boolean or few distinct integer labels; regression otherwise."""
    values = labels.dropna()
    if not pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        return "classification"
    integral = bool(np.all(np.equal(np.mod(values.to_numpy(dtype=float), 1), 0)))
    if integral and values.nunique() <= MAX_INTEGER_CLASSES:
        return "classification"
    return "regression"


def _coerce_numeric_text(frame: pd.DataFrame, label: str, actions: dict[str, dict]) -> None:
    for column in frame.columns:
        series = frame[column]
        if column == label or pd.api.types.is_numeric_dtype(series):
            continue
        present = series.dropna()
        if present.empty or present.map(lambda value: isinstance(value, bool | np.bool_)).all():
            continue  # booleans stay categorical, with or without missing values
        numbers = pd.to_numeric(present, errors="coerce")
        parsed = int(numbers.notna().sum())
        if parsed / len(present) >= NUMERIC_TEXT_SHARE:
            frame[column] = pd.to_numeric(series, errors="coerce")
            actions[column]["coerced_to_numeric"] = True
            actions[column]["unparseable_cells"] = len(present) - parsed


def _impute(frame: pd.DataFrame, label: str, actions: dict[str, dict]) -> None:
    for column in frame.columns:
        if column == label:
            continue
        missing = int(frame[column].isna().sum())
        if missing == 0:
            continue
        series = frame[column]
        if series.isna().all():
            raise DataError(f"column {column!r} has no values at all")
        if pd.api.types.is_numeric_dtype(series):
            fill: Any = float(series.median())
            method = "median"
        else:
            fill = series.mode(dropna=True).iloc[0]
            method = "most_frequent"
        frame[column] = series.fillna(fill)
        actions[column].update(imputed=missing, imputation=method, fill_value=_plain(fill))


def _plain(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def clean(frame: pd.DataFrame, label: str, task: str = "auto") -> IngestResult:
    """Cleans a raw frame and returns it with its schema and a report of every action.

    Args:
        frame: Raw rows as read.
        label: The column to predict.
        task: ``classification``, ``regression`` or ``auto`` (inferred from the label).

    Raises:
        DataError: The label column is missing or empty, or the task does not fit the label.
    """
    if label not in frame.columns:
        raise DataError(f"label column {label!r} not found; columns are {list(frame.columns)}")
    frame = frame.copy()
    rows_in = len(frame)
    actions: dict[str, dict] = {str(column): {} for column in frame.columns}
    _coerce_numeric_text(frame, label, actions)
    no_label = int(frame[label].isna().sum())
    frame = frame[frame[label].notna()]
    if frame.empty:
        raise DataError(f"label column {label!r} has no values")
    duplicates = int(frame.duplicated().sum())
    frame = frame.drop_duplicates().reset_index(drop=True)
    _impute(frame, label, actions)
    resolved_task = infer_task(frame[label]) if task == "auto" else task
    if resolved_task == "regression" and not pd.api.types.is_numeric_dtype(frame[label]):
        raise DataError(f"label column {label!r} is not numeric, so it cannot be regressed")
    schema = infer_schema(frame, label, resolved_task)
    for column in schema["categorical"]:
        frame[column] = frame[column].astype(str)
    if resolved_task == "classification":
        frame[label] = frame[label].astype(str)
    report = {
        "rows_in": rows_in,
        "rows_out": len(frame),
        "dropped_without_label": no_label,
        "dropped_duplicates": duplicates,
        "columns": {column: change for column, change in actions.items() if change},
    }
    return IngestResult(frame=frame, schema=schema, report=report)


def infer_schema(frame: pd.DataFrame, label: str, task: str) -> dict[str, Any]:
    """Feature types and ranges of a cleaned frame, with the label and the task."""
    numeric, categorical = [], []
    ranges: dict[str, Any] = {}
    for column in frame.columns:
        if column == label:
            continue
        series = frame[column]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            numeric.append(column)
            ranges[column] = {"min": float(series.min()), "max": float(series.max())}
        else:
            categorical.append(column)
            ranges[column] = {"categories": int(series.nunique())}
    if not numeric and not categorical:
        raise DataError("the data has no feature columns besides the label")
    return {
        "label": label,
        "task": task,
        "numeric": numeric,
        "categorical": categorical,
        "features": ranges,
        "rows": len(frame),
    }


def run_ingest(source: str, label: str, task: str, output_dir: str | Path) -> IngestResult:
    """Reads, cleans and writes the dataset, schema and report into ``output_dir``.

    Files: :data:`~tunepipe.artifacts.CLEANED_DATA_FILE`, :data:`~tunepipe.artifacts.SCHEMA_FILE`
    and :data:`~tunepipe.artifacts.DATA_REPORT_FILE`.
    """
    log.info("ingest: reading %s", source)
    result = clean(read_table(source), label, task)
    result.schema["fingerprint"] = fingerprint(source)
    result.report["source"] = source
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    result.frame.to_parquet(out / artifacts.CLEANED_DATA_FILE, index=False)
    (out / artifacts.SCHEMA_FILE).write_text(json.dumps(result.schema, indent=2))
    (out / artifacts.DATA_REPORT_FILE).write_text(json.dumps(result.report, indent=2))
    log.info(
        "ingest: %d rows in, %d out (%d without label, %d duplicates); task %s",
        result.report["rows_in"], result.report["rows_out"],
        result.report["dropped_without_label"], result.report["dropped_duplicates"],
        result.schema["task"],
    )
    return result
