"""Where tune and train keep their resumable state when the run names no ``tuner_root``.

On Kubeflow Pipelines a step's outputs start empty on every attempt, so state kept inside them
is lost when a preempted step is retried. The state therefore defaults to a folder beside the
runs under the pipeline root, found from one of the step's own output URIs. KFP's v2 driver
names outputs ``<pipeline root>/<pipeline name>/<run id>/<task>/<output>`` (backends before 2.4)
or ``.../<task>/<random uuid>/<output>`` (2.4 and later: ``provisionOutputs`` in
backend/src/v2/driver/driver.go), the run id being a UUID. Nothing run-specific enters the
step's inputs: the cache key of tune and train stays the same from run to run.
"""

from __future__ import annotations

import logging
import re

from tunepipe.storage.stores import is_remote

log = logging.getLogger(__name__)

# The folder, beside the run folders of the pipeline, that holds the state of runs naming no tuner_root.
STATE_FOLDER = "tuner-state"

_UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
_KFP_OUTPUT = re.compile(rf"^(?P<pipeline>.+?/[^/]+)/{_UUID}/[^/]+(?:/{_UUID})?/[^/]+/?$")


def pipeline_state_root(output_uri: str) -> str:
    """``<pipeline root>/<pipeline name>/tuner-state`` for a step output at ``output_uri``.

    Returns:
        That folder, or ``""`` when ``output_uri`` is not laid out as KFP's v2 backend lays out
        outputs (kfp.local, Vertex AI) or lies in a store tunepipe does not open (``minio://``,
        KFP's default root on a fresh install: name a ``tuner_root`` there).
    """
    match = _KFP_OUTPUT.match(output_uri)
    if match is None:
        return ""
    folder = match["pipeline"]
    if "://" in folder and not is_remote(folder):
        return ""
    return f"{folder}/{STATE_FOLDER}"


def resolve_tuner_root(tuner_root: str, output_uri: str, step: str) -> str:
    """``tuner_root`` when set, else :func:`pipeline_state_root` of ``output_uri``; says which.

    Args:
        tuner_root: The run's ``tuner_root`` parameter (empty: not set).
        output_uri: The URI of one of ``step``'s outputs.
        step: ``tune`` or ``train``, for the log line.

    Returns:
        The root to keep state under; ``""`` keeps it inside the step's outputs, where a retried
        step does not find it again.
    """
    if tuner_root:
        return tuner_root
    derived = pipeline_state_root(output_uri)
    if derived:
        log.info("%s: no tuner_root set; state under the pipeline root, %s, so a retried step resumes", step, derived)
    else:
        log.warning("%s: no tuner_root set and %s is not under a pipeline root tunepipe can write: state stays "
                    "in the step's outputs and a retried step starts over (set tuner_root to resume)", step, output_uri)
    return derived
