"""The optional deploy step: point a pinned ``tunepipe serve`` InferenceService at a new champion.

After the export step publishes a version (which always becomes the champion), this step sets
the ``TUNEPIPE_SERVE_VERSION`` of the named KServe InferenceService (``k8s/serving``) to that
version with one merge patch, through the cluster API and job runner every step shares
(:meth:`tunepipe.execution.k8s.runner.JobRunner.update`); KServe then rolls out pods that serve
it. It does nothing when ``deploy.enabled`` is false or nothing was published. It needs exactly
the Role in ``k8s/serving/role-deployer.yaml``: get and patch ``inferenceservices``.

It does not wait for the rollout: KServe's status cannot tell the new version's readiness from
the old one's across its releases (``status.observedGeneration`` is the Deployment's in some of
them, not the InferenceService's), and the Role grants nothing to read the predictor's pods.

The TF Serving InferenceService of ``k8s/serving`` is not patched: its version lives in a
ConfigMap and its files are copied when a pod starts (docs/deploy.md).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import DeployConfig
from tunepipe.contract import StepResult
from tunepipe.errors import DeployError
from tunepipe.execution.k8s.api import ClusterApi, KubernetesClusterApi
from tunepipe.execution.k8s.runner import JobRunner
from tunepipe.identity import NAMESPACE_FILE, SERVE_VERSION_ENV
from tunepipe.step_folders import read_json

log = logging.getLogger(__name__)

KIND = "InferenceService"
# Keys of the step's result (and of the deploy artifact's metadata).
DEPLOYED, REASON = "deployed", "reason"
# What a refused call needs, said in its error.
ROLE_HINT = " (the run's service account needs the Role tunepipe-deployer of k8s/serving in that namespace)"


def version_patch(isvc: Mapping[str, Any], version: int) -> dict[str, Any] | None:
    """The merge patch that makes ``isvc`` serve ``version``; ``None`` when it already does.

    A merge patch replaces lists whole, so the patch carries every predictor container, with only
    the ``TUNEPIPE_SERVE_VERSION`` value changed, and the ``resourceVersion`` that was read: the API
    server refuses it (409) if the InferenceService changed in between, instead of undoing that change.

    Raises:
        DeployError: No predictor container sets ``TUNEPIPE_SERVE_VERSION`` (not a pinned ``tunepipe serve``).
    """
    name = isvc.get("metadata", {}).get("name", "?")
    containers = copy.deepcopy(isvc.get("spec", {}).get("predictor", {}).get("containers", []))
    pinned = [env for container in containers for env in container.get("env", [])
              if env.get("name") == SERVE_VERSION_ENV]
    if not pinned:
        raise DeployError(
            f"InferenceService {name} has no predictor container that sets {SERVE_VERSION_ENV}: the deploy step "
            "updates a pinned `tunepipe serve` predictor (k8s/serving/inferenceservice-tunepipe.yaml)"
        )
    if all(env.get("value") == str(version) for env in pinned):
        return None
    for env in pinned:
        env.pop("valueFrom", None)
        env["value"] = str(version)
    metadata = {"resourceVersion": isvc["metadata"]["resourceVersion"]} if "resourceVersion" in isvc.get(
        "metadata", {}) else {}
    return {"metadata": metadata, "spec": {"predictor": {"containers": containers}}}


def own_namespace(path: str = NAMESPACE_FILE) -> str:
    """The namespace this pod runs in, from its service-account mount.

    Raises:
        DeployError: Not in a pod (no such file); ``deploy.namespace`` must then be set.
    """
    try:
        return Path(path).read_text().strip()
    except OSError as error:
        raise DeployError(f"deploy.namespace is empty and {path} cannot be read (not running in a pod): "
                          "set deploy.namespace") from error


def deploy_step(
    outcome: Mapping[str, Any], settings: DeployConfig, export_root: str,
    api: Callable[[], ClusterApi] = KubernetesClusterApi, namespace_file: str = NAMESPACE_FILE,
) -> dict[str, Any]:
    """Points ``settings.inference_service`` at the version the export ``outcome`` published.

    Args:
        outcome: The export (or refusal) step's outcome: ``published`` and ``champion_version``.
        settings: The ``deploy`` section; nothing happens unless ``enabled``.
        export_root: Where the version was published; it must be a shared root (the InferenceService
            reads it), not empty (the run's own artifact).
        api: Makes the Kubernetes client; called only when there is something to deploy.
        namespace_file: Where the pod's namespace is read when ``settings.namespace`` is empty.

    Returns:
        ``deployed`` (whether a patch was sent), ``reason``, and the target and version.

    Raises:
        DeployError: No export root, the InferenceService is missing or not pinned, or the API refused.
    """
    if not settings.enabled:
        return {DEPLOYED: False, REASON: "deploy.enabled is false"}
    if not outcome.get(artifacts.META_PUBLISHED):
        return {DEPLOYED: False, REASON: "nothing was published"}
    if not export_root:
        raise DeployError("deploy.enabled needs export.export_root: with none, the model is published into the "
                          "run's own outcome artifact, which no InferenceService reads")
    version = int(outcome[artifacts.META_CHAMPION_VERSION])
    name, namespace = settings.inference_service, settings.namespace or own_namespace(namespace_file)
    target = {"inference_service": name, "namespace": namespace, "version": version}
    runner = JobRunner(api(), None, DeployError)  # it creates nothing: no owner
    isvc, body = runner.update(KIND, name, namespace, lambda found: version_patch(found, version), ROLE_HINT)
    if isvc is None:
        raise DeployError(f"InferenceService {namespace}/{name} does not exist (apply k8s/serving first)")
    if body is None:
        return {DEPLOYED: False, REASON: f"already serves version {version}", **target}
    log.info("InferenceService %s/%s now serves version %s", namespace, name, version)
    return {DEPLOYED: True, REASON: f"new champion {version}", **target}


@dataclass(frozen=True)
class Inputs:
    """The export step's outcome folder, the deploy section and the root the version was published to."""

    outcome: PathLike
    deploy_settings: DeployConfig
    export_root: str


@dataclass(frozen=True)
class Outputs:
    """The deploy step writes no artifact: what it did is its returned value."""


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """:func:`deploy_step` on the outcome export wrote; what was done as the value."""
    outcome = read_json(inputs.outcome, artifacts.OUTCOME_FILE)
    return StepResult(value=deploy_step(outcome, inputs.deploy_settings, inputs.export_root))
