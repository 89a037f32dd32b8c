"""The s3:// object store against a real S3 API server (moto, on loopback), through boto3.

Every operation of the ObjectStore protocol, the conditional writes that the publish protocol
relies on (moto enforces If-None-Match and If-Match on PutObject: tested here directly), and the
one retry policy: S3 errors are injected through botocore's ``before-send`` hook, so the real
client parses them exactly as it would an answer from AWS.
"""

from __future__ import annotations

import base64
import hashlib

import pytest

from tunepipe.errors import ObjectStoreError
from tunepipe.storage.objectstore import ObjectMissing, PreconditionFailed, RetryPolicy
from tunepipe.storage.s3 import S3ObjectStore, classify_s3
from tunepipe.storage.stores import store_for

pytestmark = pytest.mark.s3


def test_object_operations_and_checksums(s3_client, bucket_name, tmp_path) -> None:
    store = store_for(f"s3://{bucket_name}/a")  # the default client: the AWS chain in the environment
    assert isinstance(store, S3ObjectStore)
    source = tmp_path / "file.bin"
    source.write_bytes(bytes(range(256)) * 4000)
    store.upload_file("a/file.bin", source)
    head = s3_client.head_object(Bucket=bucket_name, Key="a/file.bin", ChecksumMode="ENABLED")
    assert head["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(source.read_bytes()).digest()).decode()
    data, token = store.read("a/file.bin")
    assert data == source.read_bytes() and token == head["ETag"]
    assert store.read("a/absent") is None
    store.copy("a/file.bin", "b/copy.bin")
    assert store.list("") == ["a/file.bin", "b/copy.bin"]
    assert [info.size for info in store.list_objects("b/")] == [len(data)]
    store.download_file("b/copy.bin", tmp_path / "down" / "copy.bin")
    assert (tmp_path / "down" / "copy.bin").read_bytes() == data
    assert not list((tmp_path / "down").glob(".tmp-*"))
    store.delete("b/copy.bin")
    store.delete("b/copy.bin")  # already gone: fine
    assert store.list("b/") == []


def test_conditional_writes_are_enforced_by_the_server(bucket_name, s3_client) -> None:
    store = S3ObjectStore(bucket_name, s3_client)
    first = store.write_if_generation("m/CHAMPION", b"one", None)  # create only if absent
    with pytest.raises(PreconditionFailed):
        store.write_if_generation("m/CHAMPION", b"again", None)
    with pytest.raises(PreconditionFailed):
        store.write_if_generation("m/CHAMPION", b"again", 0)  # 0 means "must not exist" too
    second = store.write_if_generation("m/CHAMPION", b"two", first)  # replace only if unchanged
    assert store.read("m/CHAMPION") == (b"two", second)
    with pytest.raises(PreconditionFailed):
        store.write_if_generation("m/CHAMPION", b"stale", first)
    store.delete("m/CHAMPION")
    with pytest.raises(PreconditionFailed):  # replaced-if-unchanged, but it is gone
        store.write_if_generation("m/CHAMPION", b"stale", second)
    assert store.read("m/CHAMPION") is None


def test_download_at_a_listed_version_refuses_a_replaced_object(bucket_name, s3_client, tmp_path) -> None:
    store = S3ObjectStore(bucket_name, s3_client)
    s3_client.put_object(Bucket=bucket_name, Key="d/x.csv", Body=b"a,b\n1,2\n")
    (listed,) = store.list_objects("d/")
    store.download_file("d/x.csv", tmp_path / "x.csv", listed.version)
    s3_client.put_object(Bucket=bucket_name, Key="d/x.csv", Body=b"a,b\n3,4\n")
    with pytest.raises(ObjectMissing, match=f"s3://{bucket_name}/d/x.csv"):
        store.download_file("d/x.csv", tmp_path / "y.csv", listed.version)
    assert not (tmp_path / "y.csv").exists() and not list(tmp_path.glob(".tmp-*"))
    with pytest.raises(ObjectMissing):
        store.download_file("d/absent.csv", tmp_path / "z.csv")


def test_a_missing_bucket_is_reported_as_missing(s3_client) -> None:
    store = S3ObjectStore("tp-no-such-bucket", s3_client)
    with pytest.raises(ObjectMissing, match="s3://tp-no-such-bucket/x"):
        store.list_objects("x")


@pytest.mark.parametrize(("status", "code"), [(503, "SlowDown"), (500, "InternalError"), (429, "TooManyRequests"),
                                              (0, "connection")])
def test_transient_errors_below_the_bound_are_retried(bucket_name, s3_client, faults, fast_retry, tmp_path,
                                                      status, code) -> None:
    store = S3ObjectStore(bucket_name, s3_client, fast_retry)
    source = tmp_path / "f.bin"
    source.write_bytes(b"x" * 1000)
    rule = faults.fail("PutObject", status, code, times=fast_retry.attempts - 1)
    store.upload_file("k/f.bin", source)
    assert rule["hits"] == fast_retry.attempts - 1
    assert store.read("k/f.bin")[0] == source.read_bytes()


def test_transient_errors_past_the_bound_name_the_operation_and_uri(bucket_name, s3_client, faults,
                                                                    fast_retry) -> None:
    store = S3ObjectStore(bucket_name, s3_client, fast_retry)
    faults.fail("ListObjectsV2", 503, "SlowDown", times=fast_retry.attempts)
    with pytest.raises(ObjectStoreError, match=rf"listing of s3://{bucket_name}/p failed after 4 attempt\(s\)"):
        store.list("p")


@pytest.mark.parametrize(("status", "code"), [(403, "AccessDenied"), (400, "InvalidRequest")])
def test_refusals_are_not_retried(bucket_name, s3_client, faults, status, code, tmp_path) -> None:
    waits: list[float] = []
    store = S3ObjectStore(bucket_name, s3_client, RetryPolicy(sleep=waits.append))
    source = tmp_path / "f.bin"
    source.write_bytes(b"x")
    rule = faults.fail("PutObject", status, code, times=5)
    with pytest.raises(ObjectStoreError, match=rf"upload of .* to s3://{bucket_name}/k/f.bin was refused.*{code}"):
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


def test_upload_checks_the_stored_checksum(bucket_name, s3_client, tmp_path, monkeypatch) -> None:
    """A store that kept other bytes than were sent is caught by the read-back."""
    store = S3ObjectStore(bucket_name, s3_client)
    source = tmp_path / "f.bin"
    source.write_bytes(b"payload")
    real_head = s3_client.head_object

    def lying_head(**kwargs):
        return {**real_head(**kwargs), "ChecksumSHA256": "AAAA"}

    monkeypatch.setattr(s3_client, "head_object", lying_head)
    with pytest.raises(ObjectStoreError, match=f"checksum mismatch for s3://{bucket_name}/k"):
        store.upload_file("k", source)
