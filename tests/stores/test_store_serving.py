"""The model server's follower on every store: versions found through the export root (downloaded from
an object store into the cache, read in place from a local folder), verified, swapped when the
champion moves."""

from __future__ import annotations

from pathlib import Path

from serving_models import publish
from store_places import Place

from tunepipe.serving.loader import ChampionFollower, source_for
from tunepipe.serving.requests import decode_request
from tunepipe.serving.settings import Limits


def published(place: Place, tmp_path: Path, version: int, shift: float = 0.0) -> None:
    """Publishes ``version`` into the place: in the folder itself, or staged locally and uploaded with the
    pointer last, as the publisher orders them."""
    if not place.remote:
        publish(Path(place.uri("models")) / "penguins", version, shift=shift)
        return
    local = tmp_path / "export" / "penguins"
    local.mkdir(parents=True, exist_ok=True)
    publish(local, version, shift=shift)
    files = [path for path in sorted(local.rglob("*")) if path.is_file() and not path.name.startswith(".")]
    for path in sorted(files, key=lambda path: path.name == "CHAMPION"):
        place.put(f"models/penguins/{path.relative_to(local).as_posix()}", path.read_bytes())


def test_follower_serves_the_champion_and_follows_it(place: Place, tmp_path) -> None:
    published(place, tmp_path, 1)
    cache = tmp_path / "cache"
    follower = ChampionFollower(source_for(place.uri("models"), "penguins", cache), version=None, poll_seconds=0.1)
    assert follower.refresh() and follower.current.version == 1
    if place.remote:
        assert (cache / "penguins" / "1" / "saved_model.pb").is_file()
    published(place, tmp_path, 2, shift=0.5)
    assert follower.refresh() and follower.current.version == 2
    if place.remote:
        assert not (cache / "penguins" / "1").exists()  # the replaced version's download is removed
    model = follower.current
    row = {"instances": [{"bill length (mm)": 44.0, "island": "Biscoe"}]}
    assert model.predict(decode_request(row, model.contract, Limits()))["probabilities"].shape == (1, 3)
