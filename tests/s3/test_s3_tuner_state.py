"""The tuner-state mirror (StoreSync) to and from s3:// against moto's S3 server."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tunepipe.errors import ObjectStoreError
from tunepipe.storage.s3 import S3ObjectStore
from tunepipe.storage.tuner_state import StoreSync, state_sync_for

pytestmark = pytest.mark.s3

PREFIX = "tuning/m/key"
STATE = {
    "hyperband/oracle.json": b'{"ongoing_trials": {}}',
    "hyperband/trial_1/trial.json": b'{"status": "COMPLETED", "score": 0.5}',
    "hyperband/trial_1/checkpoint.weights.h5": os.urandom(40_000),
}


def _tuner_folder(root: Path) -> Path:
    for name, data in STATE.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return root


def _files(root: Path) -> dict[str, bytes]:
    return {path.relative_to(root).as_posix(): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_push_and_pull_round_trip(s3_client, bucket_name, tmp_path) -> None:
    """state_sync_for builds the mirror and its client from the environment, as the tune step does."""
    sync = state_sync_for(f"s3://{bucket_name}/{PREFIX}")
    assert isinstance(sync, StoreSync)
    local = _tuner_folder(tmp_path / "pod1")
    assert sync.upload_changed(local) == 3
    assert sync.upload_changed(local) == 0  # nothing changed since
    listed = s3_client.list_objects_v2(Bucket=bucket_name, Prefix=f"{PREFIX}/")["Contents"]
    assert sorted(item["Key"].removeprefix(f"{PREFIX}/") for item in listed) == sorted(STATE)
    (local / "hyperband" / "oracle.json").write_bytes(b'{"ongoing_trials": {"2": 1}}')
    os.utime(local / "hyperband" / "oracle.json", ns=(1, 1))
    assert sync.upload_changed(local) == 1

    fresh = state_sync_for(f"s3://{bucket_name}/{PREFIX}")
    assert fresh is not None and fresh.download_all(tmp_path / "pod2") == 3
    assert _files(tmp_path / "pod2") == _files(local)
    assert not list((tmp_path / "pod2").rglob(".tmp-*"))


def test_after_a_failed_upload_only_what_is_missing_is_sent(s3_client, bucket_name, faults, fast_retry,
                                                             tmp_path) -> None:
    local = _tuner_folder(tmp_path / "pod")
    sync = StoreSync(f"s3://{bucket_name}/{PREFIX}", store=S3ObjectStore(bucket_name, s3_client, fast_retry))
    faults.fail("PutObject", 503, "SlowDown", times=fast_retry.attempts, key="checkpoint")
    with pytest.raises(ObjectStoreError, match=rf"s3://{bucket_name}/{PREFIX}/hyperband/trial_1/checkpoint"):
        sync.upload_changed(local)
    faults.rules.clear()
    uploaded = []
    s3_client.meta.events.register("before-send.s3.PutObject", lambda request, **kw: uploaded.append(request.url))
    assert sync.upload_changed(local) == 2  # the checkpoint and the trial after it, not oracle.json again
    assert sorted(url.rsplit("/", 1)[1] for url in uploaded) == ["checkpoint.weights.h5", "trial.json"]
    assert StoreSync(f"s3://{bucket_name}/{PREFIX}").download_all(tmp_path / "pod2") == 3
    assert _files(tmp_path / "pod2") == STATE
