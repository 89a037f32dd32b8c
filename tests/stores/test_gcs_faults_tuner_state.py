"""The tuner-state mirror (StoreSync) to and from gs:// through a proxy that injects faults: GCS-specific.

The faults are made at the HTTP level by a proxy in front of the GCS emulator (fault_proxy.py);
S3's go through botocore's hook (test_s3_faults.py). The mirror's round trip on every store is in
test_store_tuner_state.py.
"""

from __future__ import annotations

import pytest
from store_places import FAST_ATTEMPTS, TUNER_STATE, files_under, tuner_folder

from tunepipe.errors import ObjectStoreError
from tunepipe.storage.gcs import GcsObjectStore
from tunepipe.storage.tuner_state import StoreSync

pytestmark = pytest.mark.gcs

PREFIX = "tuning/m/key"
UPLOAD = r"^/upload/storage/v1/b/[^/]+/o\?"
DOWNLOAD = f"^/download/storage/v1/b/[^/]+/o/{PREFIX}/"
CHECKPOINT = "hyperband/trial_1/checkpoint.weights.h5"
def _remote(client, bucket: str) -> dict[str, bytes]:
    return {blob.name.removeprefix(f"{PREFIX}/"): blob.download_as_bytes()
            for blob in client.list_blobs(bucket, prefix=f"{PREFIX}/")}


@pytest.fixture
def sync(proxied_client, gcs_bucket, fast_retry) -> StoreSync:
    return StoreSync(f"gs://{gcs_bucket}/{PREFIX}", store=GcsObjectStore(gcs_bucket, proxied_client, fast_retry))


@pytest.mark.parametrize(("kind", "status"), [("status", 503), ("status", 429), ("reset", 0), ("lost_response", 0)])
def test_upload_faults_below_the_bound_are_survived(sync, gcs_client, gcs_bucket, fault_proxy, tmp_path, kind,
                                                     status) -> None:
    local = tuner_folder(tmp_path / "pod")
    fault = fault_proxy.fail("POST", UPLOAD, kind, times=FAST_ATTEMPTS - 1, status=status, body="checkpoint")
    assert sync.upload_changed(local) == 3
    assert fault.hits == FAST_ATTEMPTS - 1
    assert _remote(gcs_client, gcs_bucket) == TUNER_STATE  # exactly what a fault-free mirror holds, nothing twice


@pytest.mark.parametrize(("kind", "status"), [("status", 503), ("reset", 0), ("truncate", 0)])
def test_download_faults_below_the_bound_are_survived(sync, fault_proxy, tmp_path, kind, status) -> None:
    sync.upload_changed(tuner_folder(tmp_path / "pod1"))
    fault = fault_proxy.fail("GET", DOWNLOAD + "hyperband/trial_1/", kind, times=FAST_ATTEMPTS - 1, status=status)
    assert sync.download_all(tmp_path / "pod2") == 3
    assert fault.hits == FAST_ATTEMPTS - 1
    assert files_under(tmp_path / "pod2") == TUNER_STATE


def test_an_upload_failing_beyond_the_bound_gives_one_clear_error_and_no_partial_object(
    sync, gcs_client, gcs_bucket, fault_proxy, tmp_path
) -> None:
    local = tuner_folder(tmp_path / "pod")
    fault = fault_proxy.fail("POST", UPLOAD, "reset", times=99, body="checkpoint")  # cut off on the way, every time
    with pytest.raises(ObjectStoreError) as raised:
        sync.upload_changed(local)
    assert str(raised.value).startswith(f"upload of {local / CHECKPOINT} to gs://{gcs_bucket}/{PREFIX}/{CHECKPOINT} "
                                        f"failed after {FAST_ATTEMPTS} attempt(s)")
    assert "ConnectionResetError" in str(raised.value) or "Connection aborted" in str(raised.value)
    assert fault.hits == FAST_ATTEMPTS
    # The checkpoint is absent, not half there; the file uploaded before it is whole; the one after
    # it (files go in name order) was not sent.
    assert _remote(gcs_client, gcs_bucket) == {"hyperband/oracle.json": TUNER_STATE["hyperband/oracle.json"]}

    fault_proxy.reset()
    assert sync.upload_changed(local) == 2  # the re-run sends only what is missing
    assert sync.upload_changed(local) == 0
    assert _remote(gcs_client, gcs_bucket) == TUNER_STATE
    assert fault_proxy.count("POST", UPLOAD) == 2


def test_a_download_failing_beyond_the_bound_leaves_no_partial_file(sync, fault_proxy, gcs_bucket,
                                                                    tmp_path) -> None:
    sync.upload_changed(tuner_folder(tmp_path / "pod1"))
    fault = fault_proxy.fail("GET", DOWNLOAD + "hyperband/oracle.json", "truncate", times=99)
    pod = tmp_path / "pod2"
    with pytest.raises(ObjectStoreError, match=rf"^download of gs://{gcs_bucket}/{PREFIX}/hyperband/oracle\.json "
                                               rf"failed after {FAST_ATTEMPTS} attempt\(s\)"):
        sync.download_all(pod)
    assert fault.hits == FAST_ATTEMPTS
    assert "hyperband/oracle.json" not in files_under(pod) and not list(pod.rglob(".tmp-*"))

    fault_proxy.reset()
    assert sync.download_all(pod) == 3  # the re-run gives the same folder as a fault-free one
    assert files_under(pod) == TUNER_STATE


def test_listing_faults_are_bounded_too(sync, fault_proxy, gcs_bucket, tmp_path) -> None:
    sync.upload_changed(tuner_folder(tmp_path / "pod1"))
    fault = fault_proxy.fail("GET", r"^/storage/v1/b/[^/]+/o\?", "status", times=99, status=500)
    with pytest.raises(ObjectStoreError, match=rf"^listing of gs://{gcs_bucket}/{PREFIX}/ failed after "
                                               rf"{FAST_ATTEMPTS} attempt\(s\).*InternalServerError"):
        sync.download_all(tmp_path / "pod2")
    assert fault.hits == FAST_ATTEMPTS
