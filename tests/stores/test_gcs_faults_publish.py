"""Publishing a model version to gs:// with faults injected: GCS-specific.

The faults are made where only GCS can have them: at the HTTP level, by a proxy in front of the
GCS emulator that speaks its JSON API (fault_proxy.py: every request of the protocol, upload,
metadata, claim, copy, pointer read and write, cleanup, goes through the real client library and
the proxy), and in ``google-cloud-storage`` itself (its upload raising 503, 429 or a reset). S3's
faults go through botocore's own hook (test_s3_faults.py); what publishing guarantees on every
store, claims and pointer races included, is in test_store_publish.py.
"""

from __future__ import annotations

import json

import pytest
from google.api_core import exceptions as gexc
from google.cloud.storage.blob import Blob
from store_places import FAST_ATTEMPTS, no_wait, render, staged

from tunepipe import artifacts
from tunepipe.errors import ExportError
from tunepipe.publishing import layout
from tunepipe.publishing.publish import publish_to_store
from tunepipe.storage.gcs import GcsObjectStore
from tunepipe.storage.hashing import sha256_bytes
from tunepipe.storage.objectstore import RetryPolicy

pytestmark = pytest.mark.gcs

UPLOAD = r"^/upload/storage/v1/b/[^/]+/o\?"
LISTING = r"^/storage/v1/b/[^/]+/o\?"
PREFIX = "faulty/m"


def _published(client, bucket: str, prefix: str) -> dict[str, bytes]:
    """Every object under ``prefix/`` but the claims, by name relative to ``prefix``."""
    return {blob.name.removeprefix(f"{prefix}/"): blob.download_as_bytes()
            for blob in client.list_blobs(bucket, prefix=f"{prefix}/") if "/.claims/" not in blob.name}


def _assert_absent_or_complete(objects: dict[str, bytes]) -> list[int]:
    """No temporary object; every version folder complete (its card lists exactly its other files);
    the pointer absent or naming a complete version by its card's checksum. Returns the versions."""
    assert not [name for name in objects if name.startswith(".tmp-")]
    versions = sorted({int(name.split("/")[0]) for name in objects if name.split("/")[0].isdigit()})
    for version in versions:
        card = json.loads(objects[f"{version}/{layout.MODEL_CARD}"])
        files = {name.split("/", 1)[1] for name in objects if name.startswith(f"{version}/")}
        assert files == {*card["files"], layout.MODEL_CARD, layout.MODEL_CARD_MD}
        for name, entry in card["files"].items():
            assert sha256_bytes(objects[f"{version}/{name}"]) == entry["sha256"]
    if artifacts.CHAMPION_FILE in objects:
        pointer = json.loads(objects[artifacts.CHAMPION_FILE])
        assert pointer["version"] in versions
        card = objects[f"{pointer['version']}/{layout.MODEL_CARD}"]
        assert pointer["model_card_sha256"] == sha256_bytes(card)
    return versions


def _model_files(objects: dict[str, bytes], version: int) -> dict[str, bytes]:
    """A version's files but the cards (which name the version number)."""
    cards = (layout.MODEL_CARD, layout.MODEL_CARD_MD)
    return {name.split("/", 1)[1]: data for name, data in objects.items()
            if name.startswith(f"{version}/") and not name.endswith(cards)}


@pytest.fixture
def store(proxied_client, gcs_bucket, fast_retry) -> GcsObjectStore:
    return GcsObjectStore(gcs_bucket, proxied_client, fast_retry)


@pytest.fixture
def reference(store, gcs_client, gcs_bucket, tmp_path) -> dict[str, bytes]:
    """Fault-free publishes of the same files, under ref/m: version 1 ("a"), then version 2 ("b")."""
    assert publish_to_store(store, "ref/m", staged(tmp_path / "ref", "a"), render) == 1
    assert publish_to_store(store, "ref/m", staged(tmp_path / "ref", "b"), render) == 2
    return _published(gcs_client, gcs_bucket, "ref/m")


@pytest.mark.parametrize(("kind", "status"), [
    ("status", 503), ("status", 429), ("reset", 0), ("lost_response", 0), ("truncate", 0),
])
def test_publish_survives_faults_below_the_bound_with_the_fault_free_result(
    store, gcs_client, gcs_bucket, fault_proxy, reference, tmp_path, kind, status
) -> None:
    below = FAST_ATTEMPTS - 1
    assert publish_to_store(store, PREFIX, staged(tmp_path / "faulty", "a"), render) == 1  # so a pointer exists
    fault_proxy.reset()
    faults = [
        fault_proxy.fail("POST", UPLOAD, kind, times=below, status=status, body=f"{PREFIX}/.tmp-.*model.keras"),
        fault_proxy.fail("POST", f"/copyTo/.*{PREFIX}/2/{layout.MODEL_CARD}", kind, times=below,
                         status=status),
        fault_proxy.fail("GET", f"/o/{PREFIX}/{artifacts.CHAMPION_FILE}", kind, times=below, status=status),
        fault_proxy.fail("GET", LISTING + f".*prefix={PREFIX}/.claims/", kind, times=below, status=status),
    ]
    assert publish_to_store(store, PREFIX, staged(tmp_path / "faulty", "b"), render) == 2
    assert [fault.hits for fault in faults] == [below] * len(faults)
    published = _published(gcs_client, gcs_bucket, PREFIX)
    assert published.keys() == reference.keys()
    pointer, expected = (json.loads(found[artifacts.CHAMPION_FILE]) for found in (published, reference))
    assert (pointer["version"], pointer["model_card_sha256"]) == (expected["version"], expected["model_card_sha256"])
    assert {name: data for name, data in published.items() if name != artifacts.CHAMPION_FILE} == {
        name: data for name, data in reference.items() if name != artifacts.CHAMPION_FILE}


# The version a re-run publishes: an upload fails before any number is claimed (1); a failed copy
# leaves number 1 claimed, so it is skipped (2); a failed pointer write leaves version 1
# complete, so it is reused (1).
@pytest.mark.parametrize(("step", "method", "path", "body", "kind", "status", "message"), [
    ("upload cut off", "POST", UPLOAD, f"{PREFIX}/.tmp-.*model.keras", "reset", 0,
     r"publishing to faulty/m failed, nothing was published and the champion pointer is unchanged: "
     r"upload of .*model\.keras to gs://{bucket}/faulty/m/\.tmp-\w+/assets\.extra/model\.keras failed after "
     r"4 attempt\(s\)"),
    ("copy", "POST", f"/copyTo/.*{PREFIX}/1/{layout.KERAS_MODEL}", None, "status", 503,
     r"publishing to faulty/m failed, nothing was published and the champion pointer is unchanged: "
     r"copy of gs://{bucket}/faulty/m/\.tmp-\w+/assets\.extra/model\.keras to "
     r"gs://{bucket}/faulty/m/1/assets\.extra/model\.keras failed after "
     r"4 attempt\(s\) .*ServiceUnavailable"),
    ("pointer", "POST", UPLOAD, f"{PREFIX}/{artifacts.CHAMPION_FILE}", "status", 429,
     r"faulty/m/1 is published and complete, but the champion pointer could not be moved to it \(conditional "
     r"write of gs://{bucket}/faulty/m/CHAMPION failed after 4 attempt\(s\) .*TooManyRequests"),
])
def test_publish_faults_beyond_the_bound_leave_nothing_partial_and_a_rerun_is_idempotent(
    store, gcs_client, gcs_bucket, fault_proxy, reference, tmp_path, step, method, path, body, kind, status, message
) -> None:
    fault_proxy.reset()
    fault = fault_proxy.fail(method, path, kind, times=99, status=status, body=body)
    with pytest.raises(ExportError, match=message.format(bucket=gcs_bucket)):
        publish_to_store(store, PREFIX, staged(tmp_path / "failed", "a"), render)
    assert fault.hits == FAST_ATTEMPTS  # bounded: exactly the policy's attempts reached the proxy
    after_failure = _published(gcs_client, gcs_bucket, PREFIX)
    assert _assert_absent_or_complete(after_failure) == ([1] if step == "pointer" else [])  # absent or complete
    assert artifacts.CHAMPION_FILE not in after_failure

    fault_proxy.reset()
    version = publish_to_store(store, PREFIX, staged(tmp_path / "rerun", "a"), render)
    assert version == (2 if step == "copy" else 1)
    final = _published(gcs_client, gcs_bucket, PREFIX)
    assert _assert_absent_or_complete(final) == [version]  # one version, no duplicate
    assert json.loads(final[artifacts.CHAMPION_FILE])["version"] == version
    assert _model_files(final, version) == _model_files(reference, 1)
    assert publish_to_store(store, PREFIX, staged(tmp_path / "again", "a"), render) == version  # a no-op now
    assert _published(gcs_client, gcs_bucket, PREFIX).keys() == final.keys()


def test_reference_layout_is_checked_by_the_same_helper(reference) -> None:
    """The consistency check accepts a fault-free publish (so it can tell good from bad)."""
    assert _assert_absent_or_complete(reference) == [1, 2]
    broken = {name: data for name, data in reference.items() if not name.endswith(artifacts.MODEL_FILE)}
    with pytest.raises(AssertionError):
        _assert_absent_or_complete(broken)


# ---- faults raised by the client library --------------------------------------------------------


@pytest.mark.parametrize(
    "error", [gexc.ServiceUnavailable("503"), gexc.TooManyRequests("429"), ConnectionResetError("reset by peer")],
)
def test_transient_upload_errors_are_retried(gcs_client, gcs_bucket, tmp_path, monkeypatch, error) -> None:
    real_upload = Blob.upload_from_filename
    failures = {"left": 2}
    waits: list[float] = []

    def flaky(self, *args, **kwargs):
        if failures["left"]:
            failures["left"] -= 1
            raise error
        return real_upload(self, *args, **kwargs)

    monkeypatch.setattr(Blob, "upload_from_filename", flaky)
    store = GcsObjectStore(gcs_bucket, gcs_client, RetryPolicy(jitter=0.0, sleep=waits.append))
    assert publish_to_store(store, "m", staged(tmp_path, "a"), render) == 1
    assert waits == [0.5, 1.0]
    assert store.read(f"m/1/{layout.KERAS_MODEL}")[0] == b"keras a"


def test_upload_failing_midway_publishes_nothing(gcs_client, gcs_bucket, tmp_path, monkeypatch) -> None:
    store = GcsObjectStore(gcs_bucket, gcs_client, no_wait())
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
