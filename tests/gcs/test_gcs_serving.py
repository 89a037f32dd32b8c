"""The model server's follower on gs://: versions downloaded from the emulator, verified, swapped."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_models import publish

from tunepipe.serving.loader import ChampionFollower, StoreSource
from tunepipe.serving.requests import decode_request
from tunepipe.serving.settings import Limits
from tunepipe.storage.gcs import GcsObjectStore

pytestmark = pytest.mark.gcs


def upload(store: GcsObjectStore, local: Path, prefix: str) -> None:
    """The version folders, then the pointer last, as the publisher orders them."""
    files = [p for p in sorted(local.rglob("*")) if p.is_file() and not p.name.startswith(".")]
    for path in sorted(files, key=lambda p: p.name == "CHAMPION"):
        store.upload_file(f"{prefix}/{path.relative_to(local).as_posix()}", path)


def test_follower_serves_the_gs_champion_and_follows_it(client, bucket_name, tmp_path) -> None:
    local = tmp_path / "export" / "penguins"
    local.mkdir(parents=True)
    store = GcsObjectStore(bucket_name, client)
    publish(local, 1)
    upload(store, local, "models/penguins")
    cache = tmp_path / "cache"
    source = StoreSource(f"gs://{bucket_name}/models/penguins", cache, store=store)
    follower = ChampionFollower(source, version=None, poll_seconds=0.1)
    assert follower.refresh() and follower.current.version == 1
    assert (cache / "1" / "saved_model.pb").is_file()
    publish(local, 2, shift=0.5)
    upload(store, local, "models/penguins")
    assert follower.refresh() and follower.current.version == 2
    assert not (cache / "1").exists()  # the replaced version's download is removed
    model = follower.current
    row = {"instances": [{"bill length (mm)": 44.0, "island": "Biscoe"}]}
    assert model.predict(decode_request(row, model.contract, Limits()))["probabilities"].shape == (1, 3)
