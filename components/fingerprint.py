"""Fingerprint component: a content hash of the source data, computed at run time."""


def fingerprint(data_uri: str, data: dict) -> str:
    """Returns a fingerprint of the data behind data_uri: the SHA-256 of a local file or of
    every file of a folder, or, for an object store, of every object's name, generation and checksum.

    It runs uncached in every run (scheduled runs included) and feeds ingest, so ingest's
    cache key changes exactly when the data does, even at an unchanged URI. Local data
    outside data.allowed_roots, or larger than data.max_bytes, is refused before it is hashed.

    Args:
        data_uri: Local path, gs:// or s3:// bucket/prefix, or sample://name.
        data: The data section (allowed_roots, max_bytes: the limits checked before hashing).

    Returns:
        The fingerprint, ``sha256:<hex>``; ingest takes it as an input.
    """
    from tunepipe.config import section
    from tunepipe.fingerprint_step import fingerprint_step
    from tunepipe.step_logging import configure_logging

    configure_logging()
    return fingerprint_step(data_uri, section("data", data))
