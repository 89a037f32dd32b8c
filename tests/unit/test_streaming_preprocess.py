"""The streaming preprocess path: a per-row hash split, filled split shards, the spec from sketches."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.config import AugmentationConfig, InputLimits, PreprocessingConfig, SplitConfig
from tunepipe.data.features import PreprocessingSpec, fit_spec
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import read_split, run_preprocess
from tunepipe.data.stream_preprocess import SPLITS, split_of
from tunepipe.errors import DataError

pytestmark = pytest.mark.unit

STREAM = InputLimits(streaming="always")
SPLIT = SplitConfig(val_fraction=0.1, test_fraction=0.25)  # unequal: a swapped validation/test shows


def _cleaned(rows: int, seed: int = 0) -> pd.DataFrame:
    """Rows as the cleaned shards hold them: float numerics (some missing), text categoricals, the label."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({
        "x": rng.normal(size=rows), "n": rng.integers(0, 50, rows).astype(float),
        "c": rng.choice(["a", "b", "c"], rows).astype(object), "y": rng.choice(["p", "q"], rows).astype(object),
    })
    frame.loc[rng.choice(rows, rows // 20, replace=False), "x"] = np.nan
    return frame


def test_split_of_is_decided_by_the_row_alone() -> None:
    frame = _cleaned(5_000)
    which = split_of(frame, SPLIT, seed=3)
    assert set(np.unique(which)) == {0, 1, 2}
    np.testing.assert_array_equal(split_of(frame, SPLIT, seed=3), which)  # the same run again
    order = np.random.default_rng(1).permutation(len(frame))
    shuffled = split_of(frame.iloc[order], SPLIT, seed=3)  # another order (and another index)
    np.testing.assert_array_equal(shuffled, which[order])
    grouped = np.concatenate([split_of(part, SPLIT, seed=3) for part in np.array_split(frame, [7, 1_000, 1_001])])
    np.testing.assert_array_equal(grouped, which)  # other shard boundaries
    copies = split_of(pd.concat([frame.iloc[[42]]] * 5), SPLIT, seed=3)
    assert set(copies) == {which[42]}


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


def _run(tmp_path: Path, frame: pd.DataFrame, **kwargs) -> tuple[PreprocessingSpec, dict, dict[str, Path]]:
    result = run_ingest(_source(tmp_path, frame), "y", "auto", tmp_path / "cleaned", limits=STREAM)
    dirs = {name: tmp_path / name for name in (*SPLITS, "spec")}
    spec = run_preprocess(tmp_path / "cleaned", kwargs.pop("split", SPLIT), 5, dirs, **kwargs)
    return spec, result.schema, dirs


def _assert_spec_is_fit_spec(spec: PreprocessingSpec, expected: PreprocessingSpec) -> None:
    assert (spec.task, spec.label, spec.classes) == (expected.task, expected.label, expected.classes)
    assert [f.column for f in spec.numeric] == [f.column for f in expected.numeric]
    for got, want in zip(spec.numeric, expected.numeric, strict=True):
        assert (got.input_name, got.fill, got.minimum, got.maximum) == (
            want.input_name, want.fill, want.minimum, want.maximum)
        assert got.mean == pytest.approx(want.mean, rel=1e-9) and got.variance == pytest.approx(want.variance, rel=1e-9)
    assert spec.categorical == expected.categorical  # vocabularies, their order, input names and fills
    assert spec.label_mean == pytest.approx(expected.label_mean, rel=1e-9)
    assert spec.label_std == pytest.approx(expected.label_std, rel=1e-9)
    assert (spec.normalization, spec.max_one_hot, spec.augmentation) == (
        expected.normalization, expected.max_one_hot, expected.augmentation)


@pytest.mark.parametrize("task", ["classification", "regression"])
def test_spec_equals_fit_spec_on_the_training_shards(tmp_path, task: str) -> None:
    encoding = PreprocessingConfig(normalization="minmax", max_one_hot=3)
    spec, schema, dirs = _run(tmp_path, _raw(3_000, task=task), preprocessing=encoding)
    assert schema["streaming"] and schema["task"] == task
    train = read_split(dirs[artifacts.TRAIN])
    expected = fit_spec(train, schema, "minmax", 3, AugmentationConfig().model_dump())
    _assert_spec_is_fit_spec(spec, expected)
    assert PreprocessingSpec.load(dirs["spec"] / artifacts.PREPROCESSING_SPEC_FILE) == spec
    if task == "classification":
        assert spec.classes == ["p", "q", "r"]
    else:
        assert spec.label_std > 1 and spec.label_mean == pytest.approx(train["y"].mean(), rel=1e-9)
    assert spec.categorical[0].fill == schema["fill_values"]["colour"]
    assert [f.fill for f in spec.numeric] == [schema["fill_values"][f.column] for f in spec.numeric]


def test_split_shards_are_filled_and_hold_every_cleaned_row(tmp_path) -> None:
    _, schema, dirs = _run(tmp_path, _raw(3_000))
    cleaned = pd.read_parquet(tmp_path / "cleaned" / artifacts.CLEANED_SHARDS_DIR)
    assert cleaned.isna().any().any()  # ingest leaves the missing cells to preprocess
    splits = {}
    for name in SPLITS:
        folder = dirs[name] / artifacts.SPLIT_SHARDS_DIR
        shards = sorted(folder.glob("*.parquet"))
        assert shards and not (dirs[name] / artifacts.SPLIT_FILE).exists()
        for shard in shards:
            assert not pd.read_parquet(shard).isna().any().any(), shard
        splits[name] = read_split(dirs[name])
        assert len(splits[name]) == sum(len(pd.read_parquet(shard)) for shard in shards)
    rows = len(cleaned)
    assert sum(len(part) for part in splits.values()) == rows == schema["rows"]
    for name, fraction in ((artifacts.VALIDATION, 0.1), (artifacts.TEST, 0.25)):
        assert abs(len(splits[name]) / rows - fraction) < 4 * np.sqrt(fraction * (1 - fraction) / rows), name
    columns = list(cleaned.columns)
    together = pd.concat(splits.values(), ignore_index=True).sort_values(columns).reset_index(drop=True)
    filled = cleaned.fillna(schema["fill_values"]).sort_values(columns).reset_index(drop=True)
    pd.testing.assert_frame_equal(together, filled)
    # each row's split follows from its content: the cleaned row, before filling, decides
    which = split_of(cleaned, SPLIT, 5)
    for code, name in enumerate(SPLITS):
        expected = cleaned[which == code].fillna(schema["fill_values"]).sort_values(columns)
        pd.testing.assert_frame_equal(splits[name].sort_values(columns).reset_index(drop=True),
                                      expected.reset_index(drop=True))


def test_the_same_data_gives_the_same_splits(tmp_path) -> None:
    frame = _raw(800)
    _, _, first = _run(tmp_path / "one", frame)
    _, _, second = _run(tmp_path / "two", frame.iloc[::-1])  # rows in another order, other shards
    for name in SPLITS:
        columns = list(read_split(first[name]).columns)
        one, two = (read_split(dirs[name]).sort_values(columns).reset_index(drop=True) for dirs in (first, second))
        pd.testing.assert_frame_equal(one, two)


def test_too_small_a_table_names_the_empty_split(tmp_path) -> None:
    frame = pd.DataFrame({"x": [1.0, 2.0], "y": ["a", "b"]})
    with pytest.raises(DataError, match=r"2 rows are too few for the (train|validation|test) split"):
        _run(tmp_path, frame)
    for name in SPLITS:
        assert not (tmp_path / name / artifacts.SPLIT_SHARDS_DIR).exists()
    assert not (tmp_path / "spec" / artifacts.PREPROCESSING_SPEC_FILE).exists()


def test_oversampling_is_refused_for_streamed_data(tmp_path) -> None:
    with pytest.raises(DataError, match=r"augmentation\.oversample is not available for streamed data"):
        _run(tmp_path, _raw(300), augmentation=AugmentationConfig(oversample=True))
    assert not (tmp_path / artifacts.TRAIN).exists()


def test_read_split_reads_a_single_file_split_too(tmp_path) -> None:
    frame = _cleaned(20)
    (tmp_path / "plain").mkdir()
    frame.to_parquet(tmp_path / "plain" / artifacts.SPLIT_FILE, index=False)
    pd.testing.assert_frame_equal(read_split(tmp_path / "plain"), frame)
    sharded = tmp_path / "sharded" / artifacts.SPLIT_SHARDS_DIR
    sharded.mkdir(parents=True)
    for index, part in enumerate(np.array_split(frame, 4)):
        part.to_parquet(sharded / f"part-{index:05d}.parquet", index=False)
    pd.testing.assert_frame_equal(read_split(tmp_path / "sharded"), frame)
