"""Preprocess: seeded train/validation/test split and the preprocessing specification.

The split is stratified by class for classification, so small classes appear in every split,
and the specification (:mod:`tunepipe.features`) is fitted on the training split only.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from tunepipe import artifacts
from tunepipe.config import SplitConfig
from tunepipe.errors import DataError
from tunepipe.features import PreprocessingSpec, fit_spec

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


def run_preprocess(
    cleaned_dir: str | Path, split: SplitConfig, seed: int, output_dirs: dict[str, str | Path]
) -> PreprocessingSpec:
    """Splits the cleaned dataset and fits the specification on the training split.

    Args:
        cleaned_dir: Ingest's output folder (cleaned Parquet and schema).
        split: Validation and test fractions.
        seed: Seed of the shuffle; the same seed and data give the same split.
        output_dirs: Folder per split name plus ``"spec"`` for the specification.
    """
    cleaned = Path(cleaned_dir)
    schema = json.loads((cleaned / artifacts.SCHEMA_FILE).read_text())
    frame = pd.read_parquet(cleaned / artifacts.CLEANED_DATA_FILE)
    splits = split_frame(frame, schema["label"], schema["task"], split, seed)
    spec = fit_spec(splits[artifacts.TRAIN], schema)
    for name, part in splits.items():
        out = Path(output_dirs[name])
        out.mkdir(parents=True, exist_ok=True)
        part.to_parquet(out / artifacts.SPLIT_FILE, index=False)
    spec_dir = Path(output_dirs["spec"])
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec.save(spec_dir / artifacts.PREPROCESSING_SPEC_FILE)
    log.info(
        "preprocess: %s; %d numeric and %d categorical features",
        ", ".join(f"{name} {len(part)} rows" for name, part in splits.items()),
        len(spec.numeric), len(spec.categorical),
    )
    return spec


def read_split(split_dir: str | Path) -> pd.DataFrame:
    """Reads one split written by :func:`run_preprocess`."""
    return pd.read_parquet(Path(split_dir) / artifacts.SPLIT_FILE)
