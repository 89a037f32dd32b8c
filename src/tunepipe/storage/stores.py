"""The one storage seam: which store serves a location.

Every module that reads or writes data, tuner state or exported models asks this module, and
only this one, whether a location is remote (:func:`is_remote`), what bucket and key it names
(:func:`parse`) and which :class:`~tunepipe.storage.objectstore.ObjectStore` serves it
(:func:`store_for`). The scheme table itself (``gs``, ``s3``) lies one level below, in
:mod:`tunepipe.storage.locations`, because the store classes name their objects with it.
A new object store is one class beside :mod:`tunepipe.storage.s3`, one row in that table and
one branch here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tunepipe.errors import ObjectStoreError, TunepipeError
from tunepipe.storage.locations import (
    S3,
    SCHEMES,
    Scheme,
    StoreUri,
    is_remote,
    parse,
    shares_through_tensorflow,
    uri_of,
)

if TYPE_CHECKING:
    from tunepipe.storage.objectstore import ListingStore, RetryPolicy

__all__ = ["SCHEMES", "Scheme", "StoreUri", "is_remote", "parse", "shares_through_tensorflow", "store_for", "uri_of"]


def store_for(
    uri: str | StoreUri, client: Any = None, retry: RetryPolicy | None = None,
    error: type[TunepipeError] = ObjectStoreError,
) -> ListingStore:
    """The object store serving ``uri``'s bucket.

    Args:
        uri: An object-store URI, or one already parsed.
        client: The store's client (a ``google.cloud.storage.Client`` for ``gs://``, a boto3 S3
            client for ``s3://``); ``None`` (default) builds one from the environment's
            credentials, as each library finds them.
        retry: Backoff for transient errors (default: the store's
            :class:`~tunepipe.storage.objectstore.RetryPolicy`); tests pass a fast one.
        error: The error type raised when no client can be built (the caller's users see it)
            or the URI is refused.
    """
    location = uri if isinstance(uri, StoreUri) else parse(uri, error=error)
    if location.scheme == S3:
        from tunepipe.storage.s3 import S3ObjectStore, default_s3_client

        return S3ObjectStore(location.bucket, client if client is not None else default_s3_client(error), retry)
    from tunepipe.storage.objectstore import GcsObjectStore, default_gcs_client

    return GcsObjectStore(location.bucket, client if client is not None else default_gcs_client(error), retry)
