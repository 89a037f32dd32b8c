"""The object-store protocol, its one retry policy, and the Google Cloud Storage store.

:class:`ObjectStore` is the narrow interface every object store offers: just what the publish
protocol (:mod:`tunepipe.publishing.publish`), the data readers (:mod:`tunepipe.data.sources`)
and the tuner-state mirror (:mod:`tunepipe.storage.tuner_state`) need: upload a file and verify
its checksum, read an object with a version token, create or replace an object only if its
version is still the one read, list, copy, delete and download. Two stores implement it:
:class:`GcsObjectStore` here (``google-cloud-storage``; the token is the generation) and
:class:`tunepipe.storage.s3.S3ObjectStore` (boto3; the token is the ETag). Which one serves a
URI is decided in :mod:`tunepipe.storage.stores` only. Credentials come from each library's
default chain; none are ever named in code.

Every call goes through one :class:`RetryPolicy`: transient errors (HTTP 429 and 5xx,
connection resets, answers cut off) are retried with bounded, jittered exponential backoff
under a deadline; permanent ones (403, 400...) are not. Each store tells the policy which of
its library's errors are which (a classifier); the libraries' own retries are switched off so
that this one policy, tested here, decides. When it gives up, or a request is refused, one
:class:`~tunepipe.errors.ObjectStoreError` names the operation, the store URI and the last
cause. The policy is documented in docs/export.md ("Retries").
"""

from __future__ import annotations

import base64
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import google_crc32c
import requests
from google.api_core import exceptions as gexc

from tunepipe.errors import ObjectStoreError, RetriesExhausted, TunepipeError
from tunepipe.storage.locations import GCS, uri_of

log = logging.getLogger(__name__)
T = TypeVar("T")

# Errors worth another attempt: the request may succeed if sent again a little later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    gexc.TooManyRequests, gexc.InternalServerError, gexc.BadGateway, gexc.ServiceUnavailable,
    gexc.GatewayTimeout, ConnectionError, requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError, requests.exceptions.Timeout,
)
# Answers the callers act on (absent object, lost race): passed through as they are.
EXPECTED_ANSWERS: tuple[type[BaseException], ...] = (gexc.NotFound, gexc.PreconditionFailed)


# What read returns with an object's bytes and write_if_generation expects back: GCS's generation
# (an int), S3's ETag (a str). Opaque to callers, compared only by the store.
VersionToken = int | str
# How a store's classifier sorts an error for RetryPolicy.call.
TRANSIENT, REFUSED, EXPECTED = "transient", "refused", "expected"
Classifier = Callable[[BaseException], str | None]


class PreconditionFailed(Exception):
    """A conditional write's precondition did not hold: someone else wrote the object first."""


class ObjectMissing(ObjectStoreError):
    """The object (at the version asked for) is not there: never written, deleted, or replaced."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object of a listing.

    Attributes:
        name: Object name (key).
        size: Bytes.
        version: The token that :meth:`ListingStore.download_file` takes to download exactly
            this content (GCS: generation; S3: ETag).
        checksum: The store's content checksum (GCS: base64 MD5; S3: the ETag without quotes,
            the MD5 of a single-part upload); ``None`` if the store gives none.
    """

    name: str
    size: int
    version: VersionToken
    checksum: str | None


def classify_gcs(error: BaseException) -> str | None:
    """How :class:`RetryPolicy` treats an error of ``google-cloud-storage``; ``None``: not a store error."""
    if isinstance(error, EXPECTED_ANSWERS):
        return EXPECTED
    if isinstance(error, TRANSIENT_ERRORS):
        return TRANSIENT
    if isinstance(error, gexc.GoogleAPICallError):
        return REFUSED
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff with jitter for transient object-store errors.

    Defaults: 6 attempts, waiting about 0.5, 1, 2, 4 and 8 s between them (15.5 s at most), and
    no new attempt once 60 s have passed since the first: that rides out GCS's documented
    429/503 bursts without hiding a real outage for long. Each wait is shortened by a random
    fraction up to ``jitter`` (default 20 %) so that parallel workers do not retry in lockstep.
    Tests pass ``sleep`` (and ``jitter=0``) to run without waiting.
    """

    attempts: int = 6
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    jitter: float = 0.2
    deadline: float = 60.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)
    clock: Callable[[], float] = field(default=time.monotonic, compare=False)
    random: Callable[[], float] = field(default=random.random, compare=False)

    def delays(self) -> list[float]:
        """The nominal waits between attempts, in seconds (before jitter)."""
        return [min(self.initial_delay * self.multiplier**n, self.max_delay) for n in range(self.attempts - 1)]

    def call(self, what: str, operation: Callable[[], T], classify: Classifier = classify_gcs) -> T:
        """Runs ``operation``, retrying transient errors.

        Args:
            what: The operation and its store URI, for logs and the error
                (e.g. ``"download of gs://b/x"``).
            operation: The request; it must be safe to send again.
            classify: Sorts the store library's errors into ``TRANSIENT`` (retried),
                ``REFUSED`` (not retried), ``EXPECTED`` (an answer the caller acts on, passed
                through) or ``None`` (not a store error, passed through). Default: GCS's.

        Raises:
            RetriesExhausted: Still failing after the last attempt or past the deadline.
            ObjectStoreError: A permanent error (not retried). Expected answers
                (GCS ``NotFound`` and ``PreconditionFailed``, S3 404 and 412) pass through.
        """
        started = self.clock()
        for attempt, delay in enumerate([*self.delays(), None], start=1):
            try:
                result = operation()
            except Exception as error:
                kind = classify(error)
                if kind == REFUSED:
                    raise ObjectStoreError(f"{what} was refused (not retried): {error!r}") from error
                if kind != TRANSIENT:
                    raise
                elapsed = self.clock() - started
                wait = None if delay is None else delay * (1.0 - self.jitter * self.random())
                if wait is None or elapsed + wait > self.deadline:
                    raise RetriesExhausted(f"{what} failed after {attempt} attempt(s) in {elapsed:.1f} s "
                                           f"(transient errors, retries exhausted); last error: {error!r}") from error
                log.warning("objectstore: %s failed (%r), attempt %d of %d; retrying in %.2f s",
                            what, error, attempt, self.attempts, wait)
                self.sleep(wait)
            else:
                if attempt > 1:
                    log.info("objectstore: %s succeeded on attempt %d of %d", what, attempt, self.attempts)
                return result
        raise AssertionError("unreachable")  # pragma: no cover


def crc32c_of(path: Path) -> str:
    """A file's CRC32C as GCS reports it: base64 of the big-endian 32-bit value."""
    checksum = google_crc32c.Checksum()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode("ascii")


class ObjectStore(Protocol):
    """What the publish protocol and the tuner-state mirror need from an object store.

    Keys are object names. ``read`` returns an object's bytes with its version token, read in
    one request so that they belong together; ``write_if_generation`` writes only if the
    object's token is still ``generation`` (``0`` or ``None``: only if it does not exist) and
    raises :class:`PreconditionFailed` otherwise.
    """

    def upload_file(self, key: str, path: Path) -> None: ...
    def read(self, key: str) -> tuple[bytes, VersionToken] | None: ...
    def write_if_generation(self, key: str, data: bytes, generation: VersionToken | None) -> VersionToken: ...
    def list(self, prefix: str) -> list[str]: ...
    def copy(self, source: str, target: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def download_file(self, key: str, path: Path) -> None: ...


class ListingStore(ObjectStore, Protocol):
    """An :class:`ObjectStore` that also lists sizes and versions and names its URIs (data sources).

    ``download_file(key, path, version)`` downloads exactly ``version`` (from
    :meth:`list_objects`), raising :class:`ObjectMissing` if it was replaced or deleted since.
    """

    scheme: str
    retry: RetryPolicy
    client: Any

    def uri(self, key: str) -> str: ...
    def list_objects(self, prefix: str) -> list[ObjectInfo]: ...
    def download_file(self, key: str, path: Path, version: VersionToken | None = None) -> None: ...


def default_gcs_client(error_type: type[TunepipeError] = ObjectStoreError) -> Any:
    """A ``google.cloud.storage.Client`` with the environment's default credentials.

    The one place a client is built (``STORAGE_EMULATOR_HOST`` points it at an emulator).
    Without credentials (no ``GOOGLE_APPLICATION_CREDENTIALS``, no metadata server) google.auth
    raises several types; the caller names the one its users see, so the run ends with one
    ``error:`` line instead of a traceback.
    """
    from google.cloud import storage  # imported on use: local runs need no Google libraries

    try:
        return storage.Client()
    except Exception as error:
        raise error_type(f"cannot create a Google Cloud Storage client: {error}") from None


class GcsObjectStore:
    """One bucket of Google Cloud Storage (or of an emulator that speaks its JSON API).

    Args:
        bucket: Bucket name.
        client: A ``google.cloud.storage.Client``; ``None`` builds one from the environment's
            default credentials and project.
        retry: Backoff for transient errors (default :class:`RetryPolicy`).
    """

    scheme = GCS

    def __init__(self, bucket: str, client: Any = None, retry: RetryPolicy | None = None) -> None:
        client = client if client is not None else default_gcs_client()
        self.name = bucket
        self.client = client
        self.bucket = client.bucket(bucket)
        self.retry = retry or RetryPolicy()

    def uri(self, key: str) -> str:
        """``gs://<bucket>/<key>``."""
        return uri_of(self.scheme, self.name, key)

    def upload_file(self, key: str, path: Path) -> None:
        """Uploads ``path`` to ``key`` and checks the stored CRC32C equals the local file's.

        An upload is one request: GCS creates the object whole or not at all.

        Raises:
            ObjectStoreError: The upload failed after retries, or the checksums differ.
        """
        blob = self.bucket.blob(key)
        self.retry.call(f"upload of {path} to {self.uri(key)}", lambda: blob.upload_from_filename(
            str(path), retry=None, checksum=None))
        self.retry.call(f"metadata of {self.uri(key)}", lambda: blob.reload(retry=None))
        expected = crc32c_of(path)
        if blob.crc32c != expected:
            raise ObjectStoreError(f"checksum mismatch for {self.uri(key)}: crc32c {blob.crc32c} stored, "
                                   f"{expected} for the local file {path}")

    def read(self, key: str) -> tuple[bytes, VersionToken] | None:
        """The object's bytes and generation, or ``None`` if it does not exist."""
        def fetch() -> tuple[bytes, int] | None:
            blob = self.bucket.get_blob(key, retry=None)
            if blob is None:
                return None
            generation = int(blob.generation)
            return blob.download_as_bytes(if_generation_match=generation, retry=None), generation

        for _ in range(3):  # replaced or deleted between metadata and download: read it again
            try:
                return self.retry.call(f"read of {self.uri(key)}", fetch)
            except (gexc.NotFound, gexc.PreconditionFailed):
                continue
        raise ObjectStoreError(f"{self.uri(key)} keeps changing while being read")

    def write_if_generation(self, key: str, data: bytes, generation: VersionToken | None) -> VersionToken:
        """Writes ``data`` only if the object's generation is still ``generation`` (0 or ``None``: must not exist).

        Returns:
            The new generation.

        Raises:
            PreconditionFailed: Another writer changed the object first.
        """
        blob = self.bucket.blob(key)

        def write() -> int:
            blob.upload_from_string(data, if_generation_match=int(generation or 0), retry=None)
            return int(blob.generation)

        try:
            return self.retry.call(f"conditional write of {self.uri(key)}", write)
        except gexc.PreconditionFailed as error:
            raise PreconditionFailed(f"{self.uri(key)} changed (expected generation {generation})") from error

    def list_blobs(self, prefix: str) -> list[Any]:
        """The objects under ``prefix`` with their metadata (name, generation, md5_hash, size), by name.

        The whole listing is one retried operation: a page failing midway lists again from the start.
        """
        return self.retry.call(
            f"listing of {self.uri(prefix)}",
            lambda: sorted(self.client.list_blobs(self.name, prefix=prefix, retry=None), key=lambda blob: blob.name),
        )

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """The objects under ``prefix`` (name, size, generation, MD5), by name.

        Raises:
            ObjectMissing: The bucket does not exist.
        """
        try:
            blobs = self.list_blobs(prefix)
        except gexc.NotFound as error:
            raise ObjectMissing(f"cannot list {self.uri(prefix)}: {error}") from None
        return [ObjectInfo(blob.name, int(blob.size or 0), blob.generation, blob.md5_hash) for blob in blobs]

    def list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix``, sorted."""
        return [blob.name for blob in self.list_blobs(prefix)]

    def copy(self, source: str, target: str) -> None:
        """Server-side copy of one object (bytes and checksums are kept)."""
        self.retry.call(f"copy of {self.uri(source)} to {self.uri(target)}", lambda: self.bucket.copy_blob(
            self.bucket.blob(source), self.bucket, target, retry=None))

    def delete(self, key: str) -> None:
        """Deletes one object; an object already gone is fine."""
        with contextlib.suppress(gexc.NotFound):
            self.retry.call(f"delete of {self.uri(key)}", lambda: self.bucket.blob(key).delete(retry=None))

    def download_file(self, key: str, path: Path, version: VersionToken | None = None) -> None:
        """Downloads one object to a local file, which appears whole or not at all.

        Args:
            key: Object name.
            path: Local target; the bytes go to a hidden ``.tmp-`` file beside it first and are
                renamed into place once complete and checked (the library verifies the CRC32C).
            version: Download exactly this generation (``None``: the live one).

        Raises:
            ObjectMissing: The object is gone, or (with ``version``) was replaced by a newer generation.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".tmp-{path.name}")
        blob = self.bucket.blob(key, generation=None if version is None else int(version))
        try:
            self.retry.call(f"download of {self.uri(key)}", lambda: blob.download_to_filename(
                str(partial), retry=None))
            os.replace(partial, path)
        except gexc.NotFound:
            raise ObjectMissing(f"{self.uri(key)}: no such object (at the version listed)") from None
        finally:
            partial.unlink(missing_ok=True)
