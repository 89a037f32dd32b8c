"""Preprocess: seeded train/validation/test split and the preprocessing specification.

The split is stratified by class for classification, so small classes appear in every split,
and the specification (:mod:`tunepipe.data.features`) is fitted on the training split only. With
``augmentation.oversample`` the training split's minority classes are then resampled (with
replacement, seeded) up to the majority's count; validation and test keep the true balance.
For image data the specification holds the image size and the class list only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

from tunepipe import artifacts
from tunepipe.config import AugmentationConfig, PreprocessingConfig, SplitConfig
from tunepipe.data.features import PreprocessingSpec, fit_spec, model_inputs, targets
from tunepipe.errors import DataError
from tunepipe.storage import atomic

log = logging.getLogger(__name__)


def _split_counts(rows: int, split: SplitConfig) -> tuple[int, int]:
    return round(rows * split.val_fraction), round(rows * split.test_fraction)


def split_frame(
    frame: pd.DataFrame, label: str, task: str, split: SplitConfig, seed: int
) -> dict[str, pd.DataFrame]:
    """Splits rows into train, validation and test with a seeded shuffle.

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
            raise DataError(
                f"{len(frame)} rows are too few for the {name} split "
                f"(val_fraction={split.val_fraction}, test_fraction={split.test_fraction})"
            )
        splits[name] = frame.loc[index].reset_index(drop=True)
    return splits


def oversample(frame: pd.DataFrame, label: str, seed: int) -> pd.DataFrame:
    """Resamples every class (with replacement, seeded) up to the largest class's row count."""
    rng = np.random.default_rng(seed)
    groups = frame.groupby(label, sort=True).groups
    largest = max(len(rows) for rows in groups.values())
    picked = [
        np.concatenate([rows.to_numpy(), rng.choice(rows.to_numpy(), largest - len(rows), replace=True)])
        for rows in groups.values()
    ]
    return frame.loc[rng.permutation(np.concatenate(picked))].reset_index(drop=True)


def run_preprocess(
    cleaned_dir: str | Path, split: SplitConfig, seed: int, output_dirs: dict[str, str | Path],
    preprocessing: PreprocessingConfig | None = None, augmentation: AugmentationConfig | None = None,
) -> PreprocessingSpec:
    """Splits the cleaned dataset and fits the specification on the training split.

    Args:
        cleaned_dir: Ingest's output folder (cleaned Parquet and schema).
        split: Validation and test fractions.
        seed: Seed of the shuffle; the same seed and data give the same split.
        output_dirs: Folder per split name plus ``"spec"`` for the specification.
        preprocessing: Normalization and categorical encoding (default: the config's defaults).
        augmentation: Recorded in the specification for the model; ``oversample`` acts here.
    """
    encoding = preprocessing or PreprocessingConfig()
    augment = augmentation or AugmentationConfig()
    cleaned = Path(cleaned_dir)
    schema = json.loads((cleaned / artifacts.SCHEMA_FILE).read_text())
    if schema.get("streaming"):
        from tunepipe.data.stream_preprocess import streaming_preprocess

        return streaming_preprocess(cleaned, split, seed, output_dirs, encoding, augment)
    frame = pd.read_parquet(cleaned / artifacts.CLEANED_DATA_FILE)
    splits = split_frame(frame, schema["label"], schema["task"], split, seed)
    spec = fit_spec(
        splits[artifacts.TRAIN], schema, encoding.normalization, encoding.max_one_hot, augment.model_dump()
    )
    if augment.oversample and spec.is_classification:
        before = len(splits[artifacts.TRAIN])
        splits[artifacts.TRAIN] = oversample(splits[artifacts.TRAIN], schema["label"], seed)
        log.info("preprocess: oversampled the training split from %d to %d rows", before, len(splits[artifacts.TRAIN]))
    for name, part in splits.items():
        out = Path(output_dirs[name])
        out.mkdir(parents=True, exist_ok=True)
        with atomic.replacing(out / artifacts.SPLIT_FILE) as partial:
            part.to_parquet(partial, index=False)
    spec_dir = Path(output_dirs["spec"])
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec.save(spec_dir / artifacts.PREPROCESSING_SPEC_FILE)
    log.info(
        "preprocess: %s; %s",
        ", ".join(f"{name} {len(part)} rows" for name, part in splits.items()),
        f"images {spec.image.height}x{spec.image.width}x{spec.image.channels}, {len(spec.classes)} classes"
        if spec.image else f"{len(spec.numeric)} numeric and {len(spec.categorical)} categorical features",
    )
    return spec


def streamed_shards(split_dir: str | Path) -> Path | None:
    """The shards folder of a split the streaming path wrote; None for a split written as one file."""
    folder = Path(split_dir)
    shards = folder / artifacts.SPLIT_SHARDS_DIR
    return shards if not (folder / artifacts.SPLIT_FILE).exists() and shards.is_dir() else None


def read_split(split_dir: str | Path) -> pd.DataFrame:
    """Reads one split written by :func:`run_preprocess`: its one file, or every shard of a streamed split."""
    return pd.read_parquet(streamed_shards(split_dir) or Path(split_dir) / artifacts.SPLIT_FILE)


def split_rows(split_dir: str | Path) -> int:
    """Rows of one split, from its Parquet footers (nothing else is read)."""
    shards = streamed_shards(split_dir)
    files = sorted(shards.glob("*.parquet")) if shards else [Path(split_dir) / artifacts.SPLIT_FILE]
    return sum(pq.ParquetFile(path).metadata.num_rows for path in files)


def read_spec(spec_dir: str | Path) -> PreprocessingSpec:
    """Reads the preprocessing specification written by :func:`run_preprocess`."""
    return PreprocessingSpec.load(Path(spec_dir) / artifacts.PREPROCESSING_SPEC_FILE)


def read_arrays(split_dir: str | Path, spec: PreprocessingSpec) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """One split as the model's inputs (by input name) and its targets, encoded by ``spec``."""
    frame = read_split(split_dir)
    return model_inputs(frame, spec), targets(frame, spec)
