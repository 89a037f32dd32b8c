"""The scheme table: which locations are object stores, and how their URIs split.

Half of the storage seam, with :mod:`tunepipe.storage.stores` (which store serves a location):
the store classes import this table to name their objects, and ``stores`` imports them, so the
table sits below both. Every other module asks ``stores``, which re-exports :func:`is_remote`
and :func:`parse`; a local folder is not an object store, and callers keep their local-folder
path for it.

The scheme table:

========  ===================================================  =============================
scheme    store                                                fingerprint tag
========  ===================================================  =============================
``gs``    :class:`~tunepipe.storage.objectstore.GcsObjectStore`   ``gcs:``
``s3``    :class:`~tunepipe.storage.s3.S3ObjectStore` (AWS S3,     ``s3:``
          MinIO and other S3-compatible stores)
========  ===================================================  =============================

Whether a URI is well formed (bucket naming rules, no ``..``) is checked by
:func:`tunepipe.storage.uris.check_location`, which :func:`parse` calls. Credentials and
endpoints are never read here: each client library finds them itself (Application Default
Credentials for GCS; the standard AWS chain for S3, including ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

from dataclasses import dataclass

from tunepipe.errors import ObjectStoreError, TunepipeError
from tunepipe.storage.uris import check_location, scheme_of

GCS = "gs"
S3 = "s3"


@dataclass(frozen=True)
class Scheme:
    """One row of the scheme table.

    Attributes:
        name: The URI scheme without ``://`` (``gs``).
        service: The store's name in messages.
        fingerprint_tag: Prefix of a data fingerprint over this store's listing (``gcs`` keeps
            the fingerprints of existing gs:// data, and so their cache keys, unchanged).
    """

    name: str
    service: str
    fingerprint_tag: str


SCHEMES: dict[str, Scheme] = {
    GCS: Scheme(GCS, "Google Cloud Storage", "gcs"),
    S3: Scheme(S3, "Amazon S3 (or an S3-compatible store)", "s3"),
}


@dataclass(frozen=True)
class StoreUri:
    """An object-store URI parsed once: its scheme, bucket and key (an object name or a prefix).

    ``str()`` gives the URI back (``gs://bucket/key``); :meth:`child` names an object below it.
    """

    scheme: str
    bucket: str
    key: str

    def __str__(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"

    @property
    def prefix(self) -> str:
        """The key without leading or trailing ``/``: the prefix that objects below it share."""
        return self.key.strip("/")

    @property
    def fingerprint_tag(self) -> str:
        """The tag of fingerprints over this store's listings (``gcs``, ``s3``)."""
        return SCHEMES[self.scheme].fingerprint_tag

    def child(self, key: str) -> StoreUri:
        """The URI of object ``key`` (a full object name) in the same bucket."""
        return StoreUri(self.scheme, self.bucket, key)


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names an object store (``gs://``, ``s3://``) rather than a local folder or file.

    Only the scheme is looked at (case-insensitively); :func:`parse` checks the rest.
    """
    return scheme_of(uri) in SCHEMES


def uri_of(scheme: str, bucket: str, key: str) -> str:
    """``<scheme>://<bucket>/<key>``: how a store names one of its objects in messages."""
    return str(StoreUri(scheme, bucket, key))


def parse(uri: str, what: str = "", error: type[TunepipeError] = ObjectStoreError) -> StoreUri:
    """Splits an object-store URI into scheme, bucket and key, once it passed the location check.

    Args:
        uri: ``gs://bucket/key`` or ``s3://bucket/key``; the key may be empty or end in ``/``.
        what: Prefix of error messages naming the setting (e.g. ``"export_root: "``).
        error: The error type raised (default :class:`~tunepipe.errors.ObjectStoreError`;
            data sources raise ``DataError``, settings ``ConfigError``).

    Raises:
        TunepipeError: Of type ``error``: not an object-store URI, an invalid bucket name or a
            ``..`` segment.
    """
    scheme = scheme_of(uri)
    if scheme not in SCHEMES:
        raise error(f"{what}{uri}: not an object-store URI ({', '.join(f'{name}://' for name in SCHEMES)})")
    checked = check_location(uri, what, error, samples=False)
    bucket, _, key = checked[len(scheme) + 3:].partition("/")
    return StoreUri(scheme, bucket, key)


def shares_through_tensorflow(uri: str) -> bool:
    """Whether TensorFlow's own file system (``tf.io.gfile``) reads and writes ``uri`` directly.

    TensorFlow 2.21 supports ``gs://`` natively; ``s3://`` needs the separate
    tensorflow-io plugin, which tunepipe does not install. Distributed tuning pods share the
    tuner directory this way, so it needs such a root.
    """
    return scheme_of(uri) == GCS
