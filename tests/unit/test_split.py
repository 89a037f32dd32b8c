"""The one split type: its layout and metadata, chunks, whole or streamed reads, the tuning sample, tf.data.

Every test runs on splits of a table read as one batch (one shard) or many (several shards);
``streaming_reads`` lowers :data:`~tunepipe.data.split.WHOLE_SPLIT_BYTES` so that consumers stream
splits this small.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.config import InputLimits, SearchSpace, SplitConfig
from tunepipe.data import clean
from tunepipe.data import split as split_module
from tunepipe.data.features import model_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import read_spec, run_preprocess
from tunepipe.data.sampling import sample_arrays
from tunepipe.data.split import HASHED, STRATIFIED, Split, fit_inputs
from tunepipe.errors import DataError
from tunepipe.evaluation import evaluate as evaluate_module
from tunepipe.evaluation.evaluate import evaluate_model
from tunepipe.modelling.chooser import hypermodel_for
from tunepipe.modelling.hyperparameters import _rows

pytestmark = pytest.mark.unit
SPLITS = ("train", "validation", "test")
READS = {"one batch": "never", "many batches": "always"}  # data.streaming: how ingest reads the table


def _table(rows: int, seed: int = 3) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(rows, 4))
    frame = pd.DataFrame(features, columns=["a", "b", "c", "d"])
    frame["kind"] = rng.choice(["x", "y", "z"], rows)
    frame["label"] = np.where(features[:, 0] + features[:, 1] > 0.5, "high",
                              np.where(features[:, 2] > 1.0, "rare", "low"))
    return frame


@pytest.fixture(scope="module", params=list(READS))
def folders(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """6,000 rows ingested as one batch or in cleaned shards of 1,000 rows, then split (seed 42)."""
    root = tmp_path_factory.mktemp(READS[request.param])
    data = root / "data"
    data.mkdir()
    table = _table(6_000)
    for index in range(3):
        table.iloc[index::3].to_parquet(data / f"part-{index}.parquet", index=False)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(clean, "BUCKET_MEMORY_BYTES", 1)  # the least: 1,000 rows a cleaned shard
        run_ingest(str(data), "label", "auto", root / "cleaned", limits=InputLimits(streaming=READS[request.param]))
    result = {name: root / name for name in (*SPLITS, "spec")}
    run_preprocess(root / "cleaned", SplitConfig(), 42, result)
    return result


@pytest.fixture
def streaming_reads(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(split_module, "WHOLE_SPLIT_BYTES", 0)


def _split(folders: dict[str, Path], name: str) -> Split:
    return Split.open(folders[name])


def test_a_split_is_counted_from_its_footers_and_records_its_policy(folders: dict[str, Path]) -> None:
    split = _split(folders, "train")
    assert split.rows == len(split.frame()) == split.metadata.rows > 0
    many = split.metadata.policy == HASHED
    assert split.metadata.policy in (STRATIFIED, HASHED) and (len(split.shards) > 1) == many
    assert 0 < split.bytes <= split_module.WHOLE_SPLIT_BYTES and split.fits_memory


def test_a_folder_without_a_whole_split_is_refused(folders: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not a split written by preprocess"):
        Split.open(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(folders["test"], copy)
    extra = copy / artifacts.SPLIT_SHARDS_DIR / "part-99999.parquet"
    shutil.copy(_split(folders, "test").shards[0], extra)  # rows its metadata does not record
    with pytest.raises(DataError, match="but its metadata records"):
        Split.open(copy)


def test_chunks_hold_exactly_the_rows_asked_for_across_shards(folders: dict[str, Path]) -> None:
    split = _split(folders, "train")
    chunks = list(split.chunks(1_000))
    assert [len(chunk) for chunk in chunks[:-1]] == [1_000] * (len(chunks) - 1)
    assert 0 < len(chunks[-1]) <= 1_000
    whole = split.frame()
    pd.testing.assert_frame_equal(pd.concat(chunks, ignore_index=True), whole)
    pd.testing.assert_frame_equal(split.head(1_500), whole.head(1_500))
    pd.testing.assert_frame_equal(split.head(10**6), whole)


def test_whole_or_streamed_is_decided_by_the_size_alone(folders: dict[str, Path],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    split, spec = _split(folders, "validation"), read_spec(folders["spec"])

    def encode(frame: pd.DataFrame) -> tuple[dict[str, np.ndarray], np.ndarray]:
        return model_inputs(frame, spec), targets(frame, spec)

    _, labels = split.inputs(encode, 64)
    np.testing.assert_array_equal(labels, split.arrays(spec)[1])
    monkeypatch.setattr(split_module, "WHOLE_SPLIT_BYTES", split.bytes)  # at the limit: still whole
    assert isinstance(split.inputs(encode, 64), tuple)
    monkeypatch.setattr(split_module, "WHOLE_SPLIT_BYTES", split.bytes - 1)
    assert not split.fits_memory and int(split.inputs(encode, 64).cardinality()) == -(-split.rows // 64)


def test_the_dataset_in_order_is_the_arrays_of_the_in_memory_encoding(folders: dict[str, Path],
                                                                      streaming_reads: None) -> None:
    split, spec = _split(folders, "validation"), read_spec(folders["spec"])
    dataset = split.inputs(lambda frame: (model_inputs(frame, spec), targets(frame, spec)), 64, chunk_rows=500)
    assert int(dataset.cardinality()) == -(-split.rows // 64)
    batches = list(dataset.as_numpy_iterator())
    assert all(len(labels) == 64 for _, labels in batches[:-1])
    expected, expected_labels = split.arrays(spec)
    np.testing.assert_array_equal(np.concatenate([labels for _, labels in batches]), expected_labels)
    for name, values in expected.items():
        np.testing.assert_allclose(np.concatenate([inputs[name] for inputs, _ in batches]), values)


def test_the_training_shuffle_is_seeded_and_changes_every_epoch(folders: dict[str, Path],
                                                               streaming_reads: None) -> None:
    split, spec = _split(folders, "train"), read_spec(folders["spec"])

    def dataset(seed: int | None) -> object:
        return split.inputs(lambda frame: (model_inputs(frame, spec), targets(frame, spec)), 128, seed,
                            chunk_rows=1_024)

    def epoch_labels(dataset: object) -> np.ndarray:
        return np.concatenate([labels for _, labels in dataset.as_numpy_iterator()])  # type: ignore[attr-defined]

    first = dataset(5)
    one, two = epoch_labels(first), epoch_labels(first)
    np.testing.assert_array_equal(one, epoch_labels(dataset(5)))  # same seed, same first epoch
    assert not np.array_equal(one, two)  # the second epoch is another order
    assert sorted(one) == sorted(two) == sorted(epoch_labels(dataset(None)))  # the same rows


def test_a_split_that_fits_memory_is_sampled_as_arrays_are(folders: dict[str, Path]) -> None:
    split, spec = _split(folders, "train"), read_spec(folders["spec"])
    (inputs, labels), described = split.sample(spec, 900, seed=7)
    (expected_inputs, expected), expected_description = sample_arrays(split.arrays(spec), 900, 7, True)
    np.testing.assert_array_equal(labels, expected)
    np.testing.assert_array_equal(inputs["a"], expected_inputs["a"])
    assert described == expected_description and described.kept == 900


def test_the_streamed_tuning_sample_is_stratified_seeded_and_bounded(folders: dict[str, Path],
                                                                     streaming_reads: None) -> None:
    split, spec = _split(folders, "train"), read_spec(folders["spec"])
    (_, labels), described = split.sample(spec, 900, seed=7)
    assert described.kept == len(labels) == 900 and described.rows == split.rows
    (_, again), _ = split.sample(spec, 900, seed=7)
    np.testing.assert_array_equal(labels, again)
    every = split.arrays(spec)[1]
    shares = np.bincount(every) / len(every)
    sampled = np.bincount(labels, minlength=len(shares)) / len(labels)
    np.testing.assert_allclose(sampled, shares, atol=1 / 900 + 1e-9)  # the allocation rounds one row per class
    (_, whole), everything = split.sample(spec, 0, seed=7)
    assert everything.kept == split.rows == len(whole)


def test_fit_inputs_are_arrays_that_fit_memory_and_datasets_otherwise(folders: dict[str, Path],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    spec = read_spec(folders["spec"])
    train, validation = _split(folders, "train"), _split(folders, "validation")
    whole = fit_inputs(folders["train"], folders["validation"], spec, 32, 256, seed=1)
    assert isinstance(whole.train, tuple) and isinstance(whole.validation, tuple)
    assert whole.rows == train.rows + validation.rows
    np.testing.assert_array_equal(whole.sample["a"], whole.validation[0]["a"][:256])  # the first 256 rows
    monkeypatch.setattr(split_module, "WHOLE_SPLIT_BYTES", 0)
    streamed = fit_inputs(folders["train"], folders["validation"], spec, 32, 256, seed=1)
    assert _rows(streamed.train, 32) == -(-train.rows // 32) * 32
    assert int(streamed.validation.cardinality()) == -(-validation.rows // 256)
    np.testing.assert_array_equal(streamed.sample["a"], whole.sample["a"])


def test_a_model_trains_on_the_dataset_and_evaluates_the_same_in_chunks(
    folders: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(evaluate_module, "PREDICT_ROWS", 100)  # several chunks of the test split
    monkeypatch.setattr(split_module, "WHOLE_SPLIT_BYTES", 0)
    spec = read_spec(folders["spec"])
    hypermodel = hypermodel_for(spec, SearchSpace())
    hp = keras_tuner.HyperParameters()
    keras.utils.set_random_seed(0)
    model = hypermodel.build(hp)
    data = fit_inputs(folders["train"], folders["validation"], spec, int(hp.get("batch_size")), None, seed=0)
    history = hypermodel.fit(hp, model, data.train, validation_data=data.validation, epochs=3, shuffle=False,
                             verbose=0)
    assert history.history["val_loss"][-1] < history.history["val_loss"][0]
    test = _split(folders, "test")
    chunked = evaluate_model(model, test, spec)
    monkeypatch.setattr(split_module, "WHOLE_SPLIT_BYTES", test.bytes)
    whole = evaluate_model(model, test, spec)
    assert chunked.evaluation.rows == whole.evaluation.rows == test.rows
    np.testing.assert_array_equal(chunked.y_true, whole.y_true)
    np.testing.assert_allclose(chunked.outputs, whole.outputs, rtol=1e-5, atol=1e-6)
    assert chunked.evaluation.metrics["accuracy"] == pytest.approx(whole.evaluation.metrics["accuracy"])
    majority = np.bincount(whole.y_true).max() / len(whole.y_true)
    assert chunked.evaluation.metrics["accuracy"] > majority + 0.05  # it learnt from the streamed batches
