"""Fingerprint component: a content hash of the source data, computed at run time."""


def fingerprint(data_uri: str) -> str:
    """Returns the SHA-256 of the data behind data_uri.

    It runs uncached in every run (scheduled runs included) and feeds ingest, so ingest's
    cache key changes exactly when the data does, even at an unchanged URI.
    """
    from tunepipe.ingest import fingerprint as content_hash

    return content_hash(data_uri)
