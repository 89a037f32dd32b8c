"""Publishing a model version to gs:// through a proxy that injects faults.

gcp-storage-emulator ignores ``if_generation_match``; the claim and pointer races are tested
against FakeStore in tests/unit/test_publish.py. Here every request of the protocol (upload,
metadata, claim, copy, pointer read and write, cleanup) goes through the real client library
and the fault proxy.
"""

from __future__ import annotations

import json

import pytest
from conftest import FAST_ATTEMPTS
from test_gcs_publish import render, staged

from tunepipe import artifacts
from tunepipe.errors import ExportError
from tunepipe.publishing import layout
from tunepipe.publishing.publish import publish_to_store
from tunepipe.storage.gcs import GcsObjectStore
from tunepipe.storage.hashing import sha256_bytes

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
def store(proxied_client, bucket_name, fast_retry) -> GcsObjectStore:
    return GcsObjectStore(bucket_name, proxied_client, fast_retry)


@pytest.fixture
def reference(store, client, bucket_name, tmp_path) -> dict[str, bytes]:
    """Fault-free publishes of the same files, under ref/m: version 1 ("a"), then version 2 ("b")."""
    assert publish_to_store(store, "ref/m", staged(tmp_path / "ref", "a"), render) == 1
    assert publish_to_store(store, "ref/m", staged(tmp_path / "ref", "b"), render) == 2
    return _published(client, bucket_name, "ref/m")


@pytest.mark.parametrize(("kind", "status"), [
    ("status", 503), ("status", 429), ("reset", 0), ("lost_response", 0), ("truncate", 0),
])
def test_publish_survives_faults_below_the_bound_with_the_fault_free_result(
    store, client, bucket_name, fault_proxy, reference, tmp_path, kind, status
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
    published = _published(client, bucket_name, PREFIX)
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
    store, client, bucket_name, fault_proxy, reference, tmp_path, step, method, path, body, kind, status, message
) -> None:
    fault_proxy.reset()
    fault = fault_proxy.fail(method, path, kind, times=99, status=status, body=body)
    with pytest.raises(ExportError, match=message.format(bucket=bucket_name)):
        publish_to_store(store, PREFIX, staged(tmp_path / "failed", "a"), render)
    assert fault.hits == FAST_ATTEMPTS  # bounded: exactly the policy's attempts reached the proxy
    after_failure = _published(client, bucket_name, PREFIX)
    assert _assert_absent_or_complete(after_failure) == ([1] if step == "pointer" else [])  # absent or complete
    assert artifacts.CHAMPION_FILE not in after_failure

    fault_proxy.reset()
    version = publish_to_store(store, PREFIX, staged(tmp_path / "rerun", "a"), render)
    assert version == (2 if step == "copy" else 1)
    final = _published(client, bucket_name, PREFIX)
    assert _assert_absent_or_complete(final) == [version]  # one version, no duplicate
    assert json.loads(final[artifacts.CHAMPION_FILE])["version"] == version
    assert _model_files(final, version) == _model_files(reference, 1)
    assert publish_to_store(store, PREFIX, staged(tmp_path / "again", "a"), render) == version  # a no-op now
    assert _published(client, bucket_name, PREFIX).keys() == final.keys()


def test_reference_layout_is_checked_by_the_same_helper(reference) -> None:
    """The consistency check accepts a fault-free publish (so it can tell good from bad)."""
    assert _assert_absent_or_complete(reference) == [1, 2]
    broken = {name: data for name, data in reference.items() if not name.endswith(artifacts.MODEL_FILE)}
    with pytest.raises(AssertionError):
        _assert_absent_or_complete(broken)
