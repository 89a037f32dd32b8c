"""Where the tuner state lives (stable keys) and how it is mirrored after every trial."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from fake_store import FakeStore

from tunepipe.config import Config, SearchSpace
from tunepipe.errors import ConfigError, ObjectStoreError
from tunepipe.storage.tuner_state import FolderSync, StoreSync, search_key, state_sync_for, tuner_directory

pytestmark = pytest.mark.unit
SPACE = SearchSpace().model_dump(exclude_none=True)
TUNING = Config().tuning.model_dump()


def test_search_key_is_stable_and_covers_space_budget_objective_and_seed() -> None:
    key = search_key(SPACE, TUNING, 42)
    assert key == search_key(dict(reversed(SPACE.items())), TUNING, 42)  # key order does not matter
    assert len(key) == 16
    assert search_key(SPACE, {**TUNING, "patience": 9, "placement": {"where": "node", "workers": 5}}, 42) == key
    changed = [
        search_key({**SPACE, "units": {"min": 8, "max": 8, "step": 1}}, TUNING, 42),
        search_key(SPACE, {**TUNING, "max_epochs": 27}, 42),
        search_key(SPACE, {**TUNING, "factor": 4}, 42),
        search_key(SPACE, {**TUNING, "hyperband_iterations": 2}, 42),
        search_key(SPACE, {**TUNING, "objective": "val_accuracy"}, 42),
        search_key(SPACE, TUNING, 7),
        search_key(SPACE, TUNING, 42, sample='{"train": {"kept": 100, "rows": 900}}'),
        search_key(SPACE, TUNING, 42, sample='{"train": {"kept": 200, "rows": 900}}'),
    ]
    assert key not in changed and len(set(changed)) == len(changed)


def test_tuner_directory_layout() -> None:
    fingerprint = "sha256:" + "ab" * 32
    assert tuner_directory("gs://bucket/tuning/", "penguins", fingerprint, "0123456789abcdef") == (
        "gs://bucket/tuning/penguins/" + "ab" * 8 + "-0123456789abcdef"
    )
    with pytest.raises(ConfigError, match="fingerprint"):
        tuner_directory("/x", "m", "", "k")


def test_state_sync_for_each_kind_of_root(tmp_path: Path) -> None:
    assert state_sync_for(str(tmp_path)) is None  # a local folder is used directly
    assert isinstance(state_sync_for("gs://bucket/prefix/m/x"), StoreSync)
    assert isinstance(state_sync_for("s3://bucket/prefix/m/x"), StoreSync)  # any object store is mirrored
    with pytest.raises(ConfigError, match="ftp://bucket"):
        state_sync_for("ftp://bucket/x")
    with pytest.raises(ConfigError, match="not a valid bucket name"):
        state_sync_for("s3://Bad_Bucket/x")


def test_folder_sync_uploads_only_what_changed_and_restores_a_fresh_copy(tmp_path: Path) -> None:
    local, remote = tmp_path / "local", tmp_path / "remote"
    (local / "hyperband" / "trial_0").mkdir(parents=True)
    (local / "hyperband" / "oracle.json").write_text("{}")
    (local / "hyperband" / "trial_0" / "trial.json").write_text('{"status": "COMPLETED"}')
    sync = FolderSync(str(remote))
    assert sync.download_all(local) == 0  # nothing there yet
    # download_all recorded what the local folder held: those files count as known
    (local / "hyperband" / "oracle.json").write_text('{"x": 1}')
    os.utime(local / "hyperband" / "oracle.json", ns=(1, 1))
    assert sync.upload_changed(local) == 1
    assert sync.upload_changed(local) == 0
    (local / "hyperband" / "trial_1").mkdir()
    (local / "hyperband" / "trial_1" / "trial.json").write_text('{"status": "RUNNING"}')
    assert sync.upload_changed(local) == 1
    assert not list(remote.rglob(".tmp-*")), "writes are atomic renames"

    fresh = tmp_path / "fresh_pod"
    assert FolderSync(str(remote)).download_all(fresh) == 2
    assert (fresh / "hyperband" / "trial_1" / "trial.json").read_text() == '{"status": "RUNNING"}'


def test_store_sync_object_names_and_round_trip(tmp_path: Path) -> None:
    store = FakeStore()
    local = tmp_path / "pod1"
    (local / "hyperband").mkdir(parents=True)
    (local / "hyperband" / "oracle.json").write_text("{}")
    sync = StoreSync("gs://bucket/tuning/m/key", store=store)
    assert sync.upload_changed(local) == 1
    assert set(store.objects) == {"tuning/m/key/hyperband/oracle.json"}
    assert sync.upload_changed(local) == 0
    assert StoreSync("gs://bucket/tuning/m/key", store=store).download_all(tmp_path / "pod2") == 1
    assert (tmp_path / "pod2" / "hyperband" / "oracle.json").read_text() == "{}"


def test_store_sync_after_a_failed_upload_sends_only_what_is_missing(tmp_path: Path) -> None:
    def down_for_trial_2(operation: str, key: str) -> None:
        if operation == "upload_file" and "trial_2" in key:
            raise ObjectStoreError(f"upload of gs://bucket/{key} failed after 6 attempt(s)")

    store = FakeStore(fail=down_for_trial_2)
    local = tmp_path / "pod"
    for trial in ("trial_1", "trial_2", "trial_3"):
        (local / trial).mkdir(parents=True)
        (local / trial / "trial.json").write_text(trial)
    sync = StoreSync("gs://bucket/t", store=store)
    with pytest.raises(ObjectStoreError, match="trial_2"):
        sync.upload_changed(local)
    assert set(store.objects) == {"t/trial_1/trial.json"}
    store.fail = lambda operation, key: None
    assert sync.upload_changed(local) == 2  # trial_2 and trial_3, not trial_1 again
    assert sync.upload_changed(local) == 0


def test_the_prepared_problem_is_part_of_the_search_key() -> None:
    """Another label, cleaning or encoding of the same file must never resume the old search."""
    from tunepipe.storage.tuner_state import search_key

    tuning = {"max_epochs": 3, "factor": 3, "hyperband_iterations": 1, "objective": "val_loss"}
    species, island = search_key({}, tuning, 0, "spec-a"), search_key({}, tuning, 0, "spec-b")
    assert species != island
    assert search_key({}, tuning, 0, "spec-a") == species  # and it is stable
