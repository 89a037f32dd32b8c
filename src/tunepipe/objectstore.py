"""The object store that export publishes to: gs:// buckets, with retries and checksums.

:class:`GcsObjectStore` is a narrow interface over ``google-cloud-storage``: just what the
publish protocol (:mod:`tunepipe.publish`) needs — upload a file and verify its checksum,
read an object with its generation, create or replace an object only if its generation is
still the one read (``if_generation_match``), list, copy and delete. Credentials come from
the environment's default (Application Default Credentials); none are ever named in code.

Every call is retried on transient errors (HTTP 429 and 5xx, connection resets) with
bounded exponential backoff (:class:`RetryPolicy`); the client library's own retries are
switched off so that one policy, tested here, decides.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

import google_crc32c
import requests
from google.api_core import exceptions as gexc

from tunepipe.errors import ExportError

log = logging.getLogger(__name__)
T = TypeVar("T")

GCS_SCHEME = "gs://"
# Errors worth another attempt: the request may succeed if sent again a little later.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    gexc.TooManyRequests, gexc.InternalServerError, gexc.BadGateway, gexc.ServiceUnavailable,
    gexc.GatewayTimeout, ConnectionError, requests.exceptions.ConnectionError,
    requests.exceptions.ChunkedEncodingError, requests.exceptions.Timeout,
)


class PreconditionFailed(Exception):
    """An ``if_generation_match`` condition did not hold: someone else wrote the object first."""


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded exponential backoff for transient object-store errors.

    Defaults: 6 attempts, waiting 0.5, 1, 2, 4 and 8 s between them (15.5 s at most), which
    rides out GCS's documented 429/503 bursts without hiding a real outage for long.
    """

    attempts: int = 6
    initial_delay: float = 0.5
    multiplier: float = 2.0
    max_delay: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def delays(self) -> list[float]:
        """The waits between attempts, in seconds."""
        return [min(self.initial_delay * self.multiplier**n, self.max_delay) for n in range(self.attempts - 1)]

    def call(self, what: str, operation: Callable[[], T]) -> T:
        """Runs ``operation``, retrying transient errors; raises :class:`ExportError` when spent."""
        for attempt, delay in enumerate([*self.delays(), None], start=1):
            try:
                return operation()
            except TRANSIENT_ERRORS as error:
                if delay is None:
                    raise ExportError(f"{what} failed after {attempt} attempts: {error!r}") from error
                log.warning("objectstore: %s failed (%r), attempt %d of %d; retrying in %.1f s",
                            what, error, attempt, self.attempts, delay)
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover


def is_remote(root: str) -> bool:
    """Whether ``root`` (an export or tuner root) names an object store (gs://) rather than a local folder."""
    return root.startswith(GCS_SCHEME)


def split_gcs_uri(uri: str) -> tuple[str, str]:
    """``gs://bucket/some/prefix`` -> ``("bucket", "some/prefix")`` (no trailing slash).

    Raises:
        ExportError: Not a gs:// URI, or no bucket name.
    """
    if not uri.startswith(GCS_SCHEME):
        raise ExportError(f"{uri}: not a gs:// URI")
    bucket, _, prefix = uri[len(GCS_SCHEME):].partition("/")
    if not bucket:
        raise ExportError(f"{uri}: no bucket name after gs://")
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


def default_gcs_client(error_type: type[Exception]) -> Any:
    """A ``google.cloud.storage.Client`` with the environment's default credentials.

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
        client = client if client is not None else default_gcs_client(ExportError)
        self.name = bucket
        self.client = client
        self.bucket = client.bucket(bucket)
        self.retry = retry or RetryPolicy()

    def _uri(self, key: str) -> str:
        return f"{GCS_SCHEME}{self.name}/{key}"

    def upload_file(self, key: str, path: Path) -> None:
        """Uploads ``path`` to ``key`` and checks the stored CRC32C equals the local file's.

        Raises:
            ExportError: The upload failed after retries, or the checksums differ.
        """
        blob = self.bucket.blob(key)
        self.retry.call(f"upload of {path} to {self._uri(key)}", lambda: blob.upload_from_filename(
            str(path), retry=None, checksum=None))
        self.retry.call(f"metadata of {self._uri(key)}", lambda: blob.reload(retry=None))
        expected = crc32c_of(path)
        if blob.crc32c != expected:
            raise ExportError(f"checksum mismatch for {self._uri(key)}: crc32c {blob.crc32c} stored, "
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
                return self.retry.call(f"read of {self._uri(key)}", fetch)
            except (gexc.NotFound, gexc.PreconditionFailed):
                continue
        raise ExportError(f"{self._uri(key)} keeps changing while being read")

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
            return self.retry.call(f"conditional write of {self._uri(key)}", write)
        except gexc.PreconditionFailed as error:
            raise PreconditionFailed(f"{self._uri(key)} changed (expected generation {generation})") from error

    def list(self, prefix: str) -> list[str]:
        """Names of the objects under ``prefix``, sorted."""
        return self.retry.call(
            f"listing of {self._uri(prefix)}",
            lambda: sorted(blob.name for blob in self.client.list_blobs(self.name, prefix=prefix, retry=None)),
        )

    def copy(self, source: str, target: str) -> None:
        """Server-side copy of one object (bytes and checksums are kept)."""
        self.retry.call(f"copy of {self._uri(source)} to {self._uri(target)}", lambda: self.bucket.copy_blob(
            self.bucket.blob(source), self.bucket, target, retry=None))

    def delete(self, key: str) -> None:
        """Deletes one object; an object already gone is fine."""
        with contextlib.suppress(gexc.NotFound):
            self.retry.call(f"delete of {self._uri(key)}", lambda: self.bucket.blob(key).delete(retry=None))

    def download_file(self, key: str, path: Path) -> None:
        """Downloads one object to a local file."""
        path.parent.mkdir(parents=True, exist_ok=True)
        self.retry.call(f"download of {self._uri(key)}", lambda: self.bucket.blob(key).download_to_filename(
            str(path), retry=None))
