"""The ``gs://`` object store: Google Cloud Storage (or an emulator of its JSON API), one module and one row.

:class:`GcsObjectStore` implements :class:`~tunepipe.storage.objectstore.ObjectStore` through
``google-cloud-storage``: an upload is one request whose stored CRC32C is read back and compared;
``read`` returns the bytes and generation of one live object; conditional writes use
``if_generation_match`` (``0``: only if absent); a download goes to a hidden ``.tmp-`` file renamed
into place whole, at the listed generation when one is asked for. :data:`SCHEME` is its row of the
scheme table: the bucket naming rules, the default client (Application Default Credentials;
``STORAGE_EMULATOR_HOST`` points it at an emulator), and :func:`classify_gcs`, which sorts the
library's errors for the one retry policy (the library's own retries are switched off).

The Google libraries are imported on use: a run that never names a ``gs://`` location loads none.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

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

T = TypeVar("T")
_BUCKET_CHARACTERS = re.compile(r"^[a-z0-9][a-z0-9._-]*[a-z0-9]$")


def classify_gcs(error: BaseException) -> str | None:
    """How :class:`~tunepipe.storage.objectstore.RetryPolicy` treats an error of ``google-cloud-storage``.

    Returns:
        ``EXPECTED`` for ``NotFound`` and ``PreconditionFailed`` (answers the caller acts on),
        ``TRANSIENT`` for 429, 500, 502, 503, 504 and for connections reset, refused, cut off or
        timed out (``requests``' errors, and Python's connection errors), ``REFUSED`` for any other API answer (403,
        400 ...), ``None`` for anything else.
    """
    import requests
    from google.api_core import exceptions as gexc

    if isinstance(error, gexc.NotFound | gexc.PreconditionFailed):
        return EXPECTED
    transient = (gexc.TooManyRequests, gexc.InternalServerError, gexc.BadGateway, gexc.ServiceUnavailable,
                 gexc.GatewayTimeout, requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError,
                 requests.exceptions.Timeout)
    if isinstance(error, transient) or classify_builtin(error) == TRANSIENT:
        return TRANSIENT
    if isinstance(error, gexc.GoogleAPICallError):
        return REFUSED
    return None


def bucket_problem(name: str) -> str | None:
    """Why ``name`` is not a valid Cloud Storage bucket name, or ``None`` if it is.

    Rules (cloud.google.com/storage/docs/buckets#naming): 3-63 characters (up to 222 with
    dots, each dot-separated part at most 63); lowercase letters, digits, ``-``, ``_`` and
    ``.``; starts and ends with a letter or digit; no ``goog`` prefix, no ``google`` inside;
    not an IP address.
    """
    longest = 222 if "." in name else 63
    if not 3 <= len(name) <= longest:
        return f"must be 3-{longest} characters long"
    if not _BUCKET_CHARACTERS.match(name):
        return "must hold only lowercase letters, digits, '-', '_' and '.', and start and end with a letter or digit"
    if any(len(part) > 63 or not part for part in name.split(".")):
        return "each dot-separated part must be 1-63 characters long"
    if name.startswith("goog") or "google" in name:
        return "must not start with 'goog' or contain 'google'"
    return ip_address_problem(name)


def crc32c_of(path: Path) -> str:
    """A file's CRC32C as GCS reports it: base64 of the big-endian 32-bit value."""
    import google_crc32c

    checksum = google_crc32c.Checksum()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            checksum.update(chunk)
    return base64.b64encode(checksum.digest()).decode("ascii")


def default_gcs_client(error_type: type[TunepipeError] = ObjectStoreError) -> Any:
    """A ``google.cloud.storage.Client`` with the environment's default credentials.

    The one place a client is built (``STORAGE_EMULATOR_HOST`` points it at an emulator).
    Without credentials (no ``GOOGLE_APPLICATION_CREDENTIALS``, no metadata server) google.auth
    raises several types; the caller names the one its users see, so the run ends with one
    ``error:`` line instead of a traceback.
    """
    from google.cloud import storage

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
        return uri_of(SCHEME.name, self.name, key)

    def _call(self, what: str, operation: Callable[[], T]) -> T:
        """One request through the retry policy, its errors sorted by this store's row."""
        return self.retry.call(what, operation, SCHEME.classify)

    def upload_file(self, key: str, path: Path) -> None:
        """Uploads ``path`` to ``key`` and checks the stored CRC32C equals the local file's.

        An upload is one request: GCS creates the object whole or not at all.

        Raises:
            ObjectStoreError: The upload failed after retries, or the checksums differ.
        """
        blob = self.bucket.blob(key)
        self._call(f"upload of {path} to {self.uri(key)}", lambda: blob.upload_from_filename(
            str(path), retry=None, checksum=None))
        self._call(f"metadata of {self.uri(key)}", lambda: blob.reload(retry=None))
        expected = crc32c_of(path)
        if blob.crc32c != expected:
            raise ObjectStoreError(f"checksum mismatch for {self.uri(key)}: crc32c {blob.crc32c} stored, "
                                   f"{expected} for the local file {path}")

    def read(self, key: str) -> tuple[bytes, VersionToken] | None:
        """The object's bytes and generation, or ``None`` if it does not exist."""
        from google.api_core import exceptions as gexc

        def fetch() -> tuple[bytes, int] | None:
            blob = self.bucket.get_blob(key, retry=None)
            if blob is None:
                return None
            generation = int(blob.generation)
            return blob.download_as_bytes(if_generation_match=generation, retry=None), generation

        for _ in range(3):  # replaced or deleted between metadata and download: read it again
            try:
                return self._call(f"read of {self.uri(key)}", fetch)
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
        from google.api_core import exceptions as gexc

        blob = self.bucket.blob(key)

        def write() -> int:
            blob.upload_from_string(data, if_generation_match=int(generation or 0), retry=None)
            return int(blob.generation)

        try:
            return self._call(f"conditional write of {self.uri(key)}", write)
        except gexc.PreconditionFailed as error:
            raise PreconditionFailed(f"{self.uri(key)} changed (expected generation {generation})") from error

    def list_blobs(self, prefix: str) -> list[Any]:
        """The objects under ``prefix`` with their metadata (name, generation, md5_hash, size), by name.

        The whole listing is one retried operation: a page failing midway lists again from the start.
        """
        return self._call(
            f"listing of {self.uri(prefix)}",
            lambda: sorted(self.client.list_blobs(self.name, prefix=prefix, retry=None), key=lambda blob: blob.name),
        )

    def list_objects(self, prefix: str) -> list[ObjectInfo]:
        """The objects under ``prefix`` (name, size, generation, MD5), by name.

        Raises:
            ObjectMissing: The bucket does not exist.
        """
        from google.api_core import exceptions as gexc

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
        self._call(f"copy of {self.uri(source)} to {self.uri(target)}", lambda: self.bucket.copy_blob(
            self.bucket.blob(source), self.bucket, target, retry=None))

    def delete(self, key: str) -> None:
        """Deletes one object; an object already gone is fine."""
        from google.api_core import exceptions as gexc

        with contextlib.suppress(gexc.NotFound):
            self._call(f"delete of {self.uri(key)}", lambda: self.bucket.blob(key).delete(retry=None))

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
        from google.api_core import exceptions as gexc

        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_name(f".tmp-{path.name}")
        blob = self.bucket.blob(key, generation=None if version is None else int(version))
        try:
            self._call(f"download of {self.uri(key)}", lambda: blob.download_to_filename(
                str(partial), retry=None))
            os.replace(partial, path)
        except gexc.NotFound:
            raise ObjectMissing(f"{self.uri(key)}: no such object (at the version listed)") from None
        finally:
            partial.unlink(missing_ok=True)


SCHEME = Scheme(
    name="gs", service="Google Cloud Storage", fingerprint_tag="gcs", bucket_problem=bucket_problem,
    store=GcsObjectStore, client=default_gcs_client, classify=classify_gcs,
    shares_through_tensorflow=True,  # TensorFlow 2.21 reads and writes gs:// natively
)
