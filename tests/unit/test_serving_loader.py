"""Versions found, verified, loaded, warmed and swapped, from a local folder and an object store."""

import json
import threading
from pathlib import Path

import numpy as np
import pytest
from fake_store import FakeStore
from serving_models import publish

from tunepipe.errors import ServingError
from tunepipe.publishing.layout import MODEL_CARD
from tunepipe.serving.loader import ChampionFollower, LocalSource, StoreSource, Wanted, load_version
from tunepipe.serving.requests import decode_request
from tunepipe.serving.settings import Limits

pytestmark = pytest.mark.unit
ROW = {"instances": [{"bill_length_mm": 45.0, "island": "Dream"}]}


@pytest.fixture
def model_dir(tmp_path: Path) -> Path:
    """A model folder with version 1 published as the champion."""
    folder = tmp_path / "penguins"
    folder.mkdir()
    publish(folder, 1)
    return folder


def answer(follower: ChampionFollower) -> float:
    model = follower.current
    assert model is not None
    return float(model.predict(decode_request(ROW, model.contract, Limits()))["probabilities"][0, 0])


def test_follower_loads_the_champion_and_swaps_when_the_pointer_moves(tmp_path: Path) -> None:
    model_dir = tmp_path / "penguins"
    model_dir.mkdir()
    follower = ChampionFollower(LocalSource(model_dir), version=None, poll_seconds=0.1)
    assert follower.refresh() is False and follower.current is None  # no champion yet: not ready
    publish(model_dir, 1)
    assert follower.refresh() is True and follower.current.version == 1
    first = answer(follower)
    publish(model_dir, 2, shift=0.5)
    assert follower.refresh() is True and follower.current.version == 2
    assert answer(follower) != pytest.approx(first)
    assert follower.refresh() is False  # unchanged pointer: nothing reloaded


def test_pinned_version_ignores_the_champion(model_dir: Path) -> None:
    publish(model_dir, 2, shift=0.5)
    follower = ChampionFollower(LocalSource(model_dir), version=1, poll_seconds=0.1)
    follower.refresh()
    assert follower.current.version == 1


def test_a_version_whose_files_do_not_verify_is_not_served_and_the_old_one_stays(model_dir: Path) -> None:
    follower = ChampionFollower(LocalSource(model_dir), version=None, poll_seconds=0.1)
    follower.refresh()
    broken = publish(model_dir, 2, shift=0.5)
    (broken / "saved_model.pb").write_bytes(b"tampered")
    with pytest.raises(ServingError, match=r"2/saved_model.pb: SHA-256 differs"):
        follower.refresh()
    assert follower.current.version == 1


def test_a_card_that_does_not_match_the_pointer_is_refused(model_dir: Path) -> None:
    with pytest.raises(ServingError, match="differs from the champion pointer"):
        load_version(LocalSource(model_dir), Wanted(1, "0" * 64))


def test_older_layout_is_served(tmp_path: Path) -> None:
    """saved_model/ inside the version and the card at its root, as versions published before."""
    model_dir = tmp_path / "penguins"
    model_dir.mkdir()
    folder = publish(model_dir, 1, champion=False)
    old = tmp_path / "old"
    (old / "saved_model").mkdir(parents=True)
    for item in folder.iterdir():
        if item.name != "assets.extra":
            item.rename(old / "saved_model" / item.name)
    card = json.loads((folder / MODEL_CARD).read_text())
    card["files"] = {f"saved_model/{name}": entry for name, entry in card["files"].items()}
    (old / "model_card.json").write_text(json.dumps(card))
    (tmp_path / "old").rename(tmp_path / "7")
    model = load_version(LocalSource(tmp_path), Wanted(7, None))
    assert model.version == 7 and "bill_length_mm" in model.contract.inputs


def test_store_versions_are_downloaded_verified_and_reused(tmp_path: Path) -> None:
    local = tmp_path / "export" / "penguins"
    local.mkdir(parents=True)
    publish(local, 1)
    store = FakeStore()
    for path in local.rglob("*"):
        if path.is_file() and not path.name.startswith("."):
            store.objects[f"models/penguins/{path.relative_to(local).as_posix()}"] = (path.read_bytes(), 1)
    source = StoreSource("gs://bucket/models/penguins", tmp_path / "cache", store=store)
    follower = ChampionFollower(source, version=None, poll_seconds=0.1)
    follower.refresh()
    assert follower.current.folder == tmp_path / "cache" / "1"
    downloads = [key for operation, key in store.calls if operation == "download_file"]
    assert downloads and all(key.startswith("models/penguins/1/") for key in downloads)
    in_place = ChampionFollower(LocalSource(local), None, 0.1)
    in_place.refresh()
    assert answer(follower) == pytest.approx(answer(in_place), abs=1e-7)
    store.calls.clear()
    load_version(source, Wanted(1, None))  # the cached copy verifies: nothing downloaded again
    assert not [key for operation, key in store.calls if operation == "download_file"]
    key = "models/penguins/1/saved_model.pb"
    store.objects[key] = (b"corrupt", 2)
    (tmp_path / "cache" / "1" / "saved_model.pb").write_bytes(b"corrupt")
    with pytest.raises(ServingError, match="SHA-256 differs"):
        load_version(source, Wanted(1, None))
    assert not [p for p in (tmp_path / "cache").iterdir() if p.name.startswith(".partial-")]


def test_requests_never_fail_while_the_follower_swaps(model_dir: Path) -> None:
    follower = ChampionFollower(LocalSource(model_dir), version=None, poll_seconds=0.05)
    follower.refresh()
    errors: list[BaseException] = []
    seen: set[int] = set()
    done = threading.Event()

    def client() -> None:
        while not done.is_set():
            try:
                model = follower.current
                model.predict(decode_request(ROW, model.contract, Limits()))
                seen.add(model.version)
            except BaseException as error:  # every failure is the test's finding
                errors.append(error)

    thread = threading.Thread(target=client)
    thread.start()
    follower.start()
    publish(model_dir, 2, shift=0.5)
    for _ in range(200):
        if follower.current.version == 2:
            break
        done.wait(0.05)
    done.set()
    thread.join()
    follower.stop()
    assert errors == [] and follower.current.version == 2 and 1 in seen
    assert np.isfinite(answer(follower))
