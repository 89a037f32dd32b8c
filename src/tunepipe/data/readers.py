"""Reading tables: CSV (delimiter and encoding sniffed), Parquet and JSONL, one file or many shards.

Every refusal names the file: empty, header only, binary or unreadable, duplicate column
names, unsupported extension, shards whose columns differ.
"""

from __future__ import annotations

import codecs
import csv
import logging
from collections import Counter
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from tunepipe.errors import DataError

log = logging.getLogger(__name__)

FORMATS = {
    ".csv": "csv", ".tsv": "csv", ".txt": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "jsonl", ".ndjson": "jsonl",
}
# Bytes looked at to sniff the encoding and the delimiter: enough for a header and some rows.
SNIFF_BYTES = 64 * 1024
DELIMITERS = ",;\t|"
WESTERN = "cp1252"


def table_format(path: Path, name: str | None = None) -> str:
    """The reader for a file, from its extension.

    Raises:
        DataError: The extension is not one of :data:`FORMATS`.
    """
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        supported = ", ".join(sorted(FORMATS))
        raise DataError(f"{name or path}: unsupported file type {path.suffix or '(none)'!r} (supported: {supported})")
    return kind


def sniff_encoding(sample: bytes, name: str) -> str:
    """``utf-8-sig`` when a UTF-8 byte-order mark starts the file (``utf-16`` for its marks),
    ``utf-8`` when the sample decodes as UTF-8, else ``cp1252`` if ``charset_normalizer``
    finds it plausible, else that library's best guess.

    Raises:
        DataError: The sample holds NUL bytes (a binary file) or no encoding fits.
    """
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if b"\x00" in sample:
        raise DataError(f"{name}: is a binary file, not text (NUL bytes near the start)")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(sample, final=False)
        return "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    matches = from_bytes(sample)
    candidates = [match.encoding for match in matches]
    if not candidates:
        raise DataError(f"{name}: is not readable text in any known encoding")
    # Short samples fit several single-byte code pages equally well; Windows-1252 (what
    # spreadsheets export in Western locales) wins whenever it is among them.
    return WESTERN if WESTERN in candidates else str(candidates[0])


def sniff_delimiter(text: str) -> str:
    """The delimiter ``csv.Sniffer`` finds among ``, ; tab |`` in the first lines; ``,`` if unsure."""
    lines = text.splitlines()[:50]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=DELIMITERS).delimiter
    except csv.Error:
        return ","


def check_header(names: list[str], name: str) -> None:
    duplicates = sorted(column for column, count in Counter(names).items() if count > 1)
    if duplicates:
        raise DataError(f"{name}: duplicate column names {duplicates}")
    if any(column == "" for column in names):
        raise DataError(f"{name}: a column has an empty name (position {names.index('') + 1})")


def read_csv(path: Path, name: str) -> pd.DataFrame:
    """Reads a CSV whose encoding and delimiter are sniffed from its first 64 KiB.

    The pyarrow engine (multi-threaded) is tried first and pandas' C engine used where it
    refuses (unusual quoting, ragged rows), so valid files read with either.
    """
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if not sample.strip():
        raise DataError(f"{name}: is empty")
    encoding = sniff_encoding(sample, name)
    text = sample.decode(encoding, errors="ignore")
    delimiter = sniff_delimiter(text)
    header = next(csv.reader([text.splitlines()[0]], delimiter=delimiter))
    check_header([column.strip() for column in header], name)
    frame: pd.DataFrame | None = None
    if encoding in ("utf-8", "utf-8-sig"):
        try:
            frame = pd.read_csv(path, sep=delimiter, encoding=encoding, engine="pyarrow")
        except Exception:  # pyarrow's stricter parser: fall back to the C engine below
            frame = None
    if frame is None:
        try:
            frame = pd.read_csv(path, sep=delimiter, encoding=encoding, low_memory=False)
        except Exception as error:  # pandas raises ParserError, UnicodeDecodeError, ValueError...
            raise DataError(f"{name}: cannot be read as CSV: {error}") from None
    if frame.empty:
        raise DataError(f"{name}: has a header but no data rows")
    frame.columns = [str(column).strip() for column in frame.columns]
    return frame


def read_parquet(path: Path, name: str) -> pd.DataFrame:
    """Reads a Parquet file, refusing duplicate column names before pandas renames them."""
    try:
        names = pq.read_schema(path).names
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError...
        raise DataError(f"{name}: cannot be read as Parquet: {error}") from None
    check_header(names, name)
    frame = pd.read_parquet(path)
    if frame.empty:
        raise DataError(f"{name}: has no data rows")
    return frame


def read_jsonl(path: Path, name: str) -> pd.DataFrame:
    """Reads JSON Lines (one object per line); keys become columns."""
    with path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if not sample.strip():
        raise DataError(f"{name}: is empty")
    encoding = sniff_encoding(sample, name)
    try:
        frame = pd.read_json(path, lines=True, encoding=encoding, dtype=False)
    except ValueError as error:
        raise DataError(f"{name}: cannot be read as JSON Lines: {error}") from None
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f"{name}: has no data rows")
    return frame


READERS = {"csv": read_csv, "parquet": read_parquet, "jsonl": read_jsonl}


def check_rows(rows: int, max_rows: int | None, name: str, before: int = 0) -> None:
    """Refuses more than ``max_rows`` rows (``data.max_rows``; ``None``: no limit) in all,
    counting the ``before`` rows of the shards already read."""
    if max_rows is None or before + rows <= max_rows:
        return
    counted = f" ({before + rows:,} with the shards before it)" if before else ""
    raise DataError(f"{name}: {rows:,} rows{counted}, more than data.max_rows={max_rows:,}; "
                    "raise the limit or sample the data")


def _parquet_rows(path: Path, name: str) -> int:
    try:
        return int(pq.read_metadata(path).num_rows)
    except Exception as error:  # pyarrow raises ArrowInvalid, OSError...
        raise DataError(f"{name}: cannot be read as Parquet: {error}") from None


def read_file(path: Path, name: str | None = None, max_rows: int | None = None, before: int = 0) -> pd.DataFrame:
    """Reads one table file by its extension; ``name`` (e.g. the ``gs://`` URI) goes in errors.

    ``max_rows`` (default ``None``: no limit) bounds ``before`` plus this file's rows; a
    Parquet file's row count is read from its footer, before its data.
    """
    label = name or str(path)
    if path.stat().st_size == 0:
        raise DataError(f"{label}: is empty")
    kind = table_format(path, label)
    if kind == "parquet":
        check_rows(_parquet_rows(path, label), max_rows, label, before)
    frame = READERS[kind](path, label)
    check_rows(len(frame), max_rows, label, before)
    return frame


def read_shards(paths: list[Path], names: list[str], max_rows: int | None = None) -> pd.DataFrame:
    """Reads several shards of one dataset; all must have the same columns.

    Raises:
        DataError: No shards, mixed formats, a shard whose columns differ from the first, or
            more than ``max_rows`` rows in all (default ``None``: no limit).
    """
    if not paths:
        raise DataError("no data files found")
    kinds = {table_format(path, name) for path, name in zip(paths, names, strict=True)}
    if len(kinds) > 1:
        raise DataError(f"{names[0]}: shards mix formats {sorted(kinds)}; use one format per dataset")
    frames: list[pd.DataFrame] = []
    for path, name in zip(paths, names, strict=True):
        frames.append(read_file(path, name, max_rows, sum(len(frame) for frame in frames)))
    first = list(frames[0].columns)
    for frame, name in zip(frames[1:], names[1:], strict=True):
        if list(frame.columns) != first:
            raise DataError(f"{name}: columns {list(frame.columns)} differ from the first shard's {first}")
    if len(frames) > 1:
        log.info("readers: %d shards read as one dataset", len(frames))
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)
