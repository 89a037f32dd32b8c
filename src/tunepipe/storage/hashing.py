"""Content hashes, written once for fingerprints, checksums and champion pointers."""

import hashlib
from pathlib import Path

# Files are hashed a megabyte at a time, so large shards never sit in memory whole.
CHUNK_BYTES = 1 << 20


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK_BYTES), b""):
            digest.update(chunk)
    return digest.hexdigest()
