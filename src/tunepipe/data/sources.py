"""Where data comes from: URI checks, local and object-store listing, download and fingerprints.

Accepted URIs: local paths (a file, or a folder of shards or of class sub-folders), ``file://``
URIs naming them, ``sample://<name>`` (datasets shipped in the package), ``gs://bucket/prefix``
(Google Cloud Storage) and ``s3://bucket/prefix`` (Amazon S3, MinIO and other S3-compatible
stores). Everything else (``http://``, ``ftp://`` ...), ``..`` segments and invalid bucket
names are refused by :func:`tunepipe.storage.uris.check_location`, so a typo never silently
reads something else. The size of the data (``max_bytes``) is checked from file sizes and the
object listing before anything is read or downloaded.

An object-store URI names one object or a prefix: every object under the prefix is one shard
of the dataset (``gs://b/data/part-`` reads ``part-0000.csv``, ``part-0001.csv`` ...), and an
image folder is a prefix whose objects sit in one "sub-folder" per class. Which store serves a
URI comes from :func:`tunepipe.storage.stores.store_for`. Objects are copied into a local
temporary folder and read from there, every request through the object store's one retry
policy (:class:`tunepipe.storage.objectstore.RetryPolicy`, see docs/export.md "Retries"): a
transient fault is retried, a persistent one ends in one
:class:`~tunepipe.errors.ObjectStoreError` naming the operation and the URI. Clients use the
environment's credentials: Application Default Credentials for GCS (the emulator when
``STORAGE_EMULATOR_HOST`` is set), the standard AWS chain for S3 (``AWS_ENDPOINT_URL`` for
MinIO); nothing in the repository holds credentials.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

from tunepipe.datasets import SAMPLE_SCHEME, resolve
from tunepipe.errors import DataError
from tunepipe.storage.hashing import sha256_file
from tunepipe.storage.objectstore import ListingStore, ObjectInfo, ObjectMissing, RetryPolicy
from tunepipe.storage.stores import StoreUri, is_remote, parse, store_for
from tunepipe.storage.uris import check_location

log = logging.getLogger(__name__)

__all__ = [
    "check_size", "check_uri", "data_store", "download_objects", "fingerprint", "list_objects", "local_files",
    "materialized", "read_text",
]


def _location(uri: str) -> StoreUri:
    """Splits an object-store URI; raises :class:`DataError` for a bad bucket or a ``..`` segment."""
    return parse(uri, error=DataError)


def check_uri(uri: str, allowed_roots: Sequence[str] = ()) -> str:
    """Refuses URIs this version must not read; returns a local path or the object-store URI.

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
    if is_remote(checked):
        return checked
    if not Path(checked).exists():
        raise DataError(f"{uri}: no such file or folder")
    return checked


def check_size(total: int, max_bytes: int | None, uri: str) -> None:
    """Refuses data larger than ``max_bytes`` (``data.max_bytes``; ``None``: no limit) before it is read."""
    if max_bytes is not None and total > max_bytes:
        raise DataError(f"{uri}: {total:,} bytes, more than data.max_bytes={max_bytes:,}; raise the limit to read it")


def data_store(uri: str, client: Any = None, retry: RetryPolicy | None = None) -> ListingStore:
    """The object store holding ``uri``'s bucket (:func:`tunepipe.storage.stores.store_for`).

    Args:
        uri: ``gs://bucket/prefix`` or ``s3://bucket/prefix``.
        client: The store's client; ``None`` builds one from the environment's credentials.
        retry: The retry policy (default :class:`RetryPolicy`); tests pass a fast one.
    """
    return store_for(_location(uri), client, retry, error=DataError)


def list_objects(uri: str, client: Any = None, retry: RetryPolicy | None = None) -> list[ObjectInfo]:
    """The objects an object-store URI names: the exact object, or every object under the prefix.

    Raises:
        DataError: Nothing matches, or the bucket does not exist.
        ObjectStoreError: Listing refused (403) or still failing after retries.
    """
    return _listed(_location(uri), data_store(uri, client, retry))


def _listed(location: StoreUri, store: ListingStore) -> list[ObjectInfo]:
    try:
        found = [info for info in store.list_objects(location.key) if not info.name.endswith("/")]
    except ObjectMissing as error:
        raise DataError(f"{location}: cannot list objects: {error}") from None
    exact = [info for info in found if info.name == location.key]
    if exact:
        return exact
    if not found:
        raise DataError(f"{location}: no objects found under this prefix")
    return found


def _folder(prefix: str, names: list[str]) -> str:
    """The "folder" a prefix stands for: itself if every name lies below ``prefix/``, else its parent.

    ``images`` and ``images/`` both mean the folder ``images/``; ``data/part-`` means ``data/``.
    """
    if not prefix or prefix.endswith("/"):
        return prefix
    if all(name.startswith(prefix + "/") for name in names):
        return prefix + "/"
    return prefix.rsplit("/", 1)[0] + "/" if "/" in prefix else ""


def download_objects(
    uri: str, target: Path, client: Any = None, retry: RetryPolicy | None = None, max_bytes: int | None = None
) -> Path:
    """Copies the object(s) behind ``uri`` under ``target``; returns the file or folder to read.

    A single object comes back as one file; a prefix comes back as a folder holding every
    object at its path below the prefix's folder. Each object is downloaded at the version
    listed (GCS generation, S3 ETag), so the copy is exactly what the listing saw; each local
    file appears whole or not at all. The objects' total size (from the listing) is checked against ``max_bytes`` before
    anything is downloaded.

    Raises:
        DataError: An object was replaced or deleted after the listing.
        ObjectStoreError: A download was refused or still failing after retries.
    """
    location = _location(uri)
    store = data_store(uri, client, retry)
    objects = _listed(location, store)
    check_size(sum(info.size for info in objects), max_bytes, uri)
    single = len(objects) == 1 and objects[0].name == location.key
    folder = _folder(location.key, [info.name for info in objects])
    root = target / "data"
    for info in objects:
        try:
            store.download_file(info.name, root / info.name[len(folder):], info.version)
        except ObjectMissing:
            raise DataError(f"{store.uri(info.name)}: replaced or deleted while being read; run again") from None
    log.info("sources: copied %d object(s) from %s", len(objects), uri)
    return root / objects[0].name[len(folder):] if single else root


@contextmanager
def materialized(
    uri: str, client: Any = None, retry: RetryPolicy | None = None, allowed_roots: Sequence[str] = (),
    max_bytes: int | None = None,
) -> Iterator[Path]:
    """The data behind ``uri`` as a local file or folder, for the duration of the block.

    Object-store data is copied into a temporary folder that is removed afterwards. The total
    size is checked against ``max_bytes`` (default ``None``: no limit) before anything is read.
    """
    resolved = check_uri(uri, allowed_roots)
    if not is_remote(resolved):
        path = Path(resolved)
        check_size(sum(item.stat().st_size for item in local_files(path)), max_bytes, uri)
        yield path
        return
    with TemporaryDirectory(prefix="tunepipe-objects-") as scratch:
        yield download_objects(resolved, Path(scratch), client, retry, max_bytes)


# A baseline schema is a few kilobytes; anything far larger is not one.
MAX_SCHEMA_BYTES = 16 * 1024 * 1024


def read_text(uri: str, client: Any = None, allowed_roots: Sequence[str] = ()) -> str:
    """The text of one small file (a baseline schema, at most 16 MiB), local or in an object store."""
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
    folder: ``sha256:`` over every file's relative path and content hash. An object store:
    SHA-256 over every object's name, version and checksum, read from the listing without
    downloading, tagged by the store (``gcs:`` over name, generation and MD5; ``s3:`` over name,
    ETag and ETag without quotes), so new data under the same prefix (a new generation, a new
    ETag) changes it. The ``gcs:`` form is unchanged since it was first written, so existing
    cache keys stay valid. Data larger than ``max_bytes`` is refused before it is hashed.
    """
    resolved = check_uri(uri, allowed_roots)
    if is_remote(resolved):
        location = _location(resolved)
        objects = list_objects(resolved, client, retry)
        check_size(sum(info.size for info in objects), max_bytes, uri)
        folder = _folder(location.key, [info.name for info in objects])
        listing = [[info.name[len(folder):], str(info.version), str(info.checksum)] for info in objects]
        return f"{location.fingerprint_tag}:" + hashlib.sha256(json.dumps(listing).encode()).hexdigest()
    path = Path(resolved)
    check_size(sum(item.stat().st_size for item in local_files(path)), max_bytes, uri)
    if path.is_file():
        return f"sha256:{sha256_file(path)}"
    entries = [[str(item.relative_to(path)), sha256_file(item)] for item in local_files(path)]
    if not entries:
        raise DataError(f"{uri}: the folder holds no files")
    return "sha256:" + hashlib.sha256(json.dumps(entries).encode()).hexdigest()
