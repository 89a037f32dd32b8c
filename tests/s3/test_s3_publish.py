"""Publishing to s3:// against moto's S3 server: layout, atomicity, version claims, the champion pointer.

The claim (``If-None-Match: *``) and pointer (``If-Match: <ETag>``) preconditions are enforced
by moto itself, and tested here one request after another. Where publishers run *concurrently*,
the client is wrapped in :class:`conftest.AtomicConditionalClient`: moto checks a precondition
and then writes in two steps of a threaded server, which two racing requests can both pass; the
wrapper serializes conditional writes, as S3 makes them atomic. Everything else is moto's.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
from conftest import AtomicConditionalClient

from tunepipe import artifacts
from tunepipe.errors import ExportError
from tunepipe.publishing import layout
from tunepipe.publishing.publish import (
    CLAIMS_DIR,
    Champion,
    claim_version,
    publish_to_store,
    read_store_champion,
    update_store_champion,
)
from tunepipe.storage.hashing import sha256_bytes
from tunepipe.storage.objectstore import RetryPolicy
from tunepipe.storage.s3 import S3ObjectStore

pytestmark = pytest.mark.s3


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


def test_publish_layout_pointer_and_nothing_temporary_left(s3_client, bucket_name, tmp_path) -> None:
    store = S3ObjectStore(bucket_name, s3_client, no_wait())
    assert publish_to_store(store, "models/m", staged(tmp_path, "a"), render) == 1
    assert publish_to_store(store, "models/m", staged(tmp_path, "b"), render) == 2
    names = store.list("models/m/")
    assert {f"models/m/2/{layout.KERAS_MODEL}", "models/m/2/saved_model.pb",
            f"models/m/2/{layout.MODEL_CARD}"} <= set(names)
    assert not [name for name in names if "/.tmp-" in name]
    card = store.read(f"models/m/2/{layout.MODEL_CARD}")[0]
    pointer = read_store_champion(store, "models/m")[0]
    assert pointer.version == 2 and pointer.model_card_sha256 == sha256_bytes(card)
    assert store.read(f"models/m/2/{layout.KERAS_MODEL}")[0] == b"keras b"


def test_a_failure_midway_publishes_nothing_and_the_version_is_never_reused(s3_client, bucket_name, faults,
                                                                           tmp_path) -> None:
    store = S3ObjectStore(bucket_name, s3_client, no_wait())
    publish_to_store(store, "m", staged(tmp_path, "a"), render)
    pointer_before = store.read("m/CHAMPION")
    faults.fail("CopyObject", 403, "AccessDenied", times=1, key=layout.MODEL_CARD)  # after the claim
    with pytest.raises(ExportError, match=r"nothing was published and the champion pointer is unchanged"):
        publish_to_store(store, "m", staged(tmp_path, "b"), render)
    assert store.list("m/2/") == []  # no partial version visible
    assert not [name for name in store.list("m/") if "/.tmp-" in name]
    assert store.read("m/CHAMPION") == pointer_before
    assert publish_to_store(store, "m", staged(tmp_path, "c"), render) == 3  # 2 was claimed: never reused
    assert read_store_champion(store, "m")[0].version == 3


def test_a_claim_taken_by_another_run_is_skipped(s3_client, bucket_name) -> None:
    """moto refuses the second create of .claims/1 (412): the claimer moves on to 2."""
    store = S3ObjectStore(bucket_name, s3_client)
    store.write_if_generation(f"m/{CLAIMS_DIR}/1", b"other-run", None)
    assert claim_version(store, "m", "mine") == 2
    assert store.read(f"m/{CLAIMS_DIR}/2")[0] == b"mine"
    assert store.read(f"m/{CLAIMS_DIR}/1")[0] == b"other-run"


def test_the_pointer_never_moves_backwards_and_rereads_after_losing_a_race(s3_client, bucket_name) -> None:
    store = S3ObjectStore(bucket_name, s3_client)
    update_store_champion(store, "m", 2, "sha-2")
    assert update_store_champion(store, "m", 1, "sha-1").version == 2  # older: stays
    real_read = store.read
    raced: list[bool] = []

    def read_then_someone_writes(key: str):
        found = real_read(key)
        if not raced and found is not None:  # another run moves the pointer between our read and write
            raced.append(True)
            store.write_if_generation(key, Champion(5, "sha-5", "t").to_bytes(), found[1])
        return found

    store.read = read_then_someone_writes  # type: ignore[method-assign]
    assert update_store_champion(store, "m", 3, "sha-3").version == 5  # moto refused the stale ETag: re-read
    assert read_store_champion(store, "m")[0].version == 5


def test_concurrent_publishers_get_distinct_versions_and_a_consistent_pointer(s3_client, bucket_name,
                                                                             tmp_path) -> None:
    client = AtomicConditionalClient(s3_client)
    results: dict[str, int] = {}
    errors: list[BaseException] = []

    def publish(payload: str) -> None:
        try:
            store = S3ObjectStore(bucket_name, client, no_wait())
            results[payload] = publish_to_store(store, "m", staged(tmp_path, payload), render)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=publish, args=(name,)) for name in "abcd"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(results.values()) == [1, 2, 3, 4]
    store = S3ObjectStore(bucket_name, s3_client)
    for payload, version in results.items():
        assert store.read(f"m/{version}/{layout.KERAS_MODEL}")[0] == f"keras {payload}".encode()
    pointer = read_store_champion(store, "m")[0]
    assert pointer.version == 4
    assert pointer.model_card_sha256 == sha256_bytes(store.read(f"m/4/{layout.MODEL_CARD}")[0])


def test_concurrent_pointer_updates_end_at_the_latest_version(s3_client, bucket_name) -> None:
    client = AtomicConditionalClient(s3_client)
    versions = [3, 7, 1, 8, 2, 6, 5, 4]
    threads = [threading.Thread(target=update_store_champion,
                                args=(S3ObjectStore(bucket_name, client), "m", version, f"sha-{version}"))
               for version in versions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert read_store_champion(S3ObjectStore(bucket_name, s3_client), "m")[0].version == 8


def test_export_model_to_s3_and_score_the_champion_from_there(aws_env, bucket_name, tmp_path) -> None:
    """The whole export (SavedModel verified, files uploaded) and the evaluate side reading it back,
    both through stores built from the AWS chain in the environment."""
    import keras
    import keras_tuner

    import tunepipe
    from tunepipe.config import FloatRange, IntRange, SearchSpace, SplitConfig
    from tunepipe.data.features import model_inputs, targets
    from tunepipe.data.ingest import run_ingest
    from tunepipe.data.preprocess import run_preprocess
    from tunepipe.data.split import Split
    from tunepipe.evaluation.champion import compare, load_champion
    from tunepipe.evaluation.evaluate import evaluate_model
    from tunepipe.modelling.model import TabularHyperModel
    from tunepipe.publishing.export import export_model

    run_ingest(str(Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"), "species", "auto",
               tmp_path / "cleaned")
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
    card = {"task": spec.task, "label": spec.label, "classes": spec.classes, "metrics": {}}
    root = f"s3://{bucket_name}/models"
    published = export_model(model, spec, root, "penguins", card, test.frame())
    assert published.version == 1 and published.location == f"{root}/penguins/1"
    champion = load_champion(root, "penguins", tmp_path / "scratch")
    assert champion is not None and champion.pointer.version == 1
    scored = evaluate_model(model, test, spec)
    candidate = scored.evaluation.metrics
    comparison = compare(scored.scores, champion, test, spec, 0.0, "not_worse", seed=0)
    assert comparison.passed and comparison.champion == pytest.approx(candidate["accuracy"])
