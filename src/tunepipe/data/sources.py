"""Where data comes from: URI checks, local and ``gs://`` listing, download and fingerprints.

Accepted URIs: local paths (a file, or a folder of shards or of class sub-folders), ``file://``
URIs naming them, ``sample://<name>`` (datasets shipped in the package) and ``gs://bucket/prefix``.
Everything else (``http://``, ``s3://`` ...), ``..`` segments and invalid bucket names are refused
by :func:`tunepipe.storage.uris.check_location`, so a typo never silently reads something else. The
size of the data (``max_bytes``) is checked from file sizes and the object listing before
anything is read or downloaded.

A ``gs://`` URI names one object or a prefix: every object under the prefix is one shard of
the dataset (``gs://b/data/part-`` reads ``part-0000.csv``, ``part-0001.csv`` ...), and an
image folder is a prefix whose objects sit in one "sub-folder" per class. Objects are copied
into a local temporary folder and read from there, every request through the object store's
one retry policy (:class:`tunepipe.storage.objectstore.RetryPolicy`, see docs/export.md "Retries"):
a transient fault is retried, a persistent one ends in one
:class:`~tunepipe.errors.ObjectStoreError` naming the operation and the ``gs://`` URI. The
client uses the environment's default credentials (Application Default Credentials; the
emulator when ``STORAGE_EMULATOR_HOST`` is set); nothing in the repository holds credentials.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from google.api_core import exceptions as gexc

from tunepipe.datasets import SAMPLE_SCHEME, resolve
from tunepipe.errors import DataError
from tunepipe.storage.hashing import sha256_file
from tunepipe.storage.objectstore import GcsObjectStore, RetryPolicy, default_gcs_client
from tunepipe.storage.uris import GCS_SCHEME, check_location

log = logging.getLogger(__name__)

__all__ = [
    "GCS_SCHEME", "GcsLocation", "check_size", "check_uri", "download_gcs", "fingerprint", "gcs_store", "list_gcs",
    "local_files", "materialized", "parse_gcs", "read_text",
]


@dataclass(frozen=True)
class GcsLocation:
    """A bucket and an object name or prefix (possibly empty: the whole bucket)."""

    bucket: str
    prefix: str

    def __str__(self) -> str:
        return f"{GCS_SCHEME}{self.bucket}/{self.prefix}"


def parse_gcs(uri: str) -> GcsLocation:
    """Splits ``gs://bucket/prefix``; raises :class:`DataError` for a bad bucket or a ``..`` segment."""
    bucket, _, prefix = check_location(uri).removeprefix(GCS_SCHEME).partition("/")
    return GcsLocation(bucket, prefix)


def check_uri(uri: str, allowed_roots: Sequence[str] = ()) -> str:
    """Refuses URIs this version must not read; returns a local path or the ``gs://`` URI.

    ``sample://`` URIs are resolved to the shipped files (which ``allowed_roots`` does not
    restrict); ``file://`` URIs become local paths. Local paths must exist.

    Raises:
        DataError: Empty URI, an unsupported scheme, a ``..`` segment, a malformed bucket, a
            local path outside ``allowed_roots``, or a missing local path.
    """
    if not uri:
        raise DataError("no data URI given")
    checked = check_location(uri, allowed_roots=allowed_roots)
    if checked.startswith(SAMPLE_SCHEME):
        return resolve(checked)
    if checked.startswith(GCS_SCHEME):
        return checked
    if not Path(checked).exists():
        raise DataError(f"{uri}: no such file or folder")
    return checked


def check_size(total: int, max_bytes: int | None, uri: str) -> None:
    """Refuses data larger than ``max_bytes`` (``data.max_bytes``; ``None``: no limit) before it is read."""
    if max_bytes is not None and total > max_bytes:
        raise DataError(f"{uri}: {total:,} bytes, more than data.max_bytes={max_bytes:,}; raise the limit to read it")


def gcs_store(uri: str, client: Any = None, retry: RetryPolicy | None = None) -> GcsObjectStore:
    """The object store holding ``uri``'s bucket.

    Args:
        uri: ``gs://bucket/prefix``.
        client: A ``google.cloud.storage.Client``; ``None`` builds one from the environment.
        retry: The retry policy (default :class:`RetryPolicy`); tests pass a fast one.
    """
    location = parse_gcs(uri)
    return GcsObjectStore(location.bucket, client if client is not None else default_gcs_client(DataError), retry)


def list_gcs(uri: str, client: Any = None, retry: RetryPolicy | None = None) -> list[Any]:
    """The objects a ``gs://`` URI names: the exact object, or every object under the prefix.

    Raises:
        DataError: Nothing matches, or the bucket does not exist.
        ObjectStoreError: Listing refused (403) or still failing after retries.
    """
    location = parse_gcs(uri)
    try:
        blobs = [blob for blob in gcs_store(uri, client, retry).list_blobs(location.prefix)
                 if not blob.name.endswith("/")]
    except gexc.NotFound as error:
        raise DataError(f"{uri}: cannot list objects: {error}") from None
    exact = [blob for blob in blobs if blob.name == location.prefix]
    if exact:
        return exact
    if not blobs:
        raise DataError(f"{uri}: no objects found under this prefix")
    return blobs


def _folder(prefix: str, names: list[str]) -> str:
    """The "folder" a prefix stands for: itself if every name lies below ``prefix/``, else its parent.

    ``images`` and ``images/`` both mean the folder ``images/``; ``data/part-`` means ``data/``.
    """
    if not prefix or prefix.endswith("/"):
        return prefix
    if all(name.startswith(prefix + "/") for name in names):
        return prefix + "/"
    return prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""


def download_gcs(
    uri: str, target: Path, client: Any = None, retry: RetryPolicy | None = None, max_bytes: int | None = None
) -> Path:
    """Copies the object(s) behind ``uri`` under ``target``; returns the file or folder to read.

    A single object comes back as one file; a prefix comes back as a folder holding every
    object at its path below the prefix's folder. Each object is downloaded at the generation
    listed, so the copy is exactly what the listing saw; each local file appears whole or not
    at all. The objects' total size (from the listing) is checked against ``max_bytes`` before
    anything is downloaded.

    Raises:
        DataError: An object was replaced or deleted after the listing.
        ObjectStoreError: A download was refused or still failing after retries.
    """
    location = parse_gcs(uri)
    store = gcs_store(uri, client, retry)
    blobs = list_gcs(uri, store.client, store.retry)
    check_size(sum(int(blob.size or 0) for blob in blobs), max_bytes, uri)
    single = len(blobs) == 1 and blobs[0].name == location.prefix
    folder = _folder(location.prefix, [blob.name for blob in blobs])
    root = target / "data"
    for blob in blobs:
        try:
            store.download_file(blob.name, root / blob.name[len(folder):], blob.generation)
        except gexc.NotFound:
            raise DataError(f"{store.uri(blob.name)}: replaced or deleted while being read; run again") from None
    log.info("sources: copied %d object(s) from %s", len(blobs), uri)
    return root / blobs[0].name[len(folder):] if single else root


@contextmanager
def materialized(
    uri: str, client: Any = None, retry: RetryPolicy | None = None, allowed_roots: Sequence[str] = (),
    max_bytes: int | None = None,
) -> Iterator[Path]:
    """The data behind ``uri`` as a local file or folder, for the duration of the block.

    ``gs://`` data is copied into a temporary folder that is removed afterwards. The total
    size is checked against ``max_bytes`` (default ``None``: no limit) before anything is read.
    """
    resolved = check_uri(uri, allowed_roots)
    if not resolved.startswith(GCS_SCHEME):
        path = Path(resolved)
        check_size(sum(item.stat().st_size for item in local_files(path)), max_bytes, uri)
        yield path
        return
    with TemporaryDirectory(prefix="tunepipe-gcs-") as scratch:
        yield download_gcs(resolved, Path(scratch), client, retry, max_bytes)


# A baseline schema is a few kilobytes; anything far larger is not one.
MAX_SCHEMA_BYTES = 16 * 1024 * 1024


def read_text(uri: str, client: Any = None, allowed_roots: Sequence[str] = ()) -> str:
    """The text of one small file (a baseline schema, at most 16 MiB), local or ``gs://``."""
    with materialized(uri, client, allowed_roots=allowed_roots, max_bytes=MAX_SCHEMA_BYTES) as path:
        if path.is_dir():
            raise DataError(f"{uri}: expected a file, found a folder")
        return path.read_text(encoding="utf-8")


def local_files(path: Path) -> list[Path]:
    """Every regular, non-hidden file under ``path`` (or ``path`` itself), sorted."""
    if path.is_file():
        return [path]
    return sorted(
        item for item in path.rglob("*")
        if item.is_file() and not any(part.startswith(".") for part in item.relative_to(path).parts)
    )


def fingerprint(
    uri: str, client: Any = None, retry: RetryPolicy | None = None, allowed_roots: Sequence[str] = (),
    max_bytes: int | None = None,
) -> str:
    """A content fingerprint of the data behind ``uri``.

    A single local file: ``sha256:`` of its bytes (stable across copies and renames). A local
    folder: ``sha256:`` over every file's relative path and content hash. ``gs://``: ``gcs:``
    SHA-256 over every object's name, generation and MD5, read from the listing without
    downloading, so new data under the same prefix (a new generation) changes it. Data larger
    than ``max_bytes`` is refused before it is hashed.
    """
    resolved = check_uri(uri, allowed_roots)
    if resolved.startswith(GCS_SCHEME):
        blobs = list_gcs(resolved, client, retry)
        check_size(sum(int(blob.size or 0) for blob in blobs), max_bytes, uri)
        folder = _folder(parse_gcs(resolved).prefix, [blob.name for blob in blobs])
        listing = [[blob.name[len(folder):], str(blob.generation), str(blob.md5_hash)] for blob in blobs]
        return "gcs:" + hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    path = Path(resolved)
    check_size(sum(item.stat().st_size for item in local_files(path)), max_bytes, uri)
    if path.is_file():
        return f"sha256:{sha256_file(path)}"
    entries = [[str(item.relative_to(path)), sha256_file(item)] for item in local_files(path)]
    if not entries:
        raise DataError(f"{uri}: the folder holds no files")
    return "sha256:" + hashlib.sha256(json.dumps(entries).encode()).hexdigest()
