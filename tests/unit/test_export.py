"""Versioned, verified export: the serving model takes raw values and matches the trained one."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

import tunepipe
import tunepipe.publishing.export
from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, SplitConfig
from tunepipe.data.features import PreprocessingSpec, model_inputs, raw_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import read_split, run_preprocess
from tunepipe.errors import ExportError
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.publishing.export import existing_versions, export_model, signature
from tunepipe.storage.hashing import sha256_file

pytestmark = pytest.mark.unit

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"
SPACE = SearchSpace(
    hidden_layers=IntRange(min=1, max=1), units=IntRange(min=16, max=16), activation=["relu"],
    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2), batch_size=[32],
)
CARD = {"task": "classification", "metrics": {"accuracy": 0.5}}


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[keras.Model, PreprocessingSpec, pd.DataFrame]:
    root = tmp_path_factory.mktemp("penguins")
    run_ingest(str(PENGUINS), "species", "auto", root / "cleaned")
    dirs = {name: root / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    spec = run_preprocess(root / "cleaned", SplitConfig(), 0, {**dirs, "spec": root / "spec"})
    train = read_split(dirs[artifacts.TRAIN])
    keras.utils.set_random_seed(0)
    hypermodel = TabularHyperModel(spec, SPACE)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=3, verbose=0)
    test = read_split(dirs[artifacts.TEST])
    # an island and a sex never seen in training: both paths must map them to the out-of-vocabulary index
    unseen = test.head(2).copy()
    unseen["island"] = "Atlantis"
    unseen["sex"] = "unknown"
    return model, spec, pd.concat([test, unseen], ignore_index=True)


def _serve(version_dir: Path, rows: pd.DataFrame, spec: PreprocessingSpec) -> np.ndarray:
    serve = tf.saved_model.load(str(version_dir / artifacts.SAVED_MODEL_DIR)).signatures["serving_default"]
    feeds = {}
    for feature in spec.numeric:  # raw, unnormalized numbers
        feeds[feature.input_name] = tf.constant(rows[feature.column].to_numpy(np.float32).reshape(-1, 1))
    for cat in spec.categorical:  # raw strings, not indices
        feeds[cat.input_name] = tf.constant([[str(value)] for value in rows[cat.column]])
    (output,) = serve(**feeds).values()
    return output.numpy()


def test_export_publishes_increasing_versions_and_serves_raw_inputs(trained, tmp_path) -> None:
    model, spec, rows = trained
    assert {cat.column for cat in spec.categorical} == {"island", "sex"}
    first = Path(export_model(model, spec, str(tmp_path), "penguins", CARD, rows).location)
    second = Path(export_model(model, spec, str(tmp_path), "penguins", CARD, rows).location)
    assert first == tmp_path / "penguins" / "1"
    assert second == tmp_path / "penguins" / "2"
    assert existing_versions(tmp_path / "penguins") == [1, 2]
    visible = sorted(p.name for p in (tmp_path / "penguins").iterdir() if not p.name.startswith(".champion"))
    assert visible == ["1", "2", artifacts.CHAMPION_FILE]  # no staging left behind
    champion = json.loads((tmp_path / "penguins" / artifacts.CHAMPION_FILE).read_text())
    assert champion["version"] == 2
    assert champion["model_card_sha256"] == sha256_file(second / artifacts.MODEL_CARD_FILE)
    for version, folder in ((1, first), (2, second)):
        assert {p.name for p in folder.iterdir()} == {artifacts.SAVED_MODEL_DIR, artifacts.MODEL_FILE,
                                                     artifacts.MODEL_CARD_FILE, artifacts.MODEL_CARD_MD_FILE}
        assert (folder / artifacts.SAVED_MODEL_DIR).is_dir()
        assert (folder / artifacts.SAVED_MODEL_DIR / "saved_model.pb").is_file()
        assert (folder / artifacts.MODEL_FILE).is_file()
        card = json.loads((folder / artifacts.MODEL_CARD_FILE).read_text())
        assert card["version"] == version
        assert card["model_name"] == "penguins"
        assert card["metrics"] == CARD["metrics"]
        assert card["signature"] == json.loads(json.dumps(signature(spec)))
        assert card["signature"]["inputs"]["island"]["dtype"] == "string"
        assert card["signature"]["output"]["shape"] == [None, 3]
        assert card["verification"]["rows"] == len(rows)
        assert card["verification"]["max_abs_difference"] <= 1e-5
        assert card["verification"]["tolerance"] == 1e-5
        assert card["files"][artifacts.MODEL_FILE]["sha256"] == sha256_file(folder / artifacts.MODEL_FILE)
        assert {"tunepipe", "keras", "keras-tuner", "kfp"} <= set(card["packages"])
        assert f"# Model card: penguins version {version}" in (folder / artifacts.MODEL_CARD_MD_FILE).read_text()

    # the no-skew proof: raw values through the SavedModel == model_inputs through the trained model
    expected = np.asarray(model.predict(model_inputs(rows, spec), verbose=0))
    served = _serve(second, rows, spec)
    assert served.shape == (len(rows), 3)
    np.testing.assert_allclose(served, expected, atol=1e-5, rtol=0)
    assert (model_inputs(rows, spec)["island"][-2:] == 0).all()  # the unseen rows really were out of vocabulary

    # the published .keras file is the serving model too: raw strings in, the same probabilities out
    reloaded = keras.models.load_model(second / artifacts.MODEL_FILE)
    feeds = {name: tf.constant(values) for name, values in raw_inputs(rows, spec).items()}
    np.testing.assert_allclose(np.asarray(reloaded.predict(feeds, verbose=0)), expected, atol=1e-5, rtol=0)


def test_failed_verification_publishes_nothing(trained, tmp_path, monkeypatch) -> None:
    model, spec, rows = trained
    export_model(model, spec, str(tmp_path), "penguins", CARD, rows)
    monkeypatch.setattr(tunepipe.publishing.export, "PREDICTION_TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="nothing was published"):
        export_model(model, spec, str(tmp_path), "penguins", CARD, rows)
    model_dir = tmp_path / "penguins"
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".champion")) == [
        "1", artifacts.CHAMPION_FILE]
    assert not list(model_dir.glob(".staging-*"))
    assert json.loads((model_dir / artifacts.CHAMPION_FILE).read_text())["version"] == 1
    assert json.loads((model_dir / "1" / artifacts.MODEL_CARD_FILE).read_text())["version"] == 1


def test_schemes_other_than_the_object_stores_are_refused(trained) -> None:
    model, spec, rows = trained
    with pytest.raises(ExportError, match="hdfs://bucket/models: unsupported scheme hdfs://"):
        export_model(model, spec, "hdfs://bucket/models", "penguins", CARD, rows)
    with pytest.raises(ExportError, match="s3://Bucket/models: 'Bucket' is not a valid bucket name"):
        export_model(model, spec, "s3://Bucket/models", "penguins", CARD, rows)


def test_existing_versions_ignore_other_names(tmp_path) -> None:
    for name in ("3", "10", ".staging-abc", "notes", "2"):
        (tmp_path / name).mkdir()
    assert existing_versions(tmp_path) == [2, 3, 10]
    assert existing_versions(tmp_path / "absent") == []


def test_minmax_embeddings_and_noise_export_without_skew(tmp_path) -> None:
    """The other encodings (min-max, embedded categoricals, training-only noise) survive export."""
    from tunepipe.config import AugmentationConfig, PreprocessingConfig

    run_ingest(str(PENGUINS), "species", "auto", tmp_path / "cleaned")
    dirs = {name: tmp_path / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    spec = run_preprocess(
        tmp_path / "cleaned", SplitConfig(), 0, {**dirs, "spec": tmp_path / "spec"},
        PreprocessingConfig(normalization="minmax", max_one_hot=1), AugmentationConfig(gaussian_noise=0.3),
    )
    train = read_split(dirs[artifacts.TRAIN])
    hypermodel = TabularHyperModel(spec, SPACE)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert {"embed_island", "gaussian_noise"} <= {layer.name for layer in model.layers}
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=2, verbose=0)
    published = export_model(model, spec, str(tmp_path / "models"), "enc", dict(CARD), read_split(dirs[artifacts.TEST]))
    path = Path(published.location)
    card = json.loads((path / artifacts.MODEL_CARD_FILE).read_text())
    assert card["verification"]["max_abs_difference"] <= 1e-5
