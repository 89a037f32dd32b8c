"""Preprocess: the train/validation/test splits and the preprocessing specification, on one path.

How rows are split is decided once (:func:`split_policy`), from what ingest recorded: whether it
read the table as one batch. The decision goes into each split's metadata
(:class:`~tunepipe.data.split.SplitMetadata`), so no later step derives it again:

- :data:`~tunepipe.data.split.STRATIFIED`, a table read as one batch: a seeded shuffle, by class
  for classification so small classes appear in every split (:func:`split_frame`). With
  ``augmentation.oversample`` the training split's minority classes are then resampled (with
  replacement, seeded) up to the majority's count (:func:`oversample`), each copy marked with the
  row it copies; validation and test keep the true balance. Exact duplicate rows the data holds
  are rows like any other here: each is placed on its own.
- :data:`~tunepipe.data.split.HASHED`, a table ingest streamed: each row's split from a hash of its
  cleaned content, its copy number and the seed (:func:`split_of`), so a row lands in the same
  split whatever shard or order it comes in, and exact copies are placed independently. The
  fractions hold in expectation (for 1 M rows and a fraction of 0.15, within +/- 0.001 of it in
  99.7% of seeds); the split is not stratified, which only matters for
  classes of a few rows, and those are small data. Oversampling is refused: it resamples the
  whole training split at once.

Either way the cleaned data is read one batch at a time (a one-batch table is one batch), each
batch's missing cells are filled with the schema's ``fill_values`` (what the served model fills
with), its rows go to their split's shard (:func:`~tunepipe.data.split.writing_split`) and the
training rows, before oversampling, update the one specification fitter
(:class:`~tunepipe.data.features.SpecFitter`). Peak memory on a streamed table is one cleaned
shard (about :data:`~tunepipe.data.clean.BUCKET_MEMORY_BYTES`) plus the sketches. For
image data the specification holds the image size and the class list only.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunepipe import artifacts
from tunepipe.config import AugmentationConfig, PreprocessingConfig, SplitConfig
from tunepipe.data.clean import row_hashes
from tunepipe.data.features import PreprocessingSpec, SpecFitter
from tunepipe.data.split import COPY_OF, HASHED, STRATIFIED, SplitMetadata, writing_split
from tunepipe.errors import DataError

log = logging.getLogger(__name__)

SPLITS = (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)
PROGRESS_SHARDS = 20  # a progress line every this many cleaned shards
ONE_BATCH_SHARD = "part-00000.parquet"
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def split_policy(schema: dict[str, Any], augmentation: AugmentationConfig) -> str:
    """How the rows are split: stratified for a table ingest read as one batch, hashed for one it streamed.

    Ingest's own record decides (``streaming`` in the schema: ``data.streaming`` and
    ``data.streaming_bytes`` applied once, there), so preprocess never re-derives it from sizes.

    Raises:
        DataError: ``augmentation.oversample`` on a streamed table.
    """
    if not schema.get("streaming"):
        return STRATIFIED
    if augmentation.oversample:
        raise DataError("augmentation.oversample is not available for streamed data (data.streaming): "
                        "it resamples the whole training split in memory; turn it off or use data.streaming: never")
    return HASHED


def _split_counts(rows: int, split: SplitConfig) -> tuple[int, int]:
    return round(rows * split.val_fraction), round(rows * split.test_fraction)


def split_frame(
    frame: pd.DataFrame, label: str, task: str, split: SplitConfig, seed: int
) -> dict[str, pd.DataFrame]:
    """Splits rows into train, validation and test with a seeded shuffle (the stratified policy).

    For classification each class is split on its own (stratified), with at least one row of
    every class kept for training.

    Raises:
        DataError: A split would be empty: fewer rows than the fractions need.
    """
    rng = np.random.default_rng(seed)
    groups = [frame.index.to_numpy()]
    if task == "classification":
        groups = [group.to_numpy() for _, group in frame.groupby(label, sort=True).groups.items()]
    parts: dict[str, list[np.ndarray]] = {artifacts.TRAIN: [], artifacts.VALIDATION: [], artifacts.TEST: []}
    for rows in groups:
        shuffled = rng.permutation(rows)
        n_val, n_test = _split_counts(len(shuffled), split)
        n_val, n_test = min(n_val, len(shuffled) - 1), min(n_test, max(len(shuffled) - 1 - n_val, 0))
        parts[artifacts.VALIDATION].append(shuffled[:n_val])
        parts[artifacts.TEST].append(shuffled[n_val : n_val + n_test])
        parts[artifacts.TRAIN].append(shuffled[n_val + n_test :])
    splits = {}
    for name, pieces in parts.items():
        index = rng.permutation(np.concatenate(pieces))
        if len(index) == 0:
            raise _too_few(len(frame), name, split)
        splits[name] = frame.loc[index].reset_index(drop=True)
    return splits


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: spreads every input bit over the output (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))


def split_of(frame: pd.DataFrame, split: SplitConfig, seed: int) -> np.ndarray:
    """Each row's split (0 train, 1 validation, 2 test) from its content hash and ``seed`` (the hashed policy).

    The k-th copy of a row (k >= 1, within ``frame``) hashes with k mixed in, so exact duplicates
    are placed independently, as rows like any other (a streamed shard holds every copy of a row:
    one hash bucket); a row's first copy keeps the plain content hash, so distinct rows go where
    they always went.
    """
    hashes = row_hashes(frame)
    occurrence = pd.Series(hashes).groupby(hashes).cumcount().to_numpy(dtype=np.uint64)
    with np.errstate(over="ignore"):
        hashes = np.where(occurrence > 0, _mix(hashes + occurrence * _GOLDEN), hashes)
        keyed = _mix(hashes ^ (np.uint64(seed) * _GOLDEN))
    uniform = (keyed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    which = np.zeros(len(frame), dtype=np.int8)
    which[uniform < split.val_fraction + split.test_fraction] = 1
    which[uniform < split.test_fraction] = 2
    return which


def oversample(frame: pd.DataFrame, label: str, seed: int) -> pd.DataFrame:
    """Resamples every class (with replacement, seeded) up to the largest class's row count.

    Each row carries the position of the row it copies in :data:`~tunepipe.data.split.COPY_OF`
    (an original row its own), so that cross-validation keeps a row and its copies in one fold.
    """
    rng = np.random.default_rng(seed)
    frame = frame.reset_index(drop=True)
    frame = frame.assign(**{COPY_OF: np.arange(len(frame), dtype=np.int64)})
    groups = frame.groupby(label, sort=True).groups
    largest = max(len(rows) for rows in groups.values())
    picked = [
        np.concatenate([rows.to_numpy(), rng.choice(rows.to_numpy(), largest - len(rows), replace=True)])
        for rows in groups.values()
    ]
    return frame.loc[rng.permutation(np.concatenate(picked))].reset_index(drop=True)


def _too_few(rows: int, name: str, split: SplitConfig) -> DataError:
    return DataError(f"{rows} rows are too few for the {name} split "
                     f"(val_fraction={split.val_fraction}, test_fraction={split.test_fraction})")


def _cleaned_batches(cleaned: Path, policy: str) -> Iterator[tuple[str, pd.DataFrame]]:
    """The cleaned table as (shard name, rows): one batch, or each of the streamed table's shards."""
    if policy == STRATIFIED:
        yield ONE_BATCH_SHARD, pd.read_parquet(cleaned / artifacts.CLEANED_DATA_FILE)
        return
    shards = sorted((cleaned / artifacts.CLEANED_SHARDS_DIR).glob("part-*.parquet"))
    for index, shard in enumerate(shards):
        if index and index % PROGRESS_SHARDS == 0:
            log.info("preprocess: %d of %d cleaned shards split", index, len(shards))
        yield shard.name, pd.read_parquet(shard)


def _split_batch(frame: pd.DataFrame, policy: str, schema: dict[str, Any], split: SplitConfig, seed: int,
                 fitter: SpecFitter, oversampling: bool) -> dict[str, pd.DataFrame]:
    """One batch's rows by split: placed by the policy, filled (after the hash, which sees the
    cleaned row), the training rows added to ``fitter``, then oversampled when asked."""
    if policy == STRATIFIED:
        parts = split_frame(frame, schema["label"], schema["task"], split, seed)
    else:
        which = split_of(frame, split, seed)
        parts = {name: frame[which == code] for code, name in enumerate(SPLITS)}
    fills = {column: value for column, value in schema.get("fill_values", {}).items() if value is not None}
    parts = {name: part.fillna(fills) if fills else part for name, part in parts.items()}
    fitter.update(parts[artifacts.TRAIN])
    if oversampling:
        before, parts[artifacts.TRAIN] = len(parts[artifacts.TRAIN]), oversample(
            parts[artifacts.TRAIN], schema["label"], seed)
        log.info("preprocess: oversampled the training split from %d to %d rows", before, len(parts[artifacts.TRAIN]))
    return parts


def run_preprocess(
    cleaned_dir: str | Path, split: SplitConfig, seed: int, output_dirs: dict[str, str | Path],
    preprocessing: PreprocessingConfig | None = None, augmentation: AugmentationConfig | None = None,
) -> PreprocessingSpec:
    """Splits the cleaned dataset into one split folder each and fits the specification on the training rows.

    Args:
        cleaned_dir: Ingest's output folder (cleaned Parquet and schema).
        split: Validation and test fractions.
        seed: Seed of the shuffle or hash; the same seed and data give the same split.
        output_dirs: Folder per split name plus ``"spec"`` for the specification.
        preprocessing: Normalization and categorical encoding (default: the config's defaults).
        augmentation: Recorded in the specification for the model; ``oversample`` acts here.

    Raises:
        DataError: A split left empty, or oversampling asked of a streamed table; nothing is written then.
    """
    encoding, augment = preprocessing or PreprocessingConfig(), augmentation or AugmentationConfig()
    cleaned = Path(cleaned_dir)
    schema = json.loads((cleaned / artifacts.SCHEMA_FILE).read_text())
    policy = split_policy(schema, augment)
    oversampling = augment.oversample and schema["task"] == "classification"
    fitter = SpecFitter(schema)
    with ExitStack() as stack:
        writers = {name: stack.enter_context(writing_split(output_dirs[name], SplitMetadata(
            name, policy, seed, split.val_fraction, split.test_fraction,
            oversampled=oversampling and name == artifacts.TRAIN))) for name in SPLITS}
        for shard, frame in _cleaned_batches(cleaned, policy):
            for name, part in _split_batch(frame, policy, schema, split, seed, fitter, oversampling).items():
                if len(part):
                    writers[name].write(shard, part)
        empty = [name for name, writer in writers.items() if not writer.rows]
        if empty:
            raise _too_few(sum(writer.rows for writer in writers.values()), empty[0], split)
    spec = fitter.spec(encoding.normalization, encoding.max_one_hot, augment.model_dump(), encoding.class_weights,
                       encoding.label_transform)
    spec_dir = Path(output_dirs["spec"])
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec.save(spec_dir / artifacts.PREPROCESSING_SPEC_FILE)
    log.info("preprocess: %s split: %s; %s", policy, ", ".join(f"{name} {writers[name].rows} rows" for name in SPLITS),
             f"images {spec.image.height}x{spec.image.width}x{spec.image.channels}, {len(spec.classes)} classes"
             if spec.image else f"{len(spec.numeric)} numeric and {len(spec.categorical)} categorical features")
    return spec


def read_spec(spec_dir: str | Path) -> PreprocessingSpec:
    """Reads the preprocessing specification written by :func:`run_preprocess`."""
    return PreprocessingSpec.load(Path(spec_dir) / artifacts.PREPROCESSING_SPEC_FILE)
