"""A streamed split as a ``tf.data`` input: Parquet shards read in chunks, batched in-graph, prefetched.

:func:`sharded_split` finds a split written by :mod:`tunepipe.data.stream_preprocess` and counts its
rows from the Parquet footers (nothing is read). :meth:`ShardedSplit.dataset` then reads the shards
one record batch at a time in a Python generator, encodes each chunk with the same
:func:`~tunepipe.data.features.model_inputs` and :func:`~tunepipe.data.features.targets` as the
in-memory path, and leaves batching to TensorFlow (``rebatch``), so the per-batch cost is in C++
and Python runs once per chunk of :data:`CHUNK_ROWS` rows. Chunks hold a whole number of batches,
so the dataset's cardinality is known (``ceil(rows / batch_size)``) and a fit sizes its
``steps_per_execution`` as it does for arrays (:func:`~tunepipe.modelling.hyperparameters.steps_per_execution_for`).

Shuffling, when asked for (training), is seeded and per epoch: the shard order, then the rows within
each chunk. Rows inside a shard are already in hash order (random with respect to content), so this
mixes as well as a shuffle buffer of a chunk, at no memory cost beyond one chunk. Peak memory is
one record batch plus one chunk plus the prefetched batches.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tunepipe.data.features import PreprocessingSpec, model_inputs, targets
from tunepipe.data.preprocess import read_arrays, streamed_shards
from tunepipe.data.sampling import (
    LABEL_BINS,
    STRATA_CLASSES,
    STRATA_DECILES,
    STRATA_NONE,
    SampleDescription,
    allocation,
)
from tunepipe.data.sketches import NumericSketch
from tunepipe.errors import DataError

log = logging.getLogger(__name__)

# Rows encoded per Python step: 32,768 rows of 50 float32 inputs are 6.5 MB.
CHUNK_ROWS = 32_768


@dataclass(frozen=True)
class ShardedSplit:
    """A split's shards and their total rows (from the Parquet footers)."""

    shards: tuple[Path, ...]
    rows: int
    spec: PreprocessingSpec

    def frames(self, chunk_rows: int, order: np.ndarray | None = None) -> Iterator[pd.DataFrame]:
        """The split in chunks of exactly ``chunk_rows`` rows (the last one shorter), shards in ``order``."""
        carry: list[pd.DataFrame] = []
        held = 0
        for index in order if order is not None else range(len(self.shards)):
            for batch in pq.ParquetFile(self.shards[int(index)], pre_buffer=False).iter_batches(batch_size=chunk_rows):
                carry.append(batch.to_pandas())
                held += batch.num_rows
                while held >= chunk_rows:
                    joined = pd.concat(carry, ignore_index=True) if len(carry) > 1 else carry[0]
                    yield joined.iloc[:chunk_rows]
                    rest = joined.iloc[chunk_rows:]
                    carry, held = ([rest] if len(rest) else []), len(rest)
        if held:
            yield pd.concat(carry, ignore_index=True)

    def sample(self, rows: int, seed: int) -> tuple[tuple[dict[str, np.ndarray], np.ndarray], SampleDescription]:
        """A stratified, seeded sample of ``rows`` rows, drawn in two passes over the shards in bounded memory.

        Strata as :mod:`tunepipe.data.sampling` (class, or label decile from approximate quantiles)
        with the same allocation; within a stratum, the rows with the smallest seeded random keys
        (a bottom-k sample: uniform, and the same in every process of a distributed search).
        ``rows`` of 0 or at least the split's size keeps every row, which reads the split whole.
        """
        classification = self.spec.is_classification
        if rows <= 0 or rows >= self.rows:
            frame = pd.concat(list(self.frames(CHUNK_ROWS)), ignore_index=True)
            return self.arrays(frame), SampleDescription(self.rows, self.rows, STRATA_NONE)
        log.info("tune: drawing a stratified sample of %s of %s streamed rows", f"{rows:,}", f"{self.rows:,}")
        edges = None if classification else self._decile_edges(seed)
        counts: dict[Any, int] = {}
        for frame in self.frames(CHUNK_ROWS):
            for stratum, count in zip(*np.unique(self._strata(frame, edges), return_counts=True), strict=True):
                counts[stratum] = counts.get(stratum, 0) + int(count)
        strata = sorted(counts)
        quota = dict(zip(strata, allocation(np.array([counts[key] for key in strata]), rows), strict=True))
        rng = np.random.default_rng(seed)
        kept = pd.DataFrame()
        for frame in self.frames(CHUNK_ROWS):
            frame = frame.assign(_key=rng.random(len(frame)), _stratum=self._strata(frame, edges))
            kept = pd.concat([kept, frame], ignore_index=True)
            rank = kept.groupby("_stratum")["_key"].rank(method="first")
            kept = kept[rank.to_numpy() <= kept["_stratum"].map(quota).to_numpy()]
        kept = kept.sort_values("_key").drop(columns=["_key", "_stratum"]).reset_index(drop=True)
        return self.arrays(kept), SampleDescription(self.rows, len(kept),
                                                    STRATA_CLASSES if classification else STRATA_DECILES)

    def _decile_edges(self, seed: int) -> np.ndarray:
        sketch = NumericSketch()
        rng = np.random.default_rng(seed)
        for frame in self.frames(CHUNK_ROWS):
            sketch.update(targets(frame, self.spec), rng)
        return np.unique(sketch.quantile(list(np.linspace(0, 1, LABEL_BINS + 1)[1:-1])))

    def _strata(self, frame: pd.DataFrame, edges: np.ndarray | None) -> np.ndarray:
        labels = targets(frame, self.spec)
        return labels if edges is None else np.digitize(labels, edges)

    def arrays(self, frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """One chunk as the model's inputs and targets, exactly as the in-memory path encodes them."""
        return model_inputs(frame, self.spec), targets(frame, self.spec)

    def dataset(self, batch_size: int, shuffle_seed: int | None = None, chunk_rows: int = CHUNK_ROWS) -> Any:
        """A ``tf.data.Dataset`` of ``(inputs, targets)`` batches of ``batch_size`` rows, prefetched.

        Args:
            batch_size: Rows per batch; the last batch of an epoch may be shorter.
            shuffle_seed: Seed of the per-epoch shuffle (training); None (default) keeps the order
                (validation, evaluation), so predictions line up with :meth:`frames`.
            chunk_rows: Rows per Python step (default :data:`CHUNK_ROWS`), rounded down to a
                whole number of batches (at least one).
        """
        import tensorflow as tf

        chunk = max(batch_size, chunk_rows // batch_size * batch_size)
        epochs = iter(range(1 << 62))

        def generate() -> Iterator[tuple[dict[str, np.ndarray], np.ndarray]]:
            rng = None if shuffle_seed is None else np.random.default_rng([shuffle_seed, next(epochs)])
            order = None if rng is None else rng.permutation(len(self.shards))
            for frame in self.frames(chunk, order):
                inputs, labels = self.arrays(frame)
                if rng is not None:
                    mix = rng.permutation(len(labels))
                    inputs, labels = {name: values[mix] for name, values in inputs.items()}, labels[mix]
                yield inputs, labels

        signature = self._signature(tf)
        batches = math.ceil(self.rows / batch_size)
        dataset = tf.data.Dataset.from_generator(generate, output_signature=signature)
        return (dataset.rebatch(batch_size).apply(tf.data.experimental.assert_cardinality(batches))
                .prefetch(tf.data.AUTOTUNE))

    def _signature(self, tf: Any) -> tuple[dict[str, Any], Any]:
        inputs = {feature.input_name: tf.TensorSpec((None, 1), tf.float32) for feature in self.spec.numeric}
        inputs.update({feature.input_name: tf.TensorSpec((None, 1), tf.int32) for feature in self.spec.categorical})
        label = tf.int32 if self.spec.is_classification else tf.float32
        return inputs, tf.TensorSpec((None,), label)


def sharded_split(split_dir: str | Path, spec: PreprocessingSpec) -> ShardedSplit | None:
    """The split in ``split_dir`` if it was streamed (a folder of shards), else None (one in-memory file).

    Raises:
        DataError: The shards folder holds no shard.
    """
    folder = streamed_shards(split_dir)
    if folder is None:
        return None
    shards = tuple(sorted(folder.glob("*.parquet")))
    if not shards:
        raise DataError(f"{folder}: a streamed split without shards")
    rows = sum(pq.ParquetFile(shard).metadata.num_rows for shard in shards)
    return ShardedSplit(shards, rows, spec)


# Rows a streamed split lends :class:`FitInputs`' ``sample`` (latency measurements, cost).
SAMPLE_ROWS = 256


class FitInputs(NamedTuple):
    """What a fit takes: arrays ``(inputs, targets)`` in memory, or a ``tf.data`` dataset per split.

    Attributes:
        train: ``(inputs, targets)`` or a dataset of batches (shuffled per epoch).
        validation: The same for validation (in order).
        rows: Train plus validation rows.
        sample: Up to :data:`SAMPLE_ROWS` validation rows' inputs (all of them in memory), for cost.
        streamed: Whether the splits are streamed.
    """

    train: Any
    validation: Any
    rows: int
    sample: dict[str, np.ndarray]
    streamed: bool


def fit_inputs(train_dir: str | Path, validation_dir: str | Path, spec: PreprocessingSpec, batch_size: int,
               validation_batch_size: int | None, seed: int) -> FitInputs:
    """The train and validation splits as a fit takes them: whole arrays, or datasets for streamed splits.

    Args:
        batch_size: Rows per training batch (the global batch, with several replicas).
        validation_batch_size: Rows per validation batch of a streamed split (None: ``batch_size``).
        seed: Seeds a streamed training split's per-epoch shuffle.
    """
    train, validation = sharded_split(train_dir, spec), sharded_split(validation_dir, spec)
    if train is None or validation is None:
        arrays, held_out = read_arrays(train_dir, spec), read_arrays(validation_dir, spec)
        sample = held_out[0] if len(held_out[1]) else arrays[0]
        return FitInputs(arrays, held_out, len(arrays[1]) + len(held_out[1]), sample, False)
    first = next(validation.frames(SAMPLE_ROWS))
    return FitInputs(train.dataset(batch_size, seed), validation.dataset(validation_batch_size or batch_size),
                     train.rows + validation.rows, validation.arrays(first)[0], True)
