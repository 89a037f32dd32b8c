"""A split as preprocess writes it and every later step reads it: one layout, one reader type.

Layout, whatever the size of the data or how ingest read it::

    <split folder>/shards/part-00000.parquet ...  the rows (a table read as one batch: one shard)
    <split folder>/shards/_split.json             SplitMetadata: policy, seed, fractions, rows, oversampling

:func:`writing_split` fills a temporary folder and installs it in one rename with its metadata, so
a reader sees a whole split or none. :meth:`Split.open` reads the metadata and the Parquet footers
(rows, bytes; no data) and refuses shards that disagree with the metadata.

Whether a consumer holds the split whole or streams it is decided here alone, by its size:
:attr:`Split.fits_memory` (at most :data:`WHOLE_SPLIT_BYTES` of uncompressed column data). A split
that fits is read whole, which is fastest and gives training the arrays (and so the exact batches)
it has always had; a larger one is read in chunks of :data:`CHUNK_ROWS` rows, so memory stays
about one chunk whatever the split's size. :meth:`Split.inputs` and :meth:`Split.sample` make the
choice for the consumer; the tf.data input (:meth:`Split._dataset`) reads the shards one record
batch at a time in a Python generator, encodes each chunk as the in-memory path does and leaves
batching to TensorFlow (``rebatch``), so Python runs once per chunk. Chunks hold a whole number of
batches, so the dataset's cardinality is known and a fit sizes ``steps_per_execution`` as it does
for arrays. Shuffling, when asked for (training), is seeded and per epoch: the shard order, then
the rows within each chunk.
"""

from __future__ import annotations

import json
import logging
import math
import operator
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tunepipe import artifacts
from tunepipe.data.features import PreprocessingSpec, model_inputs, targets
from tunepipe.data.sampling import (
    LABEL_BINS,
    STRATA_CLASSES,
    STRATA_DECILES,
    Arrays,
    SampleDescription,
    allocation,
    sample_arrays,
)
from tunepipe.data.sketches import NumericSketch
from tunepipe.errors import DataError
from tunepipe.storage import atomic

log = logging.getLogger(__name__)

# The split policies preprocess records (tunepipe.data.preprocess decides which).
STRATIFIED, HASHED = "stratified", "hashed"
# 64 MiB of uncompressed column data (Parquet footers), about 160,000 rows of 50 numeric features.
# Up to it a consumer holds the split whole (every shipped and quality-bench table is far below);
# above it, it streams. The memory drill's 700,000 training rows (about 270 MiB) stream.
WHOLE_SPLIT_BYTES = 64 * 1024**2
# Rows encoded per Python step of a streamed split: 32,768 rows of 50 float32 inputs are 6.5 MB.
CHUNK_ROWS = 32_768
# The column an oversampled training split carries: each row's position among the training rows
# before oversampling, so the copies oversampling made of one row are known as such (they must
# share a cross-validation fold) while natural duplicates, which the data holds, stay rows of their
# own. Only the oversampled training split has it; no model input reads it.
COPY_OF = "__tunepipe_copy_of__"
# Rows whose inputs :class:`FitInputs` lends for latency measurements (the cost measures at most 256).
SAMPLE_ROWS = 256


@dataclass(frozen=True)
class SplitMetadata:
    """What preprocess decided for a split, recorded beside its shards.

    Attributes:
        split: ``train``, ``validation`` or ``test``.
        policy: :data:`STRATIFIED` (a seeded shuffle, by class for classification, of a table read
            as one batch) or :data:`HASHED` (each row's split from a hash of its content and the seed).
        seed: The seed of the shuffle or the hash.
        val_fraction: The validation fraction asked for.
        test_fraction: The test fraction asked for.
        rows: Rows written (after oversampling).
        oversampled: Whether ``augmentation.oversample`` resampled this (training) split.
    """

    split: str
    policy: str
    seed: int
    val_fraction: float
    test_fraction: float
    rows: int = 0
    oversampled: bool = False


class SplitWriter:
    """Writes one split's shards into the temporary folder :func:`writing_split` installs."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.rows = 0

    def write(self, name: str, frame: pd.DataFrame) -> None:
        """Writes ``frame`` as the shard ``name`` (``part-*.parquet``)."""
        frame.to_parquet(self.folder / name, index=False)
        self.rows += len(frame)


@contextmanager
def writing_split(split_dir: str | Path, metadata: SplitMetadata) -> Iterator[SplitWriter]:
    """A writer of one split's shards: when the ``with`` block ends without error, the shards and
    the metadata (its ``rows`` counted by the writer) take the split's place in one rename; when
    it fails, nothing is left.

    Args:
        split_dir: The split's folder (an artifact folder); created when missing.
        metadata: What preprocess decided for the split.
    """
    folder = Path(split_dir) / artifacts.SPLIT_SHARDS_DIR
    folder.parent.mkdir(parents=True, exist_ok=True)
    with atomic.replacing_folder(folder) as partial:
        writer = SplitWriter(partial)
        yield writer
        recorded = asdict(replace(metadata, rows=writer.rows))
        (partial / artifacts.SPLIT_METADATA_FILE).write_text(json.dumps(recorded, indent=2))


@dataclass(frozen=True)
class Split:
    """A split preprocess wrote: its shards, metadata and size, read whole or in chunks."""

    shards: tuple[Path, ...]
    metadata: SplitMetadata
    bytes: int

    @classmethod
    def open(cls, split_dir: str | Path) -> Split:
        """The split in ``split_dir``, from its metadata and Parquet footers (no rows are read).

        Raises:
            DataError: No split there, or shards that disagree with its metadata.
        """
        folder = Path(split_dir) / artifacts.SPLIT_SHARDS_DIR
        recorded = folder / artifacts.SPLIT_METADATA_FILE
        if not recorded.is_file():
            raise DataError(f"{split_dir}: not a split written by preprocess (no {recorded.relative_to(split_dir)})")
        metadata = SplitMetadata(**json.loads(recorded.read_text()))
        shards = tuple(sorted(folder.glob("part-*.parquet")))
        footers = [pq.ParquetFile(shard).metadata for shard in shards]
        rows = sum(footer.num_rows for footer in footers)
        if not shards or rows != metadata.rows:
            raise DataError(f"{folder}: {len(shards)} shards of {rows} rows, but its metadata records "
                            f"{metadata.rows} rows")
        size = sum(footer.row_group(group).total_byte_size for footer in footers
                   for group in range(footer.num_row_groups))
        return cls(shards, metadata, size)

    @property
    def rows(self) -> int:
        return self.metadata.rows

    @property
    def fits_memory(self) -> bool:
        """Whether consumers hold this split whole (the one place that decides; see the module)."""
        return self.bytes <= WHOLE_SPLIT_BYTES

    def frame(self, columns: list[str] | None = None) -> pd.DataFrame:
        """Every row (of ``columns``, default all) in one frame, shards in order."""
        parts = [pd.read_parquet(shard, columns=columns) for shard in self.shards]
        return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)

    def head(self, rows: int) -> pd.DataFrame:
        """The first ``rows`` rows (all of them when the split is shorter)."""
        return next(self.chunks(rows))

    def chunks(self, rows: int, order: np.ndarray | None = None) -> Iterator[pd.DataFrame]:
        """The split in chunks of exactly ``rows`` rows (the last one shorter), shards in ``order``."""
        carry: list[pd.DataFrame] = []
        held = 0
        for index in order if order is not None else range(len(self.shards)):
            for batch in pq.ParquetFile(self.shards[int(index)], pre_buffer=False).iter_batches(batch_size=rows):
                carry.append(batch.to_pandas())
                held += batch.num_rows
                while held >= rows:
                    joined = pd.concat(carry, ignore_index=True) if len(carry) > 1 else carry[0]
                    yield joined.iloc[:rows]
                    rest = joined.iloc[rows:]
                    carry, held = ([rest] if len(rest) else []), len(rest)
        if held:
            yield pd.concat(carry, ignore_index=True)

    def arrays(self, spec: PreprocessingSpec) -> Arrays:
        """The whole split as the model's inputs (by input name) and its targets, encoded by ``spec``."""
        frame = self.frame()
        return model_inputs(frame, spec), targets(frame, spec)

    def inputs(self, encode: Callable[[pd.DataFrame], Any], batch_size: int, shuffle_seed: int | None = None,
               chunk_rows: int = CHUNK_ROWS) -> Any:
        """The split encoded by ``encode``: its value on the whole frame when the split fits memory,
        else a ``tf.data.Dataset`` of it in batches of ``batch_size`` rows.

        Args:
            encode: Rows to a model's feed (a dict of arrays, or ``(inputs, targets)``).
            batch_size: Rows per batch of a streamed split; the last batch of an epoch may be shorter.
            shuffle_seed: Seeds a streamed split's per-epoch shuffle (training); None (default)
                keeps the order (validation, evaluation), so outputs line up with :meth:`frame`.
                Arrays are shuffled by the fit itself.
            chunk_rows: Rows per Python step (default :data:`CHUNK_ROWS`), rounded down to a whole
                number of batches (at least one).
        """
        if self.fits_memory:
            return encode(self.frame())
        return self._dataset(encode, batch_size, shuffle_seed, chunk_rows)

    def _dataset(self, encode: Callable[[pd.DataFrame], Any], batch_size: int, shuffle_seed: int | None,
                 chunk_rows: int) -> Any:
        import tensorflow as tf

        chunk = max(batch_size, chunk_rows // batch_size * batch_size)
        epochs = iter(range(1 << 62))

        def generate() -> Iterator[Any]:
            rng = None if shuffle_seed is None else np.random.default_rng([shuffle_seed, next(epochs)])
            order = None if rng is None else rng.permutation(len(self.shards))
            for frame in self.chunks(chunk, order):
                encoded = tf.nest.map_structure(np.asarray, encode(frame))
                if rng is not None:
                    encoded = tf.nest.map_structure(operator.itemgetter(rng.permutation(len(frame))), encoded)
                yield encoded

        first = tf.nest.map_structure(tf.convert_to_tensor, encode(self.head(1)))
        signature = tf.nest.map_structure(lambda value: tf.TensorSpec((None, *value.shape[1:]), value.dtype), first)
        batches = math.ceil(self.rows / batch_size)
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return (dataset.rebatch(batch_size).apply(tf.data.experimental.assert_cardinality(batches))
                .prefetch(tf.data.AUTOTUNE))

    def sample(self, spec: PreprocessingSpec, rows: int, seed: int) -> tuple[Arrays, SampleDescription]:
        """A stratified, seeded sample of ``rows`` rows (0 or at least the split's size: every row).

        Strata and allocation as :mod:`tunepipe.data.sampling`. A split that fits memory is sampled
        there (:func:`~tunepipe.data.sampling.sample_arrays`); a larger one in two passes over its
        chunks: stratum counts, then the rows with the smallest seeded random keys per stratum (a
        bottom-k sample: uniform, and the same in every process of a distributed search).
        """
        if self.fits_memory or rows <= 0 or rows >= self.rows:
            return sample_arrays(self.arrays(spec), rows, seed, spec.is_classification)
        log.info("tune: drawing a stratified sample of %s of %s rows in chunks", f"{rows:,}", f"{self.rows:,}")
        edges = None if spec.is_classification else self._decile_edges(spec, seed)
        counts: dict[Any, int] = {}
        for frame in self.chunks(CHUNK_ROWS):
            for stratum, count in zip(*np.unique(_strata(frame, spec, edges), return_counts=True), strict=True):
                counts[stratum] = counts.get(stratum, 0) + int(count)
        strata = sorted(counts)
        quota = dict(zip(strata, allocation(np.array([counts[key] for key in strata]), rows), strict=True))
        rng = np.random.default_rng(seed)
        kept = pd.DataFrame()
        for frame in self.chunks(CHUNK_ROWS):
            frame = frame.assign(_key=rng.random(len(frame)), _stratum=_strata(frame, spec, edges))
            kept = pd.concat([kept, frame], ignore_index=True)
            rank = kept.groupby("_stratum")["_key"].rank(method="first")
            kept = kept[rank.to_numpy() <= kept["_stratum"].map(quota).to_numpy()]
        kept = kept.sort_values("_key").drop(columns=["_key", "_stratum"]).reset_index(drop=True)
        by = STRATA_CLASSES if spec.is_classification else STRATA_DECILES
        return (model_inputs(kept, spec), targets(kept, spec)), SampleDescription(self.rows, len(kept), by)

    def _decile_edges(self, spec: PreprocessingSpec, seed: int) -> np.ndarray:
        sketch = NumericSketch()
        rng = np.random.default_rng(seed)
        for frame in self.chunks(CHUNK_ROWS):
            sketch.update(targets(frame, spec), rng)
        return np.unique(sketch.quantile(list(np.linspace(0, 1, LABEL_BINS + 1)[1:-1])))


def _strata(frame: pd.DataFrame, spec: PreprocessingSpec, edges: np.ndarray | None) -> np.ndarray:
    labels = targets(frame, spec)
    return labels if edges is None else np.digitize(labels, edges)


class FitInputs(NamedTuple):
    """What a fit takes: per split, arrays ``(inputs, targets)`` or a ``tf.data`` dataset (:meth:`Split.inputs`).

    Attributes:
        train: The training split (a dataset is shuffled per epoch by itself).
        validation: The validation split, in order.
        rows: Train plus validation rows.
        sample: The first :data:`SAMPLE_ROWS` validation rows' inputs, for the cost measurement.
    """

    train: Any
    validation: Any
    rows: int
    sample: dict[str, np.ndarray]


def fit_inputs(train_dir: str | Path, validation_dir: str | Path, spec: PreprocessingSpec, batch_size: int,
               validation_batch_size: int | None, seed: int) -> FitInputs:
    """The train and validation splits as a fit takes them.

    Args:
        batch_size: Rows per training batch (the global batch, with several replicas).
        validation_batch_size: Rows per validation batch of a streamed split (None: ``batch_size``).
        seed: Seeds a streamed training split's per-epoch shuffle.
    """
    train, validation = Split.open(train_dir), Split.open(validation_dir)

    def encode(frame: pd.DataFrame) -> Arrays:
        return model_inputs(frame, spec), targets(frame, spec)

    held_out = validation.inputs(encode, validation_batch_size or batch_size)
    return FitInputs(train.inputs(encode, batch_size, seed), held_out, train.rows + validation.rows,
                     model_inputs(validation.head(SAMPLE_ROWS), spec))
