"""Preprocess's one path on a table read as one batch and on one read in many: policy, shards, fill, spec.

Ingest's record decides the policy (stratified for one batch, hashed for many); everything after
it (fill, shards, metadata, the spec from the one fitter) is the same code on both.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.config import AugmentationConfig, InputLimits, PreprocessingConfig, SplitConfig
from tunepipe.data import clean
from tunepipe.data.features import PreprocessingSpec, SpecFitter
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import SPLITS, run_preprocess, split_frame, split_of, split_policy
from tunepipe.data.split import HASHED, STRATIFIED, Split, SplitMetadata
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit

SPLIT = SplitConfig(val_fraction=0.1, test_fraction=0.25)  # unequal: a swapped validation/test shows
READS = {"one batch": "never", "many batches": "always"}  # data.streaming: how ingest reads the table


@pytest.fixture(autouse=True)
def _small_buckets(monkeypatch: pytest.MonkeyPatch) -> None:
    """Streamed ingest writes a cleaned shard per 1,000 rows (its least), so many batches are many."""
    monkeypatch.setattr(clean, "BUCKET_MEMORY_BYTES", 1)


def _cleaned(rows: int, seed: int = 0) -> pd.DataFrame:
    """Rows as the cleaned shards hold them: float numerics (some missing), text categoricals, the label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x": rng.normal(size=rows), "n": rng.integers(0, 50, rows).astype(float),
        "c": rng.choice(["a", "b", "c"], rows).astype(object), "y": rng.choice(["p", "q"], rows).astype(object),
    })
    frame.loc[rng.choice(rows, rows // 20, replace=False), "x"] = np.nan
    return frame


def _placed(frame: pd.DataFrame, which: np.ndarray) -> pd.Series:
    """How many rows of each content went to each split (copies are interchangeable)."""
    return frame.astype(str).assign(split=which).value_counts().sort_index()


def test_split_of_is_decided_by_the_row_alone() -> None:
    frame = _cleaned(5_000)
    which = split_of(frame, SPLIT, seed=3)
    assert set(np.unique(which)) == {0, 1, 2}
    np.testing.assert_array_equal(split_of(frame, SPLIT, seed=3), which)  # the same run again
    distinct = ~frame.duplicated(keep=False).to_numpy()
    assert 0 < (~distinct).sum() < 500  # the rows with a missing x repeat each other
    order = np.random.default_rng(1).permutation(len(frame))
    shuffled = split_of(frame.iloc[order], SPLIT, seed=3)  # another order (and another index)
    np.testing.assert_array_equal(shuffled[distinct[order]], which[order][distinct[order]])
    pd.testing.assert_series_equal(_placed(frame.iloc[order], shuffled), _placed(frame, which))  # copies: as many
    grouped = np.concatenate([split_of(part, SPLIT, seed=3) for part in np.array_split(frame, [7, 1_000, 1_001])])
    np.testing.assert_array_equal(grouped[distinct], which[distinct])  # other shard boundaries
    copies = split_of(pd.concat([frame.iloc[[42]]] * 2_000), SPLIT, seed=3)
    assert copies[0] == which[42]  # a row's first copy goes where the row alone goes
    shares = np.bincount(copies, minlength=3) / len(copies)  # natural copies: placed as rows of their own
    np.testing.assert_allclose(shares, [0.65, 0.1, 0.25], atol=0.04)


def test_split_of_depends_on_the_seed() -> None:
    frame = _cleaned(5_000)
    first, second = split_of(frame, SPLIT, seed=0), split_of(frame, SPLIT, seed=1)
    # independent assignments agree on 0.65^2 + 0.1^2 + 0.25^2 = 49.5% of rows
    assert 0.45 < np.mean(first != second) < 0.56


@pytest.mark.parametrize(("val", "test", "seed"), [(0.15, 0.15, 0), (0.1, 0.25, 7), (0.02, 0.4, 11)])
def test_split_fractions_are_within_binomial_tolerance(val: float, test: float, seed: int) -> None:
    rows = 100_000
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"id": np.arange(rows, dtype=np.float64), "v": rng.normal(size=rows)})
    which = split_of(frame, SplitConfig(val_fraction=val, test_fraction=test), seed)
    for code, fraction in ((0, 1 - val - test), (1, val), (2, test)):
        sigma = np.sqrt(fraction * (1 - fraction) / rows)
        assert abs(np.mean(which == code) - fraction) < 4 * sigma, code


def _source(tmp_path: Path, frame: pd.DataFrame) -> str:
    folder = tmp_path / "source"
    folder.mkdir(parents=True)
    for index, part in enumerate(np.array_split(frame, min(3, len(frame)))):
        part.to_csv(folder / f"part-{index}.csv", index=False)
    return str(folder)


def _raw(rows: int, seed: int = 0, task: str = "classification") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "size": rng.normal(10, 2, rows).round(4), "count": rng.integers(0, 40, rows),
        "colour": rng.choice(["red", "green", "blue", "teal"], rows, p=[0.4, 0.3, 0.2, 0.1]).astype(object),
        "shape": rng.choice(["round", "square"], rows).astype(object),
    })
    if task == "classification":
        frame["y"] = rng.choice(["p", "q", "r"], rows, p=[0.2, 0.3, 0.5]).astype(object)  # not alphabetical
    else:
        frame["y"] = 3 * frame["size"] + rng.normal(0, 1, rows)
    frame.loc[rng.choice(rows, rows // 10, replace=False), "size"] = np.nan
    frame.loc[rng.choice(rows, rows // 15, replace=False), "colour"] = None
    frame.loc[rng.choice(rows, 5, replace=False), "size"] = np.inf
    return pd.concat([frame, frame.head(50)], ignore_index=True)  # duplicates


def _run(tmp_path: Path, frame: pd.DataFrame, streaming: str = "always", **kwargs
         ) -> tuple[PreprocessingSpec, dict, dict[str, Path]]:
    result = run_ingest(_source(tmp_path, frame), "y", "auto", tmp_path / "cleaned",
                        limits=InputLimits(streaming=streaming))
    dirs = {name: tmp_path / name for name in (*SPLITS, "spec")}
    spec = run_preprocess(tmp_path / "cleaned", kwargs.pop("split", SPLIT), 5, dirs, **kwargs)
    return spec, result.schema, dirs


def _cleaned_rows(tmp_path: Path, schema: dict) -> pd.DataFrame:
    """Ingest's cleaned rows, however it wrote them (one file, or shards with missing cells)."""
    if schema.get("streaming"):
        return pd.read_parquet(tmp_path / "cleaned" / artifacts.CLEANED_SHARDS_DIR)
    return pd.read_parquet(tmp_path / "cleaned" / artifacts.CLEANED_DATA_FILE)


def _reference(train: pd.DataFrame, schema: dict) -> dict:
    """What the specification must hold, computed with numpy and pandas straight from the rows."""
    numeric = {}
    for column in schema["numeric"]:
        values = train[column].to_numpy(np.float64)
        numeric[column] = (float(values.mean()), float(values.var()), float(values.min()), float(values.max()))
    vocabularies = {column: [value for value, _ in sorted(train[column].astype(str).value_counts().items(),
                                                         key=lambda item: (-item[1], item[0]))]
                    for column in schema["categorical"]}
    labels = train[schema["label"]]
    if schema["task"] == "classification":
        return {"numeric": numeric, "vocabularies": vocabularies, "classes": sorted(set(labels)), "label": (0.0, 1.0)}
    targets = labels.to_numpy(np.float64)
    return {"numeric": numeric, "vocabularies": vocabularies, "classes": [],
            "label": (float(targets.mean()), float(targets.std()) or 1.0)}


def _assert_spec_holds(spec: PreprocessingSpec, reference: dict, exact: bool) -> None:
    """One batch: every number bit for bit; many: exact counts, moments but for float rounding."""
    close = (lambda value: value) if exact else (lambda value: pytest.approx(value, rel=1e-9))
    assert [f.column for f in spec.numeric] == list(reference["numeric"])
    for feature in spec.numeric:
        mean, variance, low, high = reference["numeric"][feature.column]
        assert (feature.mean, feature.variance) == (close(mean), close(variance))
        assert (feature.minimum, feature.maximum) == (low, high)
    assert {f.column: f.vocabulary for f in spec.categorical} == reference["vocabularies"]
    assert spec.classes == reference["classes"]
    assert (spec.label_mean, spec.label_std) == tuple(close(value) for value in reference["label"])


@pytest.mark.parametrize("read", READS)
@pytest.mark.parametrize("task", ["classification", "regression"])
def test_spec_is_the_fitter_on_the_training_rows(tmp_path, task: str, read: str) -> None:
    encoding = PreprocessingConfig(normalization="minmax", max_one_hot=3)
    spec, schema, dirs = _run(tmp_path, _raw(3_000, task=task), READS[read], preprocessing=encoding)
    assert bool(schema.get("streaming")) == (read == "many batches") and schema["task"] == task
    train = Split.open(dirs[artifacts.TRAIN]).frame()
    _assert_spec_holds(spec, _reference(train, schema), exact=read == "one batch")
    expected = SpecFitter(schema).update(train).spec("minmax", 3, AugmentationConfig().model_dump())
    assert [f.input_name for f in spec.numeric + spec.categorical] == [
        f.input_name for f in expected.numeric + expected.categorical]
    assert (spec.normalization, spec.max_one_hot, spec.augmentation) == ("minmax", 3, AugmentationConfig().model_dump())
    assert PreprocessingSpec.load(dirs["spec"] / artifacts.PREPROCESSING_SPEC_FILE) == spec
    if task == "classification":
        assert spec.classes == ["p", "q", "r"]
    else:
        assert spec.label_std > 1 and spec.label_mean == pytest.approx(train["y"].mean(), rel=1e-9)
    assert spec.categorical[0].fill == schema["fill_values"]["colour"]
    assert [f.fill for f in spec.numeric] == [schema["fill_values"][f.column] for f in spec.numeric]


@pytest.mark.parametrize("read", READS)
def test_splits_are_filled_shards_of_every_cleaned_row_in_the_policy_s_place(tmp_path, read: str) -> None:
    _, schema, dirs = _run(tmp_path, _raw(3_000), READS[read])
    cleaned = _cleaned_rows(tmp_path, schema)
    policy = HASHED if read == "many batches" else STRATIFIED
    splits = {}
    for name in SPLITS:
        split = Split.open(dirs[name])
        assert split.metadata == SplitMetadata(name, policy, 5, 0.1, 0.25, split.rows)
        assert (len(split.shards) == 1) == (read == "one batch")  # 3 cleaned shards: 3 of each split
        for shard in split.shards:
            assert not pd.read_parquet(shard).isna().any().any(), shard
        splits[name] = split.frame()
        assert len(splits[name]) == split.rows == sum(len(pd.read_parquet(shard)) for shard in split.shards)
    rows = len(cleaned)
    assert sum(len(part) for part in splits.values()) == rows == schema["rows"]
    if policy == STRATIFIED:  # split_frame's rows, in its order
        expected = split_frame(cleaned, "y", "classification", SPLIT, 5)
        for name in SPLITS:
            pd.testing.assert_frame_equal(splits[name], expected[name])
        return
    for name, fraction in ((artifacts.VALIDATION, 0.1), (artifacts.TEST, 0.25)):
        assert abs(len(splits[name]) / rows - fraction) < 4 * np.sqrt(fraction * (1 - fraction) / rows), name
    columns = list(cleaned.columns)
    together = pd.concat(splits.values(), ignore_index=True).sort_values(columns).reset_index(drop=True)
    filled = cleaned.fillna(schema["fill_values"]).sort_values(columns).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, filled)
    # each row's split follows from its content: the cleaned row, before filling, decides
    which = split_of(cleaned, SPLIT, 5)
    for code, name in enumerate(SPLITS):
        expected_rows = cleaned[which == code].fillna(schema["fill_values"]).sort_values(columns)
        pd.testing.assert_frame_equal(splits[name].sort_values(columns).reset_index(drop=True),
                                      expected_rows.reset_index(drop=True))


def test_the_policy_is_ingest_s_record_not_the_size() -> None:
    assert split_policy({"rows": 10**9}, AugmentationConfig()) == STRATIFIED
    assert split_policy({"rows": 10, "streaming": True}, AugmentationConfig()) == HASHED
    assert split_policy({"rows": 10}, AugmentationConfig(oversample=True)) == STRATIFIED


def test_the_same_data_gives_the_same_hashed_splits(tmp_path) -> None:
    frame = _raw(800)
    _, _, first = _run(tmp_path / "one", frame)
    _, _, second = _run(tmp_path / "two", frame.iloc[::-1])  # rows in another order, other shards
    for name in SPLITS:
        columns = list(Split.open(first[name]).frame().columns)
        one, two = (Split.open(dirs[name]).frame().sort_values(columns).reset_index(drop=True)
                    for dirs in (first, second))
        pd.testing.assert_frame_equal(one, two)


@pytest.mark.parametrize("read", READS)
def test_too_small_a_table_names_the_empty_split_and_writes_nothing(tmp_path, read: str) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    with pytest.raises(DataError, match=r"2 rows are too few for the (train|validation|test) split"):
        _run(tmp_path, frame, READS[read])
    for name in SPLITS:
        assert not (tmp_path / name / artifacts.SPLIT_SHARDS_DIR).exists()
    assert not (tmp_path / "spec" / artifacts.PREPROCESSING_SPEC_FILE).exists()


def test_oversampling_is_refused_for_streamed_data(tmp_path) -> None:
    with pytest.raises(DataError, match=r"augmentation\.oversample is not available for streamed data"):
        _run(tmp_path, _raw(300), augmentation=AugmentationConfig(oversample=True))
    assert not (tmp_path / artifacts.TRAIN).exists()
