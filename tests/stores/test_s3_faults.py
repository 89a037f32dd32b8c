"""The s3:// store under faults S3 answers only on its own terms: GCS's are in test_gcs_faults_*.py.

Errors are injected through botocore's own ``before-send`` hook (:class:`Faults`), so the real client
parses each one exactly as it would an answer from AWS: throttling and 5xx retried below the bound
and reported past it, refusals never retried, botocore's error classes sorted, a store that kept other
bytes than were sent caught by the checksum read back, a publish failing after its claim, and a
tuner-state upload failing midway. What every store guarantees is in test_store_*.py.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from store_places import TUNER_STATE, files_under, no_wait, render, staged

from tunepipe.errors import ExportError, ObjectStoreError
from tunepipe.publishing import layout
from tunepipe.publishing.publish import publish_to_store, read_store_champion
from tunepipe.storage.objectstore import RetryPolicy
from tunepipe.storage.s3 import S3ObjectStore, classify_s3
from tunepipe.storage.tuner_state import StoreSync

pytestmark = pytest.mark.s3


class Faults:
    """Answers chosen S3 operations with an error before they reach the server, through botocore's
    own ``before-send`` hook, so the real client parses the error as it would from AWS.

    ``fail("PutObject", 503, "SlowDown", times=2, key="model.keras")`` answers the next two
    PutObjects whose URL contains ``model.keras`` with a 503 ``SlowDown``.
    """

    def __init__(self, client: Any) -> None:
        self.client = client
        self.rules: list[dict[str, Any]] = []
        client.meta.events.register("before-send.s3", self._answer)

    def fail(self, operation: str, status: int, code: str, times: int = 1, key: str = "") -> dict[str, Any]:
        rule = {"operation": operation, "status": status, "code": code, "times": times, "key": key, "hits": 0}
        self.rules.append(rule)
        return rule

    def _answer(self, request: Any, **kwargs: Any) -> Any:
        from botocore.awsrequest import AWSResponse

        operation = kwargs.get("event_name", "").rsplit(".", 1)[-1]
        for rule in self.rules:
            if rule["operation"] == operation and rule["key"] in request.url and rule["hits"] < rule["times"]:
                rule["hits"] += 1
                if rule["status"] == 0:
                    from botocore.exceptions import EndpointConnectionError

                    raise EndpointConnectionError(endpoint_url=request.url)
                body = (f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{rule['code']}</Code>"
                        f"<Message>injected</Message></Error>").encode()
                return AWSResponse(request.url, rule["status"], {"Content-Type": "application/xml"}, _Raw(body))
        return None


class _Raw:
    def __init__(self, body: bytes) -> None:
        self.body = body

    def stream(self, **kwargs: Any) -> Iterator[bytes]:
        yield self.body


@pytest.fixture
def faults(s3_client) -> Faults:
    return Faults(s3_client)


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError"), (429, "TooManyRequests"),
                                              (0, "connection")])
def test_transient_errors_below_the_bound_are_retried(s3_bucket, s3_client, faults, fast_retry, tmp_path,
                                                      status, code) -> None:
    store = S3ObjectStore(s3_bucket, s3_client, fast_retry)
    source = tmp_path / "f.bin"
    source.write_bytes(b"x" * 1000)
    rule = faults.fail("PutObject", status, code, times=fast_retry.attempts - 1)
    store.upload_file("k/f.bin", source)
    assert rule["hits"] == fast_retry.attempts - 1
    assert store.read("k/f.bin")[0] == source.read_bytes()


def test_transient_errors_past_the_bound_name_the_operation_and_uri(s3_bucket, s3_client, faults,
                                                                    fast_retry) -> None:
    store = S3ObjectStore(s3_bucket, s3_client, fast_retry)
    faults.fail("ListObjectsV2", 503, "SlowDown", times=fast_retry.attempts)
    with pytest.raises(ObjectStoreError, match=rf"listing of s3://{s3_bucket}/p failed after 4 attempt\(s\)"):
        store.list("p")


@pytest.mark.parametrize(("status", "code"), [(403, "AccessDenied"), (400, "InvalidRequest")])
def test_refusals_are_not_retried(s3_bucket, s3_client, faults, status, code, tmp_path) -> None:
    waits: list[float] = []
    store = S3ObjectStore(s3_bucket, s3_client, RetryPolicy(sleep=waits.append))
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    rule = faults.fail("PutObject", status, code, times=5)
    with pytest.raises(ObjectStoreError, match=rf"upload of .* to s3://{s3_bucket}/k/f.bin was refused.*{code}"):
        store.upload_file("k/f.bin", source)
    assert rule["hits"] == 1 and waits == []


def test_error_classes() -> None:
    from botocore.exceptions import ClientError, NoCredentialsError, ReadTimeoutError

    def answer(status: int, code: str) -> ClientError:
        return ClientError({"Error": {"Code": code}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")

    assert classify_s3(answer(503, "SlowDown")) == "transient"
    assert classify_s3(answer(400, "RequestTimeout")) == "transient"
    assert classify_s3(answer(403, "AccessDenied")) == "refused"
    assert classify_s3(answer(412, "PreconditionFailed")) == "expected"
    assert classify_s3(answer(409, "ConditionalRequestConflict")) == "expected"
    assert classify_s3(answer(404, "NoSuchKey")) == "expected"
    assert classify_s3(ReadTimeoutError(endpoint_url="http://x")) == "transient"
    assert classify_s3(NoCredentialsError()) == "refused"
    assert classify_s3(ValueError("not botocore")) is None


def test_upload_checks_the_stored_checksum(s3_bucket, s3_client, tmp_path, monkeypatch) -> None:
    """A store that kept other bytes than were sent is caught by the read-back."""
    store = S3ObjectStore(s3_bucket, s3_client)
    source = tmp_path / "f.bin"
    source.write_bytes(b"payload")
    real_head = s3_client.head_object

    def lying_head(**kwargs):
        return {**real_head(**kwargs), "ChecksumSHA256": "AAAA"}

    monkeypatch.setattr(s3_client, "head_object", lying_head)
    with pytest.raises(ObjectStoreError, match=f"checksum mismatch for s3://{s3_bucket}/k"):
        store.upload_file("k", source)


def test_a_failure_midway_publishes_nothing_and_the_version_is_never_reused(s3_client, s3_bucket, faults,
                                                                           tmp_path) -> None:
    store = S3ObjectStore(s3_bucket, s3_client, no_wait())
    publish_to_store(store, "m", staged(tmp_path, "a"), render)
    pointer_before = store.read("m/CHAMPION")
    faults.fail("CopyObject", 403, "AccessDenied", times=1, key=layout.MODEL_CARD)  # after the claim
    with pytest.raises(ExportError, match=r"nothing was published and the champion pointer is unchanged"):
        publish_to_store(store, "m", staged(tmp_path, "b"), render)
    assert store.list("m/2/") == []  # no partial version visible
    assert not [name for name in store.list("m/") if "/.tmp-" in name]
    assert store.read("m/CHAMPION") == pointer_before
    assert publish_to_store(store, "m", staged(tmp_path, "c"), render) == 3  # 2 was claimed: never reused
    assert read_store_champion(store, "m")[0].version == 3


TUNER_PREFIX = "tuning/m/key"


def test_after_a_failed_tuner_state_upload_only_what_is_missing_is_sent(s3_client, s3_bucket, faults, fast_retry,
                                                                        tmp_path) -> None:
    from test_store_tuner_state import tuner_folder

    local = tuner_folder(tmp_path / "pod")
    sync = StoreSync(f"s3://{s3_bucket}/{TUNER_PREFIX}", store=S3ObjectStore(s3_bucket, s3_client, fast_retry))
    faults.fail("PutObject", 503, "SlowDown", times=fast_retry.attempts, key="checkpoint")
    with pytest.raises(ObjectStoreError, match=rf"s3://{s3_bucket}/{TUNER_PREFIX}/hyperband/trial_1/checkpoint"):
        sync.upload_changed(local)
    faults.rules.clear()
    uploaded = []
    s3_client.meta.events.register("before-send.s3.PutObject", lambda request, **kw: uploaded.append(request.url))
    assert sync.upload_changed(local) == 2  # the checkpoint and the trial after it, not oracle.json again
    assert sorted(url.rsplit("/", 1)[1] for url in uploaded) == ["checkpoint.weights.h5", "trial.json"]
    assert StoreSync(f"s3://{s3_bucket}/{TUNER_PREFIX}").download_all(tmp_path / "pod2") == 3
    assert files_under(tmp_path / "pod2") == TUNER_STATE
