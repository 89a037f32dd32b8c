"""Preprocess for data larger than memory: a split decided per row, and the specification from sketches.

Reads the cleaned shards of :mod:`tunepipe.data.clean` one at a time and, for each row:

- fills its missing cells with the schema's ``fill_values`` (what the served model fills with);
- assigns it to train, validation or test from a hash of its cleaned content and the seed
  (:func:`split_of`), so a row lands in the same split whatever shard or order it comes in,
  and re-running on the same data gives the same split. The fractions hold in expectation
  (binomial: for 1 M rows and a fraction of 0.15, within +/- 0.001 of it in 99.7% of seeds); the
  split is not stratified, which only matters for classes of a few rows, and those are small data;
- writes it to that split's shard.

The specification is fitted on the training rows alone, from mergeable sketches: means,
variances, minimum and maximum exact (filled values counted, as the in-memory path counts them),
vocabularies from exact counts (:class:`~tunepipe.data.sketches.CategorySketch`). Peak memory is
one cleaned shard (about :data:`~tunepipe.data.clean.BUCKET_MEMORY_BYTES`) plus the sketches.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunepipe import artifacts
from tunepipe.config import AugmentationConfig, PreprocessingConfig, SplitConfig
from tunepipe.data.clean import row_hashes
from tunepipe.data.features import CategoricalFeature, NumericFeature, PreprocessingSpec, input_name
from tunepipe.data.sketches import CategorySketch, NumericSketch
from tunepipe.errors import DataError
from tunepipe.storage import atomic

log = logging.getLogger(__name__)

SPLITS = (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)
PROGRESS_SHARDS = 20  # a progress line every this many cleaned shards
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def _mix(values: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser: spreads every input bit over the output (uint64 arithmetic wraps)."""
    with np.errstate(over="ignore"):
        values = (values ^ (values >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        values = (values ^ (values >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return values ^ (values >> np.uint64(31))


def split_of(frame: pd.DataFrame, split: SplitConfig, seed: int) -> np.ndarray:
    """Each row's split (0 train, 1 validation, 2 test) from its content hash and ``seed``."""
    with np.errstate(over="ignore"):
        keyed = _mix(row_hashes(frame) ^ (np.uint64(seed) * _GOLDEN))
    uniform = (keyed >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    which = np.zeros(len(frame), dtype=np.int8)
    which[uniform < split.val_fraction + split.test_fraction] = 1
    which[uniform < split.test_fraction] = 2
    return which


class TrainingSketches:
    """Sketches of the training rows (filled): everything the specification needs."""

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.rng = np.random.default_rng(0)
        self.numeric = {column: NumericSketch(sample_size=0) for column in schema["numeric"]}
        self.text = {column: CategorySketch() for column in schema["categorical"]}
        self.label = CategorySketch() if schema["task"] == "classification" else None
        self.target = NumericSketch(sample_size=0) if schema["task"] == "regression" else None

    def update(self, frame: pd.DataFrame) -> None:
        for column, sketch in self.numeric.items():
            sketch.update(frame[column].to_numpy(dtype=np.float64), self.rng)
        for column, text in self.text.items():
            text.update(frame[column])
        labels = frame[self.schema["label"]]
        if self.label is not None:
            self.label.update(labels)
        if self.target is not None:
            self.target.update(labels.to_numpy(dtype=np.float64), self.rng)

    def spec(self, preprocessing: PreprocessingConfig, augmentation: dict[str, Any]) -> PreprocessingSpec:
        """The specification :func:`~tunepipe.data.features.fit_spec` would fit on the same rows."""
        fills = self.schema.get("fill_values", {})
        taken: set[str] = set()
        numeric = [NumericFeature(column, input_name(column, taken), sketch.mean, sketch.variance, sketch.minimum,
                                  sketch.maximum, None if fills.get(column) is None else float(fills[column]))
                   for column, sketch in self.numeric.items()]
        categorical = [CategoricalFeature(column, input_name(column, taken), [value for value, _ in text.ordered()],
                                          None if fills.get(column) is None else str(fills[column]))
                       for column, text in self.text.items()]
        options: dict[str, Any] = {"normalization": preprocessing.normalization,
                                   "max_one_hot": preprocessing.max_one_hot, "augmentation": augmentation}
        task, label = self.schema["task"], self.schema["label"]
        if self.label is not None:
            return PreprocessingSpec(task, label, numeric, categorical, classes=sorted(self.label.counts), **options)
        assert self.target is not None
        return PreprocessingSpec(task, label, numeric, categorical, label_mean=self.target.mean,
                                 label_std=float(np.sqrt(self.target.variance)) or 1.0, **options)


def _filled(frame: pd.DataFrame, schema: dict[str, Any]) -> pd.DataFrame:
    fills = {column: value for column, value in schema.get("fill_values", {}).items() if value is not None}
    return frame.fillna(fills) if fills else frame


def streaming_preprocess(
    cleaned_dir: str | Path, split: SplitConfig, seed: int, output_dirs: dict[str, str | Path],
    preprocessing: PreprocessingConfig | None = None, augmentation: AugmentationConfig | None = None,
) -> PreprocessingSpec:
    """Splits the cleaned shards into ``<split>/shards/`` folders and fits the specification.

    Arguments as :func:`~tunepipe.data.preprocess.run_preprocess`.

    Raises:
        DataError: ``augmentation.oversample`` (needs every training row at once), or a split left empty.
    """
    augment = augmentation or AugmentationConfig()
    if augment.oversample:
        raise DataError("augmentation.oversample is not available for streamed data (data.streaming): "
                        "it resamples the whole training split in memory; turn it off or use data.streaming: never")
    cleaned = Path(cleaned_dir)
    schema = json.loads((cleaned / artifacts.SCHEMA_FILE).read_text())
    shards = sorted((cleaned / artifacts.CLEANED_SHARDS_DIR).glob("part-*.parquet"))
    sketches = TrainingSketches(schema)
    rows = dict.fromkeys(SPLITS, 0)
    folders = {name: Path(output_dirs[name]) for name in SPLITS}
    for folder in folders.values():
        folder.mkdir(parents=True, exist_ok=True)
    with (atomic.replacing_folder(folders[SPLITS[0]] / artifacts.SPLIT_SHARDS_DIR) as train,
          atomic.replacing_folder(folders[SPLITS[1]] / artifacts.SPLIT_SHARDS_DIR) as validation,
          atomic.replacing_folder(folders[SPLITS[2]] / artifacts.SPLIT_SHARDS_DIR) as test):
        partials = (train, validation, test)
        for index, shard in enumerate(shards):
            if index and index % PROGRESS_SHARDS == 0:
                log.info("preprocess: streaming: %d of %d shards split", index, len(shards))
            frame = pd.read_parquet(shard)
            which = split_of(frame, split, seed)
            frame = _filled(frame, schema)
            for code, name in enumerate(SPLITS):
                part = frame[which == code]
                rows[name] += len(part)
                if code == 0:
                    sketches.update(part)
                part.to_parquet(partials[code] / shard.name, index=False)
        empty = [name for name, count in rows.items() if not count]
        if empty:
            raise DataError(f"{sum(rows.values())} rows are too few for the {empty[0]} split "
                            f"(val_fraction={split.val_fraction}, test_fraction={split.test_fraction})")
    spec = sketches.spec(preprocessing or PreprocessingConfig(), augment.model_dump())
    spec_dir = Path(output_dirs["spec"])
    spec_dir.mkdir(parents=True, exist_ok=True)
    spec.save(spec_dir / artifacts.PREPROCESSING_SPEC_FILE)
    log.info("preprocess: streamed %d shards: %s", len(shards),
             ", ".join(f"{name} {count} rows" for name, count in rows.items()))
    return spec
