"""The ``s3://`` object store: Amazon S3 and S3-compatible stores (MinIO ...) through boto3, one module and one row.

:class:`S3ObjectStore` implements the same :class:`~tunepipe.storage.objectstore.ObjectStore`
protocol as :class:`~tunepipe.storage.objectstore.GcsObjectStore`, with the same guarantees:

- an upload is one ``PutObject`` carrying the file's SHA-256 (``ChecksumSHA256``), which the
  store verifies before it keeps the object; the stored checksum (and size) is read back and
  compared, like GCS's CRC32C;
- ``read`` returns the bytes and the ETag of one ``GetObject``: they belong together;
- conditional writes use ``PutObject`` with ``IfNoneMatch="*"`` (create only if absent) and
  ``IfMatch=<ETag>`` (replace only if unchanged), which AWS S3 and MinIO enforce;
- a download is a ``GetObject`` (``IfMatch`` the listed ETag when a version is asked for)
  written to a hidden ``.tmp-`` file and renamed into place whole.

:data:`SCHEME` is its row of the scheme table (bucket naming rules, default client, classifier).
Every request goes through the one :class:`~tunepipe.storage.objectstore.RetryPolicy`, with
:func:`classify_s3` sorting botocore's errors: throttling (429, ``SlowDown``), 5xx, timeouts
and cut connections are retried; 403, 400 and other refusals end in one
:class:`~tunepipe.errors.ObjectStoreError` naming the operation and the ``s3://`` URI.
botocore's own retries are switched off so that this policy alone decides.

Endpoint, region and credentials come from the standard AWS chain, which boto3 reads itself
(``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, ``AWS_ENDPOINT_URL``/``AWS_ENDPOINT_URL_S3``
for MinIO, profiles, instance and pod roles); tunepipe never reads them.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
from pathlib import Path
from typing import Any

from tunepipe.errors import ObjectStoreError, TunepipeError
from tunepipe.storage.objectstore import (
    EXPECTED,
    REFUSED,
    TRANSIENT,
    ObjectInfo,
    ObjectMissing,
    PreconditionFailed,
    RetryPolicy,
    Scheme,
    VersionToken,
    classify_builtin,
    ip_address_problem,
    uri_of,
)

# Error codes S3 and MinIO use for "slow down" and for their own trouble (besides 429 and 5xx).
THROTTLING_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
    "RequestTimeout", "InternalError", "ServiceUnavailable",
})
# Answers callers act on: absent object or bucket, a precondition that did not hold, or
# AWS's 409 for two conditional writes racing (the loser re-reads, as after a 412).
MISSING_CODES = frozenset({"NoSuchKey", "NoSuchBucket", "NotFound", "404"})
CONFLICT_CODES = frozenset({"PreconditionFailed", "ConditionalRequestConflict", "412"})
# Seconds to wait for a connection and for an answer: generous for a slow link, short enough
# that a dead endpoint is retried (and reported) in about a minute, like GCS.
CONNECT_TIMEOUT_S = 10
READ_TIMEOUT_S = 60
_S3_BUCKET_CHARACTERS = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")


def s3_bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a valid S3 bucket name, or ``None`` if it is.

    Rules (docs.aws.amazon.com/AmazonS3/latest/userguide/bucketnamingrules.html, general
    purpose buckets): 3-63 characters; lowercase letters, digits, ``.`` and ``-`` (no ``_``);
    starts and ends with a letter or digit; no two adjacent dots; not an IP address. MinIO
    applies the same rules.
    """
    if not 3 <= len(name) <= 63:
        return "must be 3-63 characters long"
    if not _S3_BUCKET_CHARACTERS.match(name):
        return "must hold only lowercase letters, digits, '-' and '.', and start and end with a letter or digit"
    if ".." in name:
        return "must not hold two adjacent dots"
    return ip_address_problem(name)


def _code_and_status(error: BaseException) -> tuple[str, int]:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def classify_s3(error: BaseException) -> str | None:
    """How :class:`~tunepipe.storage.objectstore.RetryPolicy` treats a botocore error.

    Returns:
        ``EXPECTED`` for 404 and 412/409 answers, ``TRANSIENT`` for throttling, 5xx and
        connection errors, ``REFUSED`` for any other S3 answer or client-side botocore error
        (403, 400, no credentials), ``None`` for anything that is not botocore's.
    """
    from botocore import exceptions as bexc

    if isinstance(error, bexc.ClientError):
        code, status = _code_and_status(error)
        if code in MISSING_CODES or code in CONFLICT_CODES or status in (404, 409, 412):
            return EXPECTED
        if code in THROTTLING_CODES or status == 429 or status >= 500:
            return TRANSIENT
        return REFUSED
    transient = (bexc.HTTPClientError, bexc.ConnectionError, bexc.IncompleteReadError, bexc.ResponseStreamingError)
    if isinstance(error, transient) or classify_builtin(error) == TRANSIENT:
        return TRANSIENT
    if isinstance(error, bexc.BotoCoreError):
        return REFUSED
    return None


def _refusing(error: BaseException) -> str | None:
    """The row's classifier for requests that expect no special answer: a 404 or 412 is a refusal."""
    kind = SCHEME.classify(error)
    return REFUSED if kind == EXPECTED else kind


def _is(error: BaseException, codes: frozenset[str], status: int) -> bool:
    code, got = _code_and_status(error)
    return code in codes or got == status


def default_s3_client(error_type: type[TunepipeError] = ObjectStoreError) -> Any:
    """A boto3 S3 client from the standard AWS chain, with botocore's own retries off.

    The one place an S3 client is built. boto3 finds the endpoint (``AWS_ENDPOINT_URL_S3`` or
    ``AWS_ENDPOINT_URL``, e.g. a MinIO server), region and credentials itself; missing
    credentials surface at the first request as a refusal naming the operation.
    """
    try:
        import boto3
        from botocore.config import Config

        config = Config(retries={"total_max_attempts": 1}, connect_timeout=CONNECT_TIMEOUT_S,
                        read_timeout=READ_TIMEOUT_S)
        return boto3.client("s3", config=config)
    except Exception as error:
        raise error_type(f"cannot create an S3 client: {error}") from None


def sha256_b64(path: Path) -> str:
    """A file's SHA-256 as S3's ``ChecksumSHA256`` carries it: base64 of the 32-byte digest."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return base64.b64encode(digest.digest()).decode("ascii")


class S3ObjectStore:
    """One bucket of Amazon S3 or of an S3-compatible store.

    Args:
        bucket: Bucket name.
        client: A boto3 S3 client; ``None`` builds one from the standard AWS chain
            (:func:`default_s3_client`).
        retry: Backoff for transient errors (default :class:`RetryPolicy`).
    """

    def __init__(self, bucket: str, client: Any = None, retry: RetryPolicy | None = None) -> None:
        self.name = bucket
        self.client = client if client is not None else default_s3_client()
        self.retry = retry or RetryPolicy()

    def uri(self, key: str) -> str:
        """``s3://<bucket>/<key>``."""
        return uri_of(SCHEME.name, self.name, key)

    def _call(self, what: str, operation: Any, expects_answers: bool = True) -> Any:
        """One request through the retry policy; without ``expects_answers`` a 404/412 is a refusal."""
        return self.retry.call(what, operation, SCHEME.classify if expects_answers else _refusing)

    def upload_file(self, key: str, path: Path) -> None:
        """Uploads ``path`` to ``key`` in one request; the store checks its SHA-256, and so does this.

        Raises:
            ObjectStoreError: The upload failed after retries, or the stored checksum or size differs.
        """
        expected = sha256_b64(path)

        def put() -> None:
            with path.open("rb") as handle:
                self.client.put_object(Bucket=self.name, Key=key, Body=handle, ChecksumAlgorithm="SHA256",
                                       ChecksumSHA256=expected)

        self._call(f"upload of {path} to {self.uri(key)}", put, expects_answers=False)
        head = self._call(f"metadata of {self.uri(key)}", lambda: self.client.head_object(
            Bucket=self.name, Key=key, ChecksumMode="ENABLED"), expects_answers=False)
        stored, size = head.get("ChecksumSHA256"), int(head.get("ContentLength", -1))
        if (stored is not None and stored != expected) or size != path.stat().st_size:
            raise ObjectStoreError(f"checksum mismatch for {self.uri(key)}: sha256 {stored} and {size} bytes "
                                   f"stored, {expected} and {path.stat().st_size} bytes for the local file {path}")

    def read(self, key: str) -> tuple[bytes, VersionToken] | None:
        """The object's bytes and ETag (from one ``GetObject``), or ``None`` if it does not exist."""
        def fetch() -> tuple[bytes, VersionToken]:
            answer = self.client.get_object(Bucket=self.name, Key=key)
            return answer["Body"].read(), str(answer["ETag"])

        try:
            result: tuple[bytes, VersionToken] = self._call(f"read of {self.uri(key)}", fetch)
            return result
        except Exception as error:
            if classify_s3(error) == EXPECTED and _is(error, MISSING_CODES, 404):
                return None
            raise

    def write_if_generation(self, key: str, data: bytes, generation: VersionToken | None) -> VersionToken:
        """Writes ``data`` only if the object's ETag is still ``generation`` (0 or ``None``: must not exist).

        Returns:
            The new ETag.

        Raises:
            PreconditionFailed: Another writer created or changed the object first (412, or 409
                for a conditional write racing another, or 404 for an ``IfMatch`` on an object
                since deleted).
        """
        condition = {"IfMatch": str(generation)} if generation else {"IfNoneMatch": "*"}

        def write() -> VersionToken:
            return str(self.client.put_object(Bucket=self.name, Key=key, Body=data, **condition)["ETag"])

        try:
            token: VersionToken = self._call(f"conditional write of {self.uri(key)}", write)
            return token
        except Exception as error:
            if classify_s3(error) == EXPECTED:
                raise PreconditionFailed(f"{self.uri(key)} changed (expected {condition})") from error
            raise

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """The objects under ``prefix`` (name, size, ETag), by name; one retried operation for all pages.

        Raises:
            ObjectMissing: The bucket does not exist.
        """
        def listing() -> list[ObjectInfo]:
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix)
            found = [item for page in pages for item in page.get("Contents", [])]
            return sorted((ObjectInfo(item["Key"], int(item["Size"]), str(item["ETag"]), str(item["ETag"]).strip('"'))
                           for item in found), key=lambda info: info.name)

        try:
            result: list[ObjectInfo] = self._call(f"listing of {self.uri(prefix)}", listing)
            return result
        except Exception as error:
            if classify_s3(error) == EXPECTED:
                raise ObjectMissing(f"cannot list {self.uri(prefix)}: {error}") from None
            raise

    def list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix``, sorted."""
        return [info.name for info in self.list_objects(prefix)]

    def copy(self, source: str, target: str) -> None:
        """Server-side copy of one object (one ``CopyObject``; bytes and checksum kept)."""
        self._call(f"copy of {self.uri(source)} to {self.uri(target)}", lambda: self.client.copy_object(
            Bucket=self.name, Key=target, CopySource={"Bucket": self.name, "Key": source}), expects_answers=False)

    def delete(self, key: str) -> None:
        """Deletes one object; an object already gone is fine (S3 answers 204 either way)."""
        try:
            self._call(f"delete of {self.uri(key)}", lambda: self.client.delete_object(Bucket=self.name, Key=key))
        except Exception as error:
            if not (classify_s3(error) == EXPECTED and _is(error, MISSING_CODES, 404)):
                raise

    def download_file(self, key: str, path: Path, version: VersionToken | None = None) -> None:
        """Downloads one object to a local file, which appears whole or not at all.

        Args:
            key: Object name.
            path: Local target; the bytes go to a hidden ``.tmp-`` file beside it first and are
                renamed into place once complete (botocore checks the length, and the checksum
                where the store sends one).
            version: Download only if the ETag is still this one (``None``: the live object).

        Raises:
            ObjectMissing: The object is gone, or (with ``version``) was replaced since.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".tmp-{path.name}")
        condition = {"IfMatch": str(version)} if version else {}

        def fetch() -> None:
            answer = self.client.get_object(Bucket=self.name, Key=key, ChecksumMode="ENABLED", **condition)
            with partial.open("wb") as handle:
                for chunk in answer["Body"].iter_chunks(1 << 20):
                    handle.write(chunk)

        try:
            self._call(f"download of {self.uri(key)}", fetch)
            os.replace(partial, path)
        except Exception as error:
            if classify_s3(error) == EXPECTED:
                raise ObjectMissing(f"{self.uri(key)}: no such object (at the version listed)") from None
            raise
        finally:
            partial.unlink(missing_ok=True)


SCHEME = Scheme(
    name="s3", service="Amazon S3 (or an S3-compatible store)", fingerprint_tag="s3", bucket_problem=s3_bucket_problem,
    store=S3ObjectStore, client=default_s3_client, classify=classify_s3,
    shares_through_tensorflow=False,  # tf.io.gfile needs the tensorflow-io plugin for s3://, not installed
)
