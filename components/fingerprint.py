"""Fingerprint component: a content hash of the source data, computed at run time."""


def fingerprint(data_uri: str, data: dict) -> str:
    """Returns a fingerprint of the data behind data_uri: the SHA-256 of a local file or of
    every file of a folder, or, for an object store, of every object's name, generation and checksum.

    It runs uncached in every run (scheduled runs included) and feeds ingest, so ingest's
    cache key changes exactly when the data does, even at an unchanged URI. Local data
    outside data.allowed_roots, or larger than data.max_bytes, is refused before it is hashed.
    """
    from tunepipe.config import section
    from tunepipe.data.sources import fingerprint as content_hash
    from tunepipe.step_logging import configure_logging

    configure_logging()
    limits = section("data", data)  # data_uri itself is checked where it is read, naming the data
    return content_hash(data_uri, allowed_roots=limits.allowed_roots, max_bytes=limits.max_bytes)
