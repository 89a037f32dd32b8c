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
import tunepipe.publishing.verify
from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, SplitConfig
from tunepipe.data.features import PreprocessingSpec, model_inputs, raw_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess
from tunepipe.data.split import Split
from tunepipe.errors import ExportError
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.publishing import layout
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
    train = Split.open(dirs[artifacts.TRAIN]).frame()
    keras.utils.set_random_seed(0)
    hypermodel = TabularHyperModel(spec, SPACE)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=3, verbose=0)
    test = Split.open(dirs[artifacts.TEST]).frame()
    # an island and a sex never seen in training: both paths must map them to the out-of-vocabulary index
    unseen = test.head(2).copy()
    unseen["island"] = "Atlantis"
    unseen["sex"] = "unknown"
    return model, spec, pd.concat([test, unseen], ignore_index=True)


def _serve(version_dir: Path, rows: pd.DataFrame, spec: PreprocessingSpec) -> dict[str, np.ndarray]:
    """The SavedModel at the version root, as TF Serving calls it: one scalar per input and row."""
    serve = tf.saved_model.load(str(version_dir)).signatures["serving_default"]
    feeds = {}
    for feature in spec.numeric:  # raw, unnormalized numbers; NaN where a cell is empty
        feeds[feature.input_name] = tf.constant(rows[feature.column].to_numpy(np.float32))
    for cat in spec.categorical:  # raw strings, not indices; "" where a cell is empty
        feeds[cat.input_name] = tf.constant(["" if pd.isna(value) else str(value) for value in rows[cat.column]])
    return {name: tensor.numpy() for name, tensor in serve(**feeds).items()}


VERSION_FILES = {"saved_model.pb", "fingerprint.pb", "variables", "assets", artifacts.EXTRA_DIR}
EXTRA_FILES = {artifacts.MODEL_FILE, artifacts.MODEL_CARD_FILE, artifacts.MODEL_CARD_MD_FILE, artifacts.WARMUP_FILE}


def test_export_publishes_increasing_versions_in_the_layout_servers_load(trained, tmp_path) -> None:
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
    assert champion["model_card_sha256"] == sha256_file(second / layout.MODEL_CARD)
    for version, folder in ((1, first), (2, second)):
        assert {p.name for p in folder.iterdir()} <= VERSION_FILES
        assert (folder / "saved_model.pb").is_file() and (folder / "variables").is_dir()
        assert {p.name for p in (folder / artifacts.EXTRA_DIR).iterdir()} == EXTRA_FILES
        card = json.loads((folder / layout.MODEL_CARD).read_text())
        assert card["version"] == version
        assert card["model_name"] == "penguins"
        assert card["metrics"] == CARD["metrics"]
        assert card["signature"] == json.loads(json.dumps(signature(spec)))
        assert card["signature"]["inputs"]["island"]["dtype"] == "string"
        assert card["signature"]["outputs"]["probabilities"]["shape"] == [None, 3]
        assert card["signature"]["outputs"]["predicted_class"]["dtype"] == "string"
        assert card["verification"]["rows"] == len(rows)
        assert card["verification"]["max_abs_difference"] <= 1e-5
        assert card["verification"]["tolerance"] == 1e-5
        assert card["files"][layout.KERAS_MODEL]["sha256"] == sha256_file(folder / layout.KERAS_MODEL)
        assert card["files"]["saved_model.pb"]["sha256"] == sha256_file(folder / "saved_model.pb")
        assert {"tunepipe", "keras", "keras-tuner", "kfp"} <= set(card["packages"])
        assert f"# Model card: penguins version {version}" in (folder / layout.MODEL_CARD_MD).read_text()


def test_the_saved_model_answers_named_outputs_on_raw_rows(trained, tmp_path) -> None:
    model, spec, rows = trained
    version = Path(export_model(model, spec, str(tmp_path), "penguins", CARD, rows).location)
    # the no-skew proof: raw values through the SavedModel == model_inputs through the trained model
    expected = np.asarray(model.predict(model_inputs(rows, spec), verbose=0))
    served = _serve(version, rows, spec)
    assert set(served) == {"probabilities", "predicted_class"}
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5, rtol=0)
    assert [name.decode() for name in served["predicted_class"]] == [spec.classes[i] for i in expected.argmax(1)]
    assert (model_inputs(rows, spec)["island"][-2:] == 0).all()  # the unseen rows really were out of vocabulary

    # the published .keras file is the serving model too: raw strings in, the same probabilities out
    reloaded = keras.models.load_model(version / layout.KERAS_MODEL)
    feeds = {name: tf.constant(values) for name, values in raw_inputs(rows, spec).items()}
    np.testing.assert_allclose(np.asarray(reloaded.predict(feeds, verbose=0)), expected, atol=1e-5, rtol=0)


def test_an_empty_cell_gets_the_prediction_of_the_row_ingest_would_have_cleaned(trained, tmp_path) -> None:
    model, spec, rows = trained
    version = Path(export_model(model, spec, str(tmp_path), "penguins", CARD, rows).location)
    fills = {f.column: f.fill for f in [*spec.numeric, *spec.categorical]}
    assert None not in fills.values()  # ingest recorded a fill value for every feature
    raw = rows.head(len(fills)).reset_index(drop=True)
    raw[[f.column for f in spec.numeric]] = raw[[f.column for f in spec.numeric]].astype(np.float64)
    cleaned = raw.copy()
    for row, (column, fill) in enumerate(fills.items()):
        raw.loc[row, column] = None
        cleaned.loc[row, column] = fill
    served = _serve(version, raw, spec)
    expected = np.asarray(model.predict(model_inputs(cleaned, spec), verbose=0))
    assert not np.isnan(served["probabilities"]).any()
    np.testing.assert_allclose(served["probabilities"], expected, atol=1e-5, rtol=0)


def _records(path: Path) -> list[bytes]:
    return [record.numpy() for record in tf.data.TFRecordDataset(str(path))]


def _fields(message: bytes) -> list[tuple[int, bytes]]:
    """(field number, payload) of a protobuf message of length-delimited fields: a reader
    independent of the writer's code."""
    fields, position = [], 0
    while position < len(message):
        key, position = _varint(message, position)
        assert key & 7 == 2, "every field of these messages is length-delimited"
        size, position = _varint(message, position)
        fields.append((key >> 3, message[position:position + size]))
        position += size
    return fields


def _varint(data: bytes, position: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        byte = data[position]
        value |= (byte & 0x7F) << shift
        position, shift = position + 1, shift + 7
        if not byte & 0x80:
            return value, position


def test_the_warmup_file_replays_on_the_published_signature(trained, tmp_path) -> None:
    from tensorflow.core.framework import tensor_pb2

    model, spec, rows = trained
    version = Path(export_model(model, spec, str(tmp_path), "penguins", CARD, rows).location)
    loaded = tf.saved_model.load(str(version))
    records = _records(version / layout.WARMUP)
    assert records
    for record in records:
        assert [number for number, _ in _fields(record)] == [6]  # PredictionLog.predict_log
        predict_log = _fields(record)[0][1]
        assert [number for number, _ in _fields(predict_log)] == [1]  # PredictLog.request
        request = _fields(predict_log)[0][1]
        spec_fields = dict(_fields(dict(_fields(request))[1]))  # PredictRequest.model_spec
        assert spec_fields[1] == b"penguins"
        signature_name = spec_fields[3].decode()
        inputs = {}
        for number, entry in _fields(request):
            if number == 2:  # PredictRequest.inputs map entry: key 1, TensorProto 2
                parts = dict(_fields(entry))
                inputs[parts[1].decode()] = tf.make_ndarray(tensor_pb2.TensorProto.FromString(parts[2]))
        assert set(inputs) == {f.input_name for f in [*spec.numeric, *spec.categorical]}
        answer = loaded.signatures[signature_name](**{k: tf.constant(v) for k, v in inputs.items()})
        assert answer["probabilities"].shape[0] == len(next(iter(inputs.values())))
        assert not np.isnan(answer["probabilities"].numpy()).any()  # its rows carry missing cells, filled


def test_failed_verification_publishes_nothing(trained, tmp_path, monkeypatch) -> None:
    model, spec, rows = trained
    export_model(model, spec, str(tmp_path), "penguins", CARD, rows)
    monkeypatch.setattr(tunepipe.publishing.verify, "PREDICTION_TOLERANCE", -1.0)
    with pytest.raises(ExportError, match="nothing was published"):
        export_model(model, spec, str(tmp_path), "penguins", CARD, rows)
    model_dir = tmp_path / "penguins"
    assert sorted(p.name for p in model_dir.iterdir() if not p.name.startswith(".champion")) == [
        "1", artifacts.CHAMPION_FILE]
    assert not list(model_dir.glob(".staging-*"))
    assert json.loads((model_dir / artifacts.CHAMPION_FILE).read_text())["version"] == 1
    assert json.loads((model_dir / "1" / layout.MODEL_CARD).read_text())["version"] == 1


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
    train = Split.open(dirs[artifacts.TRAIN]).frame()
    hypermodel = TabularHyperModel(spec, SPACE)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    assert {"embed_island", "gaussian_noise"} <= {layer.name for layer in model.layers}
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=2, verbose=0)
    test = Split.open(dirs[artifacts.TEST]).frame()
    published = export_model(model, spec, str(tmp_path / "models"), "enc", dict(CARD), test)
    path = Path(published.location)
    card = json.loads((path / layout.MODEL_CARD).read_text())
    assert card["verification"]["max_abs_difference"] <= 1e-5
