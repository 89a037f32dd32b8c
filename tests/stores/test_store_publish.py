"""Publishing to every object store the same way: the layout and pointer, version claims and the
pointer's conditional writes (enforced by moto, and by the GCS emulator inside
``place.conditional()``), publishers racing each other, and the whole export read back by the
evaluate side from every store and from a local folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from store_places import Place, no_wait, render, staged, threads

from tunepipe import artifacts
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


def test_publish_layout_pointer_and_nothing_temporary_left(remote: Place, tmp_path) -> None:
    store = remote.store(no_wait())
    assert publish_to_store(store, "models/m", staged(tmp_path, "a"), render) == 1
    assert publish_to_store(store, "models/m", staged(tmp_path, "b"), render) == 2
    names = store.list("models/m/")
    assert {f"models/m/2/{layout.KERAS_MODEL}", "models/m/2/saved_model.pb", f"models/m/2/{layout.MODEL_CARD}",
            f"models/m/{artifacts.CHAMPION_FILE}"} <= set(names)
    assert not [name for name in names if "/.tmp-" in name]
    card = store.read(f"models/m/2/{layout.MODEL_CARD}")[0]
    pointer = read_store_champion(store, "models/m")[0]
    assert pointer.version == 2 and pointer.model_card_sha256 == sha256_bytes(card)
    assert store.read(f"models/m/2/{layout.KERAS_MODEL}")[0] == b"keras b"


def test_a_claim_taken_by_another_run_is_skipped(remote: Place) -> None:
    """The store refuses the second create of .claims/1: the claimer moves on to 2."""
    store = remote.store()
    with remote.conditional():
        store.write_if_generation(f"m/{CLAIMS_DIR}/1", b"other-run", None)
        assert claim_version(store, "m", "mine") == 2
    assert store.read(f"m/{CLAIMS_DIR}/2")[0] == b"mine"
    assert store.read(f"m/{CLAIMS_DIR}/1")[0] == b"other-run"


def test_the_pointer_never_moves_backwards_and_rereads_after_losing_a_race(remote: Place) -> None:
    store = remote.store()
    real_read = store.read
    raced: list[bool] = []

    def read_then_someone_writes(key: str):
        found = real_read(key)
        if not raced and found is not None:  # another run moves the pointer between our read and write
            raced.append(True)
            store.write_if_generation(key, Champion(5, "sha-5", "t").to_bytes(), found[1])
        return found

    with remote.conditional():
        update_store_champion(store, "m", 2, "sha-2")
        assert update_store_champion(store, "m", 1, "sha-1").version == 2  # older: stays
        store.read = read_then_someone_writes  # type: ignore[method-assign]
        assert update_store_champion(store, "m", 3, "sha-3").version == 5  # the stale token refused: re-read
    assert read_store_champion(store, "m")[0].version == 5


def test_concurrent_publishers_get_distinct_versions_and_a_consistent_pointer(remote: Place, tmp_path) -> None:
    results: dict[str, int] = {}

    def publisher(payload: str):
        def publish() -> None:
            store = remote.store(no_wait(), remote.racing_client())
            results[payload] = publish_to_store(store, "m", staged(tmp_path, payload), render)
        return publish

    with remote.conditional(), threads([publisher(name) for name in "abcd"]) as errors:
        assert errors == []
    assert sorted(results.values()) == [1, 2, 3, 4]
    store = remote.store()
    for payload, version in results.items():
        assert store.read(f"m/{version}/{layout.KERAS_MODEL}")[0] == f"keras {payload}".encode()
    pointer = read_store_champion(store, "m")[0]
    assert pointer.version == 4
    assert pointer.model_card_sha256 == sha256_bytes(store.read(f"m/4/{layout.MODEL_CARD}")[0])


def test_concurrent_pointer_updates_end_at_the_latest_version(remote: Place) -> None:
    def updater(version: int):
        return lambda: update_store_champion(remote.store(client=remote.racing_client()), "m", version,
                                             f"sha-{version}")

    with remote.conditional(), threads([updater(version) for version in (3, 7, 1, 8, 2, 6, 5, 4)]) as errors:
        assert errors == []
    assert read_store_champion(remote.store(), "m")[0].version == 8


def test_export_model_and_score_the_champion_from_there(place: Place, tmp_path: Path) -> None:
    """The whole export (SavedModel verified, files written) and the evaluate side reading it back, both
    through stores built from the environment (or the local folder)."""
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
    root = place.uri("models")
    published = export_model(model, spec, root, "penguins", card, test.frame())
    assert published.version == 1 and published.location == f"{root}/penguins/1"
    names = set(place.names("models/penguins/1/"))
    for name in (layout.KERAS_MODEL, layout.MODEL_CARD, layout.MODEL_CARD_MD, layout.SAVED_MODEL_PB):
        assert f"models/penguins/1/{name}" in names
    champion = load_champion(root, "penguins", tmp_path / "scratch")
    assert champion is not None and champion.pointer.version == 1
    scored = evaluate_model(model, test, spec)
    candidate = scored.evaluation.metrics
    comparison = compare(scored.scores, champion, test, spec, 0.0, "not_worse", seed=0)
    assert comparison.passed and comparison.champion == pytest.approx(candidate["accuracy"])
