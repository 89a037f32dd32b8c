"""The object store behind every gs:// path: bounded retries, checksums, one error type.

:class:`GcsObjectStore` is a narrow interface over ``google-cloud-storage``: just what the
publish protocol (:mod:`tunepipe.publishing.publish`), the data readers (:mod:`tunepipe.data.sources`) and the
tuner-state mirror (:mod:`tunepipe.storage.tuner_state`) need — upload a file and verify its checksum,
read an object with its generation, create or replace an object only if its generation is
still the one read (``if_generation_match``), list, copy, delete and download. Credentials
come from the environment's default (Application Default Credentials); none are ever named
in code.

Every call goes through one :class:`RetryPolicy`: transient errors (HTTP 429 and 5xx,
connection resets, answers cut off) are retried with bounded, jittered exponential backoff
under a deadline; permanent ones (403, 400...) are not. The client library's own retries are
switched off so that this one policy, tested here, decides. When it gives up, or a request is
refused, one :class:`~tunepipe.errors.ObjectStoreError` names the operation, the ``gs://`` URI
and the last cause. The policy is documented in docs/export.md ("Retries").
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

from tunepipe.errors import ObjectStoreError, TunepipeError
from tunepipe.storage.uris import check_location

log = logging.getLogger(__name__)
T = TypeVar("T")

GCS_SCHEME = "gs://"
# Errors worth another attempt: the request may succeed if sent again a little later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    gexc.TooManyRequests, gexc.InternalServerError, gexc.BadGateway, gexc.ServiceUnavailable,
    gexc.GatewayTimeout, ConnectionError, requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError, requests.exceptions.Timeout,
)
# Answers the callers act on (absent object, lost race): passed through as they are.
EXPECTED_ANSWERS: tuple[type[BaseException], ...] = (gexc.NotFound, gexc.PreconditionFailed)


class PreconditionFailed(Exception):
    """An ``if_generation_match`` condition did not hold: someone else wrote the object first."""


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

    def call(self, what: str, operation: Callable[[], T]) -> T:
        """Runs ``operation``, retrying transient errors.

        Args:
            what: The operation and its ``gs://`` URI, for logs and the error
                (e.g. ``"download of gs://b/x"``).
            operation: The request; it must be safe to send again.

        Raises:
            ObjectStoreError: Still failing after the last attempt or past the deadline, or a
                permanent error (not retried). ``NotFound`` and ``PreconditionFailed`` pass through.
        """
        started = self.clock()
        for attempt, delay in enumerate([*self.delays(), None], start=1):
            try:
                result = operation()
            except EXPECTED_ANSWERS:
                raise
            except TRANSIENT_ERRORS as error:
                elapsed = self.clock() - started
                wait = None if delay is None else delay * (1.0 - self.jitter * self.random())
                if wait is None or elapsed + wait > self.deadline:
                    raise ObjectStoreError(f"{what} failed after {attempt} attempt(s) in {elapsed:.1f} s "
                                           f"(transient errors, retries exhausted); last error: {error!r}") from error
                log.warning("objectstore: %s failed (%r), attempt %d of %d; retrying in %.2f s",
                            what, error, attempt, self.attempts, wait)
                self.sleep(wait)
            except gexc.GoogleAPICallError as error:
                raise ObjectStoreError(f"{what} was refused (not retried): {error!r}") from error
            else:
                if attempt > 1:
                    log.info("objectstore: %s succeeded on attempt %d of %d", what, attempt, self.attempts)
                return result
        raise AssertionError("unreachable")  # pragma: no cover


def is_remote(root: str) -> bool:
    """Whether ``root`` (an export or tuner root) names an object store (gs://) rather than a local folder."""
    return root.startswith(GCS_SCHEME)


def split_gcs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/prefix`` -> ``("bucket", "some/prefix")`` (no trailing slash).

    Raises:
        ObjectStoreError: Not a gs:// URI, an invalid bucket name or a ``..`` segment.
    """
    if not uri.startswith(GCS_SCHEME):
        raise ObjectStoreError(f"{uri}: not a gs:// URI")
    bucket, _, prefix = check_location(uri, error=ObjectStoreError).removeprefix(GCS_SCHEME).partition("/")
    return bucket, prefix.strip("/")


def crc32c_of(path: Path) -> str:
    """A file's CRC32C as GCS reports it: base64 of the big-endian 32-bit value."""
    checksum = google_crc32c.Checksum()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode("ascii")


class ObjectStore(Protocol):
    """What the publish protocol needs from an object store (keys are object names)."""

    def upload_file(self, key: str, path: Path) -> None: ...
    def read(self, key: str) -> tuple[bytes, int] | None: ...
    def write_if_generation(self, key: str, data: bytes, generation: int) -> int: ...
    def list(self, prefix: str) -> list[str]: ...
    def copy(self, source: str, target: str) -> None: ...
    def delete(self, key: str) -> None: ...
    def download_file(self, key: str, path: Path) -> None: ...


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

    def __init__(self, bucket: str, client: Any = None, retry: RetryPolicy | None = None) -> None:
        client = client if client is not None else default_gcs_client()
        self.name = bucket
        self.client = client
        self.bucket = client.bucket(bucket)
        self.retry = retry or RetryPolicy()

    def uri(self, key: str) -> str:
        """``gs://<bucket>/<key>``."""
        return f"{GCS_SCHEME}{self.name}/{key}"

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

    def read(self, key: str) -> tuple[bytes, int] | None:
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

    def write_if_generation(self, key: str, data: bytes, generation: int) -> int:
        """Writes ``data`` only if the object's generation is still ``generation`` (0: must not exist).

        Returns:
            The new generation.

        Raises:
            PreconditionFailed: Another writer changed the object first.
        """
        blob = self.bucket.blob(key)

        def write() -> int:
            blob.upload_from_string(data, if_generation_match=generation, retry=None)
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

    def download_file(self, key: str, path: Path, generation: int | None = None) -> None:
        """Downloads one object to a local file, which appears whole or not at all.

        Args:
            key: Object name.
            path: Local target; the bytes go to a hidden ``.tmp-`` file beside it first and are
                renamed into place once complete and checked (the library verifies the CRC32C).
            generation: Download exactly this generation (``None``: the live one); a newer
                generation or a deleted object raises ``NotFound``.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".tmp-{path.name}")
        blob = self.bucket.blob(key, generation=generation)
        try:
            self.retry.call(f"download of {self.uri(key)}", lambda: blob.download_to_filename(
                str(partial), retry=None))
            os.replace(partial, path)
        finally:
            partial.unlink(missing_ok=True)
