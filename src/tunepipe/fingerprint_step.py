"""The fingerprint step: a content hash of the source data.

Nothing here imports pandas, Keras or TensorFlow: the fingerprint component runs in every run
(never cached) and should start fast.
"""

from __future__ import annotations

from dataclasses import dataclass

from tunepipe.config import InputLimits
from tunepipe.contract import StepResult
from tunepipe.data.sources import fingerprint


@dataclass(frozen=True)
class Inputs:
    """What the fingerprint step reads.

    Attributes:
        data_uri: A local file or folder, an object-store URI or a ``sample://`` name; checked
            where it is read, so that a refusal names the data.
        data: The data section's limits: local data outside ``allowed_roots``, or larger than
            ``max_bytes``, is refused before it is hashed.
    """

    data_uri: str
    data: InputLimits


@dataclass(frozen=True)
class Outputs:
    """The fingerprint step writes no artifact: its result is its returned value."""


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """The fingerprint of the data behind ``data_uri`` (:func:`tunepipe.data.sources.fingerprint`) as the value."""
    limits = inputs.data
    return StepResult(value=fingerprint(inputs.data_uri, allowed_roots=limits.allowed_roots,
                                        max_bytes=limits.max_bytes))
