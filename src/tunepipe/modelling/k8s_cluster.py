"""What the tune and train steps' Kubernetes launchers share: placement, security, the API they call.

:mod:`tunepipe.modelling.k8s_tuning` (a Keras Tuner chief and worker Job) and
:mod:`tunepipe.modelling.k8s_training` (a Kubeflow Trainer ``TrainJob``) both create objects
next to the step's own pod that inherit its image, GPU limit, node selector, tolerations and
service account (:class:`Placement`, read by :meth:`KubernetesClusterApi.own_placement`), name that
pod as their owner (:class:`OwnerPod`), run under the ``restricted`` Pod Security settings with a
read-only root and an ``emptyDir`` at /tmp, and are deleted whatever happens, SIGTERM included
(:func:`sigterm_raises`). Their inputs are staged in the object store (:func:`stage_folders`).
"""

from __future__ import annotations

import shutil
import signal
import socket
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tunepipe.errors import TunepipeError, TuningError
from tunepipe.identity import IMAGE_UID
from tunepipe.storage.tuner_state import StoreSync

GPU_RESOURCE = "nvidia.com/gpu"
# Kubeflow Trainer's API group and version (TrainJob, ClusterTrainingRuntime); tests/k8s/schemas has its CRD.
TRAINER_GROUP, TRAINER_VERSION = "trainer.kubeflow.org", "v1alpha1"
# kind -> plural of the custom objects KubernetesClusterApi creates through the CustomObjectsApi.
CUSTOM_PLURALS = {"TrainJob": "trainjobs"}
SCRATCH_VOLUME = {"name": "tmp", "emptyDir": {}}
SCRATCH_MOUNT = {"name": "tmp", "mountPath": "/tmp"}


@dataclass(frozen=True)
class OwnerPod:
    """The step's own pod: the owner of every object a launcher creates."""

    name: str
    uid: str

    def reference(self) -> dict[str, Any]:
        """An ownerReference to this pod; ``blockOwnerDeletion`` false needs no extra RBAC."""
        return {"apiVersion": "v1", "kind": "Pod", "name": self.name, "uid": self.uid,
                "blockOwnerDeletion": False}


@dataclass(frozen=True)
class Placement:
    """What the launched pods inherit from the step's own pod.

    Attributes:
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


def owned_metadata(name: str, namespace: str, labels: dict[str, str], placement: Placement) -> dict[str, Any]:
    """``metadata`` of a launched object: its name, namespace, labels and the step's pod as owner."""
    meta: dict[str, Any] = {"name": name, "namespace": namespace, "labels": labels}
    if placement.owner:
        meta["ownerReferences"] = [placement.owner.reference()]
    return meta


class KubernetesClusterApi:
    """The launchers' Kubernetes calls over the official ``kubernetes`` client, in-cluster service account."""

    def __init__(self) -> None:
        from kubernetes import client, config

        config.load_incluster_config()
        self.core, self.batch, self.custom = client.CoreV1Api(), client.BatchV1Api(), client.CustomObjectsApi()

    def create(self, manifest: dict[str, Any]) -> None:
        namespace, kind = manifest["metadata"]["namespace"], manifest["kind"]
        if kind in CUSTOM_PLURALS:
            self.custom.create_namespaced_custom_object(TRAINER_GROUP, TRAINER_VERSION, namespace,
                                                        CUSTOM_PLURALS[kind], manifest)
            return
        creators = {"Pod": self.core.create_namespaced_pod, "Service": self.core.create_namespaced_service,
                    "Job": self.batch.create_namespaced_job}
        creators[kind](namespace, manifest)

    def delete(self, kind: str, name: str, namespace: str) -> None:
        if kind in CUSTOM_PLURALS:
            self.custom.delete_namespaced_custom_object(TRAINER_GROUP, TRAINER_VERSION, namespace,
                                                        CUSTOM_PLURALS[kind], name, propagation_policy="Background")
            return
        deleters = {"Pod": self.core.delete_namespaced_pod, "Service": self.core.delete_namespaced_service,
                    "Job": self.batch.delete_namespaced_job}
        deleters[kind](name, namespace, propagation_policy="Background")

    def pod_phase(self, name: str, namespace: str) -> str:
        return str(self.core.read_namespaced_pod(name, namespace).status.phase)

    def job_counts(self, name: str, namespace: str) -> tuple[int, int]:
        status = self.batch.read_namespaced_job(name, namespace).status
        return int(status.succeeded or 0), int(status.failed or 0)

    def log_tail(self, name: str, namespace: str, lines: int) -> str:
        return str(self.core.read_namespaced_pod_log(name, namespace, tail_lines=lines))

    def conditions(self, kind: str, name: str, namespace: str) -> list[dict[str, Any]]:
        """The ``status.conditions`` of a custom object (empty before its controller writes any)."""
        found = self.custom.get_namespaced_custom_object(TRAINER_GROUP, TRAINER_VERSION, namespace,
                                                         CUSTOM_PLURALS[kind], name)
        return list((found.get("status") or {}).get("conditions") or [])

    def pod_names(self, selector: str, namespace: str) -> list[str]:
        """Names of the pods matching the label ``selector``, oldest first."""
        pods = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return [pod.metadata.name for pod in sorted(pods, key=lambda pod: pod.metadata.creation_timestamp)]

    def log_lines(self, name: str, namespace: str) -> list[str]:
        """A pod's log so far, each line prefixed with its RFC 3339 timestamp (empty while it starts)."""
        from kubernetes.client.exceptions import ApiException

        try:
            text = self.core.read_namespaced_pod_log(name, namespace, timestamps=True)
        except ApiException as error:
            if error.status in (400, 404):  # container still being created, or the pod just went
                return []
            raise
        return str(text).splitlines()

    def own_placement(self, namespace: str, error: type[TunepipeError] = TuningError,
                      what: str = "tune backend kubernetes") -> Placement:
        """Image, GPU limit, node selector, tolerations, service account and identity of this pod.

        The pod is named by this process's hostname (Kubernetes sets it to the pod's name).

        Raises:
            TunepipeError: Of type ``error`` (default :class:`TuningError`), naming ``what``
                asked: no such pod in ``namespace``, so the step is not running in a pod of its
                own (e.g. ``kfp.local``) and there is no identity or owner to hand on.
        """
        from kubernetes.client.exceptions import ApiException

        name = socket.gethostname()
        try:
            pod = self.core.read_namespaced_pod(name, namespace)
        except ApiException as failure:
            if failure.status != 404:
                raise
            raise error(
                f"{what}: no pod {name!r} (this hostname) in namespace {namespace!r}; "
                "it must run as a step of a pipeline run on the cluster, not locally"
            ) from failure
        # Argo (the KFP backend) runs the step in the container "main", next to its "wait" sidecar
        container = next((c for c in pod.spec.containers if c.name == "main"), pod.spec.containers[0])
        limits = (container.resources.limits or {}) if container.resources else {}
        tolerations = [
            {k: v for k, v in {"key": t.key, "operator": t.operator, "value": t.value, "effect": t.effect}.items() if v}
            for t in pod.spec.tolerations or []
            if t.key != "node.kubernetes.io/not-ready" and t.key != "node.kubernetes.io/unreachable"
        ]
        return Placement(container.image, int(limits.get(GPU_RESOURCE, 0)), dict(pod.spec.node_selector or {}),
                         tolerations, pod.spec.service_account_name or "default",
                         OwnerPod(pod.metadata.name, pod.metadata.uid))


@contextmanager
def sigterm_raises(error: TunepipeError) -> Iterator[None]:
    """Turns SIGTERM (a cancelled run deleting the step's pod) into ``error``, so cleanup runs."""

    def _raise(signum: int, frame: Any) -> None:
        raise error

    try:
        previous = signal.signal(signal.SIGTERM, _raise)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def stage_folders(folders: dict[str, str], target: str) -> str:
    """Uploads each local folder to ``<target>/<name>`` (an object-store prefix); returns ``target``."""
    with tempfile.TemporaryDirectory(prefix="tunepipe-inputs-") as scratch:
        for name, folder in folders.items():
            shutil.copytree(folder, Path(scratch) / name)
        StoreSync(target).upload_changed(Path(scratch))
    return target
