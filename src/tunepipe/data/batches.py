"""Reading a table one record batch at a time: the streaming path's reader.

CSV is read with pyarrow's streaming reader, every column as text (encoding and delimiter sniffed
as :mod:`tunepipe.data.readers` does): a type inferred from the first block could be contradicted
by a later one, so whether a column is numeric is decided over all of it by the caller (the share
of cells that parse, as the in-memory path's numeric-text rule). Parquet is read one row group
at a time, keeping its types; JSON Lines through pandas' chunked reader. Each shard must
have the first shard's columns; every refusal names the file.
"""

from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from tunepipe.data.readers import SNIFF_BYTES, check_header, check_rows, sniff_delimiter, sniff_encoding, table_format
from tunepipe.errors import DataError

log = logging.getLogger(__name__)

# Rows per batch: 65,536 rows of 100 float64 columns are 50 MiB in pandas.
BATCH_ROWS = 65_536
# A progress line every this many rows on long passes.
PROGRESS_ROWS = 2_000_000
# Bytes of CSV parsed per block (pyarrow's streaming reader), about BATCH_ROWS short rows.
CSV_BLOCK_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True)
class Shard:
    """One data file and the name errors give it (its URI)."""

    path: Path
    name: str


def _csv_batches(shard: Shard) -> Iterator[pd.DataFrame]:
    with shard.path.open("rb") as handle:
        sample = handle.read(SNIFF_BYTES)
    if not sample.strip():
        raise DataError(f"{shard.name}: is empty")
    encoding = sniff_encoding(sample, shard.name)
    text = sample.decode(encoding, errors="ignore")
    delimiter = sniff_delimiter(text)
    names = [column.strip() for column in next(csv.reader([text.splitlines()[0]], delimiter=delimiter))]
    check_header(names, shard.name)
    try:
        reader = pacsv.open_csv(
            shard.path,
            read_options=pacsv.ReadOptions(encoding=encoding, block_size=CSV_BLOCK_BYTES, skip_rows=1,
                                           column_names=names),
            parse_options=pacsv.ParseOptions(delimiter=delimiter),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()),
                                                 strings_can_be_null=True),
        )
        for batch in reader:
            yield batch.to_pandas()
    except (pa.ArrowInvalid, UnicodeDecodeError) as error:
        raise DataError(f"{shard.name}: cannot be read as CSV: {error}") from None


def _parquet_batches(shard: Shard) -> Iterator[pd.DataFrame]:
    try:
        check_header(pq.read_schema(shard.path).names, shard.name)
        # pre_buffer (pyarrow's default) reads every column chunk of the file ahead: 1 GB of a 1 GB
        # file. Without it one row group is read and decoded at a time, so memory follows the
        # file's row-group size (64-128 MB in files Spark or pyarrow write), not the file's.
        for batch in pq.ParquetFile(shard.path, pre_buffer=False).iter_batches(batch_size=BATCH_ROWS):
            yield batch.to_pandas()
    except (pa.ArrowInvalid, OSError) as error:
        raise DataError(f"{shard.name}: cannot be read as Parquet: {error}") from None


def _jsonl_batches(shard: Shard) -> Iterator[pd.DataFrame]:
    with shard.path.open("rb") as handle:
        encoding = sniff_encoding(handle.read(SNIFF_BYTES), shard.name)
    try:
        with pd.read_json(shard.path, lines=True, encoding=encoding, dtype=False, chunksize=BATCH_ROWS) as reader:
            yield from reader
    except ValueError as error:
        raise DataError(f"{shard.name}: cannot be read as JSON Lines: {error}") from None


BATCH_READERS = {"csv": _csv_batches, "parquet": _parquet_batches, "jsonl": _jsonl_batches}


def table_batches(shards: list[Shard], max_rows: int | None = None, progress: str = "") -> Iterator[pd.DataFrame]:
    """Every shard's rows in order, as pandas frames of at most about :data:`BATCH_ROWS` rows.

    With ``progress`` (e.g. ``"ingest: pass 1 of 3"``) a line is logged every
    :data:`PROGRESS_ROWS` rows and when the last shard is done.

    Raises:
        DataError: No shards, mixed formats, an empty or unreadable shard, a shard whose
            columns differ from the first's, or more than ``max_rows`` rows in all (default
            ``None``: no limit), refused as soon as the count passes it.
    """
    if not shards:
        raise DataError("no data files found")
    kinds = {table_format(shard.path, shard.name) for shard in shards}
    if len(kinds) > 1:
        raise DataError(f"{shards[0].name}: shards mix formats {sorted(kinds)}; use one format per dataset")
    read = BATCH_READERS[kinds.pop()]
    first: list[str] | None = None
    total = 0
    for shard in shards:
        if shard.path.stat().st_size == 0:
            raise DataError(f"{shard.name}: is empty")
        rows = 0
        for batch in read(shard):
            columns = [str(column) for column in batch.columns]
            if first is None:
                first = columns
            elif columns != first:
                raise DataError(f"{shard.name}: columns {columns} differ from the first shard's {first}")
            rows += len(batch)
            check_rows(rows, max_rows, shard.name, total)
            batch.columns = columns
            if progress and (total + rows) // PROGRESS_ROWS > (total + rows - len(batch)) // PROGRESS_ROWS:
                log.info("%s: %s rows read", progress, f"{total + rows:,}")
            yield batch
        if not rows:
            raise DataError(f"{shard.name}: has no data rows")
        total += rows
    if progress:
        log.info("%s: done, %s rows in %d shards", progress, f"{total:,}", len(shards))


def source_bytes(shards: list[Shard]) -> int:
    """The shards' total size on disk: what decides between the in-memory and the streaming path."""
    return sum(shard.path.stat().st_size for shard in shards)
