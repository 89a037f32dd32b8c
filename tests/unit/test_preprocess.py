"""The stratified policy (a table read as one batch): seeded, stratified splits, their layout and the specification.

The one path on both policies, one batch and many, is tested in tests/unit/test_preprocess_batches.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tunepipe
from tunepipe import artifacts
from tunepipe.config import AugmentationConfig, SplitConfig
from tunepipe.data.features import PreprocessingSpec, SpecFitter
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess, split_frame
from tunepipe.data.split import STRATIFIED, Split, SplitMetadata
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"
SPLITS = (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)


@pytest.fixture(scope="module")
def penguins() -> pd.DataFrame:
    frame = pd.read_csv(PENGUINS)
    frame["row_id"] = np.arange(len(frame))
    return frame


def _ids(splits: dict[str, pd.DataFrame]) -> dict[str, list[int]]:
    return {name: part["row_id"].tolist() for name, part in splits.items()}


def test_split_is_deterministic_per_seed(penguins) -> None:
    first = split_frame(penguins, "species", "classification", SplitConfig(), seed=1)
    second = split_frame(penguins, "species", "classification", SplitConfig(), seed=1)
    assert _ids(first) == _ids(second)


def test_split_differs_across_seeds(penguins) -> None:
    first = split_frame(penguins, "species", "classification", SplitConfig(), seed=1)
    second = split_frame(penguins, "species", "classification", SplitConfig(), seed=2)
    assert set(_ids(first)[artifacts.TEST]) != set(_ids(second)[artifacts.TEST])


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_split_partitions_rows_exactly(penguins, task: str) -> None:
    splits = split_frame(penguins, "species", task, SplitConfig(val_fraction=0.2, test_fraction=0.1), seed=0)
    assert set(splits) == set(SPLITS)
    ids = _ids(splits)
    union = [row for name in SPLITS for row in ids[name]]
    assert len(union) == len(penguins)
    assert sorted(union) == list(range(len(penguins)))
    # sizes follow the fractions (rounded per class when stratified)
    assert abs(len(ids[artifacts.VALIDATION]) - 0.2 * len(penguins)) <= 3
    assert abs(len(ids[artifacts.TEST]) - 0.1 * len(penguins)) <= 3
    # rows travel whole: each split row equals the source row with the same id
    merged = splits[artifacts.TEST].merge(penguins, on="row_id", suffixes=("", "_src"))
    assert (merged["species"] == merged["species_src"]).all()


def test_split_is_stratified(penguins) -> None:
    splits = split_frame(penguins, "species", "classification", SplitConfig(), seed=0)
    overall = penguins["species"].value_counts(normalize=True)
    for name in SPLITS:
        part = splits[name]["species"].value_counts(normalize=True)
        assert set(part.index) == set(overall.index), name
        for species, share in overall.items():
            assert part[species] == pytest.approx(share, abs=0.05), (name, species)


def test_small_class_keeps_a_training_row() -> None:
    frame = pd.DataFrame({"x": np.arange(22, dtype=float), "y": ["big"] * 20 + ["small"] * 2})
    splits = split_frame(frame, "y", "classification", SplitConfig(val_fraction=0.4, test_fraction=0.4), seed=0)
    assert "small" in set(splits[artifacts.TRAIN]["y"])


def test_too_few_rows_raise_data_error() -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0]})
    with pytest.raises(DataError, match="3 rows are too few"):
        split_frame(frame, "y", "regression", SplitConfig(val_fraction=0.1, test_fraction=0.1), seed=0)


def test_run_preprocess_writes_splits_and_spec(tmp_path) -> None:
    cleaned = tmp_path / "cleaned"
    run_ingest(str(PENGUINS), "species", "auto", cleaned)
    dirs = {name: tmp_path / name for name in SPLITS}
    dirs["spec"] = tmp_path / "spec"
    spec = run_preprocess(cleaned, SplitConfig(), 42, dirs)
    parts = {name: Split.open(dirs[name]).frame() for name in SPLITS}
    whole = pd.read_parquet(cleaned / artifacts.CLEANED_DATA_FILE)
    expected = split_frame(whole, "species", "classification", SplitConfig(), 42)
    for name in SPLITS:  # one shard and the metadata beside it; the rows in split_frame's order
        assert sorted(path.name for path in (dirs[name] / artifacts.SPLIT_SHARDS_DIR).iterdir()) == [
            artifacts.SPLIT_METADATA_FILE, "part-00000.parquet"]
        assert Split.open(dirs[name]).metadata == SplitMetadata(name, STRATIFIED, 42, 0.15, 0.15, len(parts[name]))
        pd.testing.assert_frame_equal(parts[name], expected[name])
    assert sum(len(part) for part in parts.values()) == 344
    saved = PreprocessingSpec.load(dirs["spec"] / artifacts.PREPROCESSING_SPEC_FILE)
    assert saved == spec
    assert saved.classes == ["Adelie", "Chinstrap", "Gentoo"]
    assert [f.column for f in saved.categorical] == ["island", "sex"]
    # statistics come from the training split, not the whole data
    schema = json.loads((cleaned / artifacts.SCHEMA_FILE).read_text())
    fitted = SpecFitter(schema).update(parts[artifacts.TRAIN]).spec(augmentation=AugmentationConfig().model_dump())
    assert saved == fitted
    body_mass = next(f for f in saved.numeric if f.column == "body_mass_g")
    train_mass = parts[artifacts.TRAIN]["body_mass_g"].to_numpy(np.float64)
    assert (body_mass.mean, body_mass.variance) == (float(np.mean(train_mass)), float(np.var(train_mass)))
    assert body_mass.mean != pytest.approx(float(whole["body_mass_g"].mean()), abs=1e-9)


def test_run_preprocess_is_reproducible(tmp_path) -> None:
    cleaned = tmp_path / "cleaned"
    run_ingest(str(PENGUINS), "species", "auto", cleaned)
    frames = []
    for run in ("one", "two"):
        dirs = {name: tmp_path / run / name for name in SPLITS}
        dirs["spec"] = tmp_path / run / "spec"
        run_preprocess(cleaned, SplitConfig(), 7, dirs)
        frames.append(Split.open(dirs[artifacts.TEST]).frame())
    pd.testing.assert_frame_equal(frames[0], frames[1])


def test_oversampling_acts_on_the_training_split_after_the_fit_and_is_recorded(tmp_path) -> None:
    cleaned = tmp_path / "cleaned"
    run_ingest(str(PENGUINS), "species", "auto", cleaned)
    runs = {}
    for oversample in (False, True):
        dirs = {name: tmp_path / str(oversample) / name for name in (*SPLITS, "spec")}
        spec = run_preprocess(cleaned, SplitConfig(), 3, dirs, augmentation=AugmentationConfig(oversample=oversample))
        runs[oversample] = spec, {name: Split.open(dirs[name]) for name in SPLITS}
    (plain_spec, plain), (spec, resampled) = runs[False], runs[True]
    counts = resampled[artifacts.TRAIN].frame()["species"].value_counts()
    assert counts.nunique() == 1 and counts.max() == plain[artifacts.TRAIN].frame()["species"].value_counts().max()
    assert [resampled[name].metadata.oversampled for name in SPLITS] == [True, False, False]
    for name in (artifacts.VALIDATION, artifacts.TEST):  # the true balance: not resampled
        pd.testing.assert_frame_equal(resampled[name].frame(), plain[name].frame())
    assert spec.numeric == plain_spec.numeric and spec.categorical == plain_spec.categorical  # fitted before
