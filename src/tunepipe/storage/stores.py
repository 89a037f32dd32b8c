"""The one storage seam: which store serves a location.

Every module that reads or writes data, tuner state or exported models asks this module, and
only this one, whether a location is remote (:func:`is_remote`), what bucket and key it names
(:func:`parse`) and which :class:`~tunepipe.storage.objectstore.ListingStore` serves it
(:func:`store_for`). Each answer comes from the URI's row of the scheme table
(:mod:`tunepipe.storage.locations`): nothing here, or anywhere else, names a store, so a new
store is one module and one row there.
"""

from __future__ import annotations

from typing import Any

from tunepipe.errors import ObjectStoreError, TunepipeError
from tunepipe.storage.locations import SCHEMES, StoreUri, is_remote, scheme_of, shares_through_tensorflow
from tunepipe.storage.objectstore import ListingStore, RetryPolicy, Scheme, uri_of
from tunepipe.storage.uris import check_location

__all__ = ["SCHEMES", "Scheme", "StoreUri", "is_remote", "parse", "shares_through_tensorflow", "store_for", "uri_of"]


def parse(uri: str, what: str = "", error: type[TunepipeError] = ObjectStoreError) -> StoreUri:
    """Splits an object-store URI into scheme, bucket and key, once it passed the location check.

    Args:
        uri: ``<scheme>://bucket/key`` for a scheme of the table (``gs``, ``s3``); the key may be
            empty or end in ``/``.
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


def store_for(
    uri: str | StoreUri, client: Any = None, retry: RetryPolicy | None = None,
    error: type[TunepipeError] = ObjectStoreError,
) -> ListingStore:
    """The object store serving ``uri``'s bucket, built as its scheme row says.

    Args:
        uri: An object-store URI, or one already parsed.
        client: The store's client (a ``google.cloud.storage.Client`` for ``gs://``, a boto3 S3
            client for ``s3://``); ``None`` (default) builds one from the environment's
            credentials, as each library finds them (the row's ``client``).
        retry: Backoff for transient errors (default: the store's
            :class:`~tunepipe.storage.objectstore.RetryPolicy`); tests pass a fast one.
        error: The error type raised when no client can be built (the caller's users see it)
            or the URI is refused.
    """
    location = uri if isinstance(uri, StoreUri) else parse(uri, error=error)
    row = location.row
    return row.store(location.bucket, client if client is not None else row.client(error), retry)
