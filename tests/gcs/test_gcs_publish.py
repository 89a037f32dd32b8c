"""Publishing to gs:// against a local GCS emulator: checksums, layout, failures, retries.

gcp-storage-emulator does not enforce ``if_generation_match``, so the claim and pointer
preconditions (two concurrent runs) are tested against a fake that does, in
tests/unit/test_publish.py; everything else runs here through the real client library.
"""

from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner
import pytest
from google.api_core import exceptions as gexc
from google.cloud.storage.blob import Blob

import tunepipe
from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, SplitConfig
from tunepipe.data.features import model_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess
from tunepipe.data.split import Split
from tunepipe.errors import ExportError
from tunepipe.evaluation.champion import compare, load_champion
from tunepipe.evaluation.evaluate import evaluate_model
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.publishing import layout
from tunepipe.publishing.export import export_model
from tunepipe.publishing.publish import publish_to_store, read_store_champion
from tunepipe.storage.hashing import sha256_bytes
from tunepipe.storage.objectstore import GcsObjectStore, RetryPolicy, crc32c_of

pytestmark = pytest.mark.gcs

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"


def render(version: int, files: dict) -> dict[str, bytes]:
    return {layout.MODEL_CARD_MD: b"# card\n",
            layout.MODEL_CARD: json.dumps({"version": version, "files": files}).encode()}


def staged(tmp_path: Path, payload: str) -> Path:
    folder = tmp_path / f"staged-{payload}"
    (folder / artifacts.EXTRA_DIR).mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(payload.encode() * 5000)
    (folder / layout.KERAS_MODEL).write_bytes(b"keras " + payload.encode())
    return folder


def no_wait() -> RetryPolicy:
    return RetryPolicy(sleep=lambda seconds: None)


def test_object_operations_and_checksums(client, bucket_name, tmp_path) -> None:
    store = GcsObjectStore(bucket_name, client, no_wait())
    source = tmp_path / "file.bin"
    source.write_bytes(bytes(range(256)) * 4000)
    store.upload_file("a/file.bin", source)
    assert client.bucket(bucket_name).get_blob("a/file.bin").crc32c == crc32c_of(source)
    data, generation = store.read("a/file.bin")
    assert data == source.read_bytes() and generation > 0
    assert store.read("a/absent") is None
    store.copy("a/file.bin", "b/copy.bin")
    assert store.list("b/") == ["b/copy.bin"]
    store.download_file("b/copy.bin", tmp_path / "back" / "copy.bin")
    assert (tmp_path / "back" / "copy.bin").read_bytes() == source.read_bytes()
    store.delete("b/copy.bin")
    store.delete("b/copy.bin")  # already gone: fine
    assert store.list("b/") == []


def test_publish_layout_and_pointer_on_the_emulator(client, bucket_name, tmp_path) -> None:
    store = GcsObjectStore(bucket_name, client, no_wait())
    assert publish_to_store(store, "models/m", staged(tmp_path, "a"), render) == 1
    assert publish_to_store(store, "models/m", staged(tmp_path, "b"), render) == 2
    names = store.list("models/m/")
    assert "models/m/2/saved_model.pb" in names and "models/m/CHAMPION" in names
    assert not [name for name in names if "/.tmp-" in name]
    champion, _ = read_store_champion(store, "models/m")
    card = store.read(f"models/m/2/{layout.MODEL_CARD}")[0]
    assert champion.version == 2 and champion.model_card_sha256 == sha256_bytes(card)
    assert store.read(f"models/m/2/{layout.KERAS_MODEL}")[0] == b"keras b"


@pytest.mark.parametrize(
    "error", [gexc.ServiceUnavailable("503"), gexc.TooManyRequests("429"), ConnectionResetError("reset by peer")],
)
def test_transient_upload_errors_are_retried(client, bucket_name, tmp_path, monkeypatch, error) -> None:
    real_upload = Blob.upload_from_filename
    failures = {"left": 2}
    waits: list[float] = []

    def flaky(self, *args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise error
        return real_upload(self, *args, **kwargs)

    monkeypatch.setattr(Blob, "upload_from_filename", flaky)
    store = GcsObjectStore(bucket_name, client, RetryPolicy(jitter=0.0, sleep=waits.append))
    assert publish_to_store(store, "m", staged(tmp_path, "a"), render) == 1
    assert waits == [0.5, 1.0]
    assert store.read(f"m/1/{layout.KERAS_MODEL}")[0] == b"keras a"


def test_upload_failing_midway_publishes_nothing(client, bucket_name, tmp_path, monkeypatch) -> None:
    store = GcsObjectStore(bucket_name, client, no_wait())
    publish_to_store(store, "m", staged(tmp_path, "a"), render)
    pointer_before = store.read("m/CHAMPION")
    real_upload = Blob.upload_from_filename

    def down_for_the_keras_file(self, filename, *args, **kwargs):
        if self.name.endswith(artifacts.MODEL_FILE):
            raise gexc.ServiceUnavailable("backend unavailable")
        return real_upload(self, filename, *args, **kwargs)

    monkeypatch.setattr(Blob, "upload_from_filename", down_for_the_keras_file)
    with pytest.raises(ExportError, match=r"model\.keras.* failed after 6 attempt\(s\)") as raised:
        publish_to_store(store, "m", staged(tmp_path, "b"), render)
    assert "nothing was published and the champion pointer is unchanged" in str(raised.value)
    assert "model.keras" in str(raised.value)
    assert store.list("m/2/") == []
    assert not [name for name in store.list("m/") if "/.tmp-" in name]
    assert store.read("m/CHAMPION") == pointer_before


def test_export_model_to_gs_and_score_the_champion_from_there(client, bucket_name, tmp_path) -> None:
    """The whole export (SavedModel verified, files uploaded) and the evaluate side's reading of it."""
    run_ingest(str(PENGUINS), "species", "auto", tmp_path / "cleaned")
    dirs = {name: tmp_path / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    spec = run_preprocess(tmp_path / "cleaned", SplitConfig(), 0, {**dirs, "spec": tmp_path / "spec"})
    train, test = Split.open(dirs[artifacts.TRAIN]).frame(), Split.open(dirs[artifacts.TEST])
    space = SearchSpace(hidden_layers=IntRange(min=1, max=1), units=IntRange(min=8, max=8), activation=["relu"],
                        dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2),
                        batch_size=[32])
    keras.utils.set_random_seed(0)
    hypermodel, hp = TabularHyperModel(spec, space), keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=5, verbose=0)
    store = GcsObjectStore(bucket_name, client, no_wait())
    card = {"task": spec.task, "label": spec.label, "classes": spec.classes, "metrics": {}}
    published = export_model(model, spec, f"gs://{bucket_name}/models", "penguins", card, test.frame(), store=store)
    assert published.version == 1 and published.location == f"gs://{bucket_name}/models/penguins/1"
    names = set(store.list("models/penguins/1/"))
    for name in (layout.KERAS_MODEL, layout.MODEL_CARD, layout.MODEL_CARD_MD,
                 layout.SAVED_MODEL_PB):
        assert f"models/penguins/1/{name}" in names
    champion = load_champion(f"gs://{bucket_name}/models", "penguins", tmp_path / "scratch", store=store)
    assert champion is not None and champion.pointer.version == 1
    scored = evaluate_model(model, test, spec)
    candidate = scored.evaluation.metrics
    comparison = compare(scored.scores, champion, test, spec, 0.0, "not_worse", seed=0)
    assert comparison.passed and comparison.champion == pytest.approx(candidate["accuracy"])
