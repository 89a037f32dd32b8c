"""What the pods a step launches inherit from the step's own pod, and the security they all run under.

The tune step's chief and workers (:mod:`.tuning`) and the train step's ``TrainJob``
(:mod:`.training`) run next to the step's pod with its image, GPU limit, node selector,
tolerations and service account (:class:`StepPod`, read by :func:`read_step_pod`), under the
``restricted`` Pod Security settings with a read-only root and an ``emptyDir`` at /tmp. Their
inputs are staged in the object store (:func:`stage_folders`).
"""

from __future__ import annotations

import shutil
import socket
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunepipe.execution.k8s.api import ClusterApi
from tunepipe.execution.k8s.runner import OwnerPod
from tunepipe.identity import IMAGE_UID
from tunepipe.storage.tuner_state import StoreSync

GPU_RESOURCE = "nvidia.com/gpu"
SCRATCH_VOLUME = {"name": "tmp", "emptyDir": {}}
SCRATCH_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
# Tolerations Kubernetes adds to every pod by itself; the launched pods get their own.
DEFAULT_TOLERATIONS = ("node.kubernetes.io/not-ready", "node.kubernetes.io/unreachable")


@dataclass(frozen=True)
class StepPod:
    """What the launched pods inherit from the step's own pod.

    Attributes:
        image: The step container's image.
        gpus: GPUs per launched pod (the step's own limit unless a launch asks for another).
        node_selector: The step's node selector.
        tolerations: The step's tolerations, less the two Kubernetes adds to every pod.
        service_account: The step's ``spec.serviceAccountName`` (default ``default``, what
            Kubernetes gives a pod that names none).
        owner: The step's pod; ``None`` (only in tests) leaves the objects without an owner.
    """

    image: str
    gpus: int = 0
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    service_account: str = "default"
    owner: OwnerPod | None = None


def container_security_context() -> dict[str, Any]:
    """The ``restricted`` container settings, plus a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True, "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_security_context() -> dict[str, Any]:
    """The ``restricted`` pod settings: the image's non-root user, the runtime's seccomp profile."""
    return {"runAsNonRoot": True, "runAsUser": IMAGE_UID, "runAsGroup": IMAGE_UID, "fsGroup": IMAGE_UID,
            "seccompProfile": {"type": "RuntimeDefault"}}


def restricted_pod_spec(step: StepPod, containers: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A pod spec of ``containers`` as the launched pods all run: the step's service account, node
    selector and tolerations, the ``restricted`` settings with a read-only root and an ``emptyDir``
    at /tmp; ``fields`` are the rest of the spec (restart policy, ...)."""
    for container in containers:
        container.update(securityContext=container_security_context(), volumeMounts=[dict(SCRATCH_MOUNT)])
    spec = {**fields, "serviceAccountName": step.service_account, "securityContext": pod_security_context(),
            "containers": containers, "volumes": [dict(SCRATCH_VOLUME)]}
    if step.node_selector:
        spec["nodeSelector"] = dict(step.node_selector)
    if step.tolerations:
        spec["tolerations"] = list(step.tolerations)
    return spec


def step_pod_from(pod: dict[str, Any]) -> StepPod:
    """The :class:`StepPod` of a pod object (as the API returns it, camelCase keys).

    Argo (the KFP backend) runs the step in the container ``main``, next to its ``wait`` sidecar.
    """
    spec, metadata = pod["spec"], pod["metadata"]
    containers = spec["containers"]
    container = next((c for c in containers if c.get("name") == "main"), containers[0])
    limits = (container.get("resources") or {}).get("limits") or {}
    keys = ("key", "operator", "value", "effect")
    tolerations = [{key: toleration[key] for key in keys if toleration.get(key)}
                   for toleration in spec.get("tolerations") or [] if toleration.get("key") not in DEFAULT_TOLERATIONS]
    return StepPod(container["image"], int(limits.get(GPU_RESOURCE, 0)), dict(spec.get("nodeSelector") or {}),
                   tolerations, spec.get("serviceAccountName") or "default",
                   OwnerPod(metadata["name"], metadata["uid"]))


def read_step_pod(api: ClusterApi, namespace: str, error: type[Exception], what: str) -> StepPod:
    """The step's own pod, named by this process's hostname (Kubernetes sets it to the pod's name).

    Raises:
        Exception: Of type ``error``, naming ``what`` asked: no such pod in ``namespace``, so the
            step is not running in a pod of its own (e.g. ``kfp.local``) and there is no
            identity or owner to hand on. Other API errors pass through.
    """
    name = socket.gethostname()
    pod = api.read("Pod", name, namespace)
    if pod is None:
        raise error(f"{what}: no pod {name!r} (this hostname) in namespace {namespace!r}; "
                    "it must run as a step of a pipeline run on the cluster, not locally")
    return step_pod_from(pod)


def stage_folders(folders: dict[str, str], target: str) -> str:
    """Uploads each local folder to ``<target>/<name>`` (an object-store prefix); returns ``target``."""
    with tempfile.TemporaryDirectory(prefix="tunepipe-inputs-") as scratch:
        for name, folder in folders.items():
            shutil.copytree(folder, Path(scratch) / name)
        StoreSync(target).upload_changed(Path(scratch))
    return target
