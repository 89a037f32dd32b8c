"""The scheme table: which locations are object stores, one row per store, and how their URIs split.

Each object store is one module holding its store class and its
:class:`~tunepipe.storage.objectstore.Scheme` row (bucket naming rules, default client, retry
classifier, whether TensorFlow reads it directly); :data:`SCHEMES` lists the rows, and nothing
else in tunepipe names a store. A new store is one module beside :mod:`tunepipe.storage.s3` and
one row here. Every other module asks :mod:`tunepipe.storage.stores` (the seam, which re-exports
:func:`is_remote`); a local folder is not an object store, and callers keep their local-folder
path for it.

The scheme table:

========  ===================================================  ===============  ==============
scheme    store                                                fingerprint tag  tf.io.gfile
========  ===================================================  ===============  ==============
``gs``    :class:`~tunepipe.storage.gcs.GcsObjectStore`        ``gcs:``         yes
``s3``    :class:`~tunepipe.storage.s3.S3ObjectStore` (AWS S3,     ``s3:``          no (needs
          MinIO and other S3-compatible stores)                                 tensorflow-io)
========  ===================================================  ===============  ==============

Whether a URI is well formed (its row's bucket naming rules, no ``..``) is checked by
:func:`tunepipe.storage.uris.check_location`. Credentials and endpoints are never read here: each
client library finds them itself (Application Default Credentials for GCS; the standard AWS chain
for S3, including ``AWS_ENDPOINT_URL``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tunepipe.storage import gcs, s3
from tunepipe.storage.objectstore import Scheme

# The rows, by scheme name. Tests add a row of their own for the duration of a test.
SCHEMES: dict[str, Scheme] = {row.name: row for row in (gcs.SCHEME, s3.SCHEME)}

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def scheme_of(uri: str) -> str | None:
    """The scheme of ``uri`` in lower case (``gs``, ``http``), or ``None`` for a plain path."""
    match = _SCHEME.match(uri)
    return match.group(1).lower() if match else None


def row_of(uri: str) -> Scheme | None:
    """The scheme row of the store ``uri`` names, or ``None`` for anything that is not an object store."""
    return SCHEMES.get(scheme_of(uri) or "")


def is_remote(uri: str) -> bool:
    """Whether ``uri`` names an object store (a row of the table) rather than a local folder or file.

    Only the scheme is looked at (case-insensitively); :func:`tunepipe.storage.stores.parse` checks the rest.
    """
    return row_of(uri) is not None


def shares_through_tensorflow(uri: str) -> bool:
    """Whether TensorFlow's own file system (``tf.io.gfile``) reads and writes ``uri`` directly (its row says).

    Distributed tuning pods share the tuner directory this way, so it needs such a root.
    """
    row = row_of(uri)
    return row is not None and row.shares_through_tensorflow


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
    def row(self) -> Scheme:
        """The scheme row of this URI's store."""
        return SCHEMES[self.scheme]

    @property
    def prefix(self) -> str:
        """The key without leading or trailing ``/``: the prefix that objects below it share."""
        return self.key.strip("/")

    @property
    def fingerprint_tag(self) -> str:
        """The tag of fingerprints over this store's listings (``gcs``, ``s3``)."""
        return self.row.fingerprint_tag

    def child(self, key: str) -> StoreUri:
        """The URI of object ``key`` (a full object name) in the same bucket."""
        return StoreUri(self.scheme, self.bucket, key)
