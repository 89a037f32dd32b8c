"""Streamed splits downstream of preprocess: tf.data input, the tuning sample, evaluation in chunks."""

from __future__ import annotations

from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest

from tunepipe.config import InputLimits, SearchSpace, SplitConfig
from tunepipe.data.features import model_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import read_spec, read_split, run_preprocess, split_rows
from tunepipe.data.shard_input import ShardedSplit, fit_inputs, sharded_split
from tunepipe.evaluation import evaluate as evaluate_module
from tunepipe.evaluation.evaluate import evaluate_model
from tunepipe.modelling.chooser import hypermodel_for
from tunepipe.modelling.hyperparameters import _rows

pytestmark = pytest.mark.unit
SPLITS = ("train", "validation", "test")


def _table(rows: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4))
    frame = pd.DataFrame(features, columns=["a", "b", "c", "d"])
    frame["kind"] = rng.choice(["x", "y", "z"], rows)
    frame["label"] = np.where(features[:, 0] + features[:, 1] > 0.5, "high",
                              np.where(features[:, 2] > 1.0, "rare", "low"))
    return frame


@pytest.fixture(scope="module")
def streamed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("streamed")
    data = root / "data"
    data.mkdir()
    table = _table(6_000)
    for index in range(3):
        table.iloc[index::3].to_parquet(data / f"part-{index}.parquet", index=False)
    run_ingest(str(data), "label", "auto", root / "cleaned", limits=InputLimits(streaming="always"))
    folders = {name: root / name for name in (*SPLITS, "spec")}
    run_preprocess(root / "cleaned", SplitConfig(), 42, folders)
    return folders


def _split(folders: dict[str, Path], name: str) -> ShardedSplit:
    split = sharded_split(folders[name], read_spec(folders["spec"]))
    assert split is not None
    return split


def test_a_streamed_split_is_found_and_counted_from_its_footers(streamed: dict[str, Path]) -> None:
    split = _split(streamed, "train")
    assert split.rows == len(read_split(streamed["train"])) == split_rows(streamed["train"])
    assert len(split.shards) > 0


def test_chunks_hold_exactly_the_rows_asked_for_across_shards(streamed: dict[str, Path]) -> None:
    split = _split(streamed, "train")
    chunks = list(split.frames(1_000))
    assert [len(chunk) for chunk in chunks[:-1]] == [1_000] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) <= 1_000
    joined = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(joined, read_split(streamed["train"]).reset_index(drop=True))


def test_the_dataset_in_order_is_the_arrays_of_the_in_memory_encoding(streamed: dict[str, Path]) -> None:
    split = _split(streamed, "validation")
    spec = split.spec
    frame = read_split(streamed["validation"])
    dataset = split.dataset(64, chunk_rows=500)
    assert int(dataset.cardinality()) == -(-split.rows // 64)
    batches = list(dataset.as_numpy_iterator())
    assert all(len(labels) == 64 for _, labels in batches[:-1])
    labels = np.concatenate([labels for _, labels in batches])
    np.testing.assert_array_equal(labels, targets(frame, spec))
    expected = model_inputs(frame, spec)
    for name, values in expected.items():
        np.testing.assert_allclose(np.concatenate([inputs[name] for inputs, _ in batches]), values)


def test_the_training_shuffle_is_seeded_and_changes_every_epoch(streamed: dict[str, Path]) -> None:
    split = _split(streamed, "train")

    def epoch_labels(dataset: object) -> np.ndarray:
        return np.concatenate([labels for _, labels in dataset.as_numpy_iterator()])  # type: ignore[attr-defined]

    first = split.dataset(128, shuffle_seed=5, chunk_rows=1_024)
    again = split.dataset(128, shuffle_seed=5, chunk_rows=1_024)
    one, two = epoch_labels(first), epoch_labels(first)
    np.testing.assert_array_equal(one, epoch_labels(again))  # same seed, same first epoch
    assert not np.array_equal(one, two)  # the second epoch is another order
    assert sorted(one) == sorted(two) == sorted(epoch_labels(split.dataset(128)))  # the same rows


def test_the_tuning_sample_is_stratified_seeded_and_bounded(streamed: dict[str, Path]) -> None:
    split = _split(streamed, "train")
    (_, labels), described = split.sample(900, seed=7)
    assert described.kept == len(labels) == 900 and described.rows == split.rows
    (_, again), _ = split.sample(900, seed=7)
    np.testing.assert_array_equal(labels, again)
    every = targets(read_split(streamed["train"]), split.spec)
    shares = np.bincount(every) / len(every)
    sampled = np.bincount(labels, minlength=len(shares)) / len(labels)
    np.testing.assert_allclose(sampled, shares, atol=1 / 900 + 1e-9)  # the allocation rounds one row per class
    (_, whole), everything = split.sample(0, seed=7)
    assert everything.kept == split.rows == len(whole)


def test_fit_inputs_are_arrays_in_memory_and_datasets_when_streamed(streamed: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    spec = read_spec(streamed["spec"])
    streamed_inputs = fit_inputs(streamed["train"], streamed["validation"], spec, 32, 256, seed=1)
    batches = -(-_split(streamed, "train").rows // 32)
    assert streamed_inputs.streamed and _rows(streamed_inputs.train, 32) == batches * 32
    assert len(next(iter(streamed_inputs.sample.values()))) == 256
    run_ingest(str(streamed["train"] / "shards"), "label", "auto", tmp_path / "cleaned",
               limits=InputLimits(streaming="never"))
    folders = {name: tmp_path / name for name in (*SPLITS, "spec")}
    run_preprocess(tmp_path / "cleaned", SplitConfig(), 42, folders)
    in_memory = fit_inputs(folders["train"], folders["validation"], read_spec(folders["spec"]), 32, 256, seed=1)
    assert not in_memory.streamed and isinstance(in_memory.train, tuple)
    assert in_memory.rows == split_rows(folders["train"]) + split_rows(folders["validation"])


def test_a_model_trains_on_the_dataset_and_evaluates_the_same_in_chunks(
    streamed: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluate_module, "PREDICT_ROWS", 100)  # several chunks of the test split
    spec = read_spec(streamed["spec"])
    hypermodel = hypermodel_for(spec, SearchSpace())
    hp = keras_tuner.HyperParameters()
    keras.utils.set_random_seed(0)
    model = hypermodel.build(hp)
    data = fit_inputs(streamed["train"], streamed["validation"], spec, int(hp.get("batch_size")), None, seed=0)
    history = hypermodel.fit(hp, model, data.train, validation_data=data.validation, epochs=3, shuffle=False,
                             verbose=0)
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    chunked = evaluate_model(model, _split(streamed, "test"), spec)
    whole = evaluate_model(model, read_split(streamed["test"]), spec)
    assert chunked.evaluation.rows == whole.evaluation.rows
    np.testing.assert_array_equal(chunked.y_true, whole.y_true)
    np.testing.assert_allclose(chunked.outputs, whole.outputs, rtol=1e-5, atol=1e-6)
    assert chunked.evaluation.metrics["accuracy"] == pytest.approx(whole.evaluation.metrics["accuracy"])
    majority = np.bincount(whole.y_true).max() / len(whole.y_true)
    assert chunked.evaluation.metrics["accuracy"] > majority + 0.05  # it learnt from the streamed batches
