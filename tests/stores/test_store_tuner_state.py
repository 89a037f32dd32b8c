"""The tuner-state mirror (StoreSync) to and from every object store, built as the tune step builds it."""

from __future__ import annotations

import os

from store_places import TUNER_STATE, Place, files_under, tuner_folder

from tunepipe.storage.tuner_state import StoreSync, state_sync_for

PREFIX = "tuning/m/key"


def test_push_and_pull_round_trip(remote: Place, tmp_path) -> None:
    """state_sync_for builds the mirror and its client from the environment, as the tune step does."""
    sync = state_sync_for(remote.uri(PREFIX))
    assert isinstance(sync, StoreSync)
    local = tuner_folder(tmp_path / "pod1")
    assert sync.upload_changed(local) == 3
    assert sync.upload_changed(local) == 0  # nothing changed since
    assert [name.removeprefix(f"{PREFIX}/") for name in remote.names(f"{PREFIX}/")] == sorted(TUNER_STATE)
    (local / "hyperband" / "oracle.json").write_bytes(b'{"ongoing_trials": {"2": 1}}')
    os.utime(local / "hyperband" / "oracle.json", ns=(1, 1))
    assert sync.upload_changed(local) == 1

    fresh = state_sync_for(remote.uri(PREFIX))
    assert fresh is not None and fresh.download_all(tmp_path / "pod2") == 3
    assert files_under(tmp_path / "pod2") == files_under(local)
    assert not list((tmp_path / "pod2").rglob(".tmp-*"))
