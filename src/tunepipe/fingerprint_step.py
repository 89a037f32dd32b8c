"""The fingerprint step's entry point: a content hash of the source data.

Nothing here imports pandas, Keras or TensorFlow: the fingerprint component runs in every run
(never cached) and should start fast.
"""

from __future__ import annotations

from tunepipe.config import InputLimits
from tunepipe.data.sources import fingerprint


def fingerprint_step(data_uri: str, limits: InputLimits) -> str:
    """The fingerprint of the data behind ``data_uri`` (:func:`tunepipe.data.sources.fingerprint`).

    Args:
        data_uri: A local file or folder, an object-store URI or a ``sample://`` name; checked
            where it is read, so that a refusal names the data.
        limits: The data section's limits: local data outside ``allowed_roots``, or larger than
            ``max_bytes``, is refused before it is hashed.
    """
    return fingerprint(data_uri, allowed_roots=limits.allowed_roots, max_bytes=limits.max_bytes)
