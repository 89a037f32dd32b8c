"""The fingerprint step's entry point: a content hash of the source data.

Nothing here imports pandas, Keras or TensorFlow: the fingerprint component runs in every run
(never cached) and should start fast.
"""

from __future__ import annotations

from collections.abc import Sequence

from tunepipe.data.sources import fingerprint


def fingerprint_step(data_uri: str, allowed_roots: Sequence[str], max_bytes: int) -> str:
    """The fingerprint of the data behind ``data_uri`` (:func:`tunepipe.data.sources.fingerprint`).

    Args:
        data_uri: A local file or folder, ``gs://`` URI or ``sample://`` name.
        allowed_roots: Local data outside these folders is refused before it is hashed.
        max_bytes: Local data larger than this is refused before it is hashed.
    """
    return fingerprint(data_uri, allowed_roots=allowed_roots, max_bytes=max_bytes)
