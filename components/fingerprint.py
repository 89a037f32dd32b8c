"""Fingerprint component: a content hash of the source data, computed at run time."""


def fingerprint(data_uri: str, allowed_roots: list, max_bytes: int) -> str:
    """Returns a fingerprint of the data behind data_uri: the SHA-256 of a local file or of
    every file of a folder, or, for gs://, of every object's name, generation and MD5.

    It runs uncached in every run (scheduled runs included) and feeds ingest, so ingest's
    cache key changes exactly when the data does, even at an unchanged URI. Local data
    outside allowed_roots, or larger than max_bytes, is refused before it is hashed.
    """
    from tunepipe.fingerprint_step import fingerprint_step as content_hash
    from tunepipe.step_logging import configure_logging

    configure_logging()
    return content_hash(data_uri, allowed_roots=allowed_roots, max_bytes=max_bytes)
