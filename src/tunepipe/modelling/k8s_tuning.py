"""Distributed Hyperband on Kubernetes: a chief pod and Service plus an indexed Job of GPU workers.

The tune step (itself a pod of the pipeline run) creates, in its own namespace:

- a **chief** Pod running ``python -m tunepipe.modelling.distributed_worker`` with
  ``KERASTUNER_TUNER_ID=chief``, serving Keras Tuner's oracle on port 8000;
- a **Service** that gives the chief a stable DNS name;
- an **indexed Job** of N worker pods (``completionMode: Indexed``); worker ``i`` gets
  ``KERASTUNER_TUNER_ID`` = ``i`` from the Job's completion-index annotation, and the chief's
  Service name and port.

Every pod has the tune step's own image, GPU request, node selector, tolerations and service
account (read from the step's pod, so compile-time placement and the run's identity, e.g. its
Workload Identity for ``gs://``, apply to the workers as well), and the ``restricted`` Pod
Security settings. All three objects name the step's pod as their owner, so Kubernetes' garbage
collector deletes them when that pod goes, and the chief and the Job stop after
:data:`ACTIVE_DEADLINE_S` even if nobody deletes them. The step waits while logging progress, and deletes all
three objects whatever happens: success, failure, an exception, or SIGTERM from a cancelled
run. It needs exactly the RBAC in ``k8s/base/role.yaml``: Jobs, Pods, Services (and pod logs)
in its own namespace.

The tuner directory must be ``gs://``: the pods share it through TensorFlow's file system
(Keras Tuner writes through ``tf.io.gfile`` on the TensorFlow backend), which reads ``gs://``
natively but not ``s3://`` (that needs the tensorflow-io plugin, not installed); the
decision is :func:`tunepipe.storage.stores.shares_through_tensorflow`. The step's input
folders are staged next to it (``<tuner directory>/inputs``) for the pods to download.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tunepipe import artifacts
from tunepipe.config import TuningConfig
from tunepipe.errors import ConfigError, TuningError
from tunepipe.identity import NAMESPACE_FILE
from tunepipe.modelling.distributed import WORKER_MODULE, worker_arguments
from tunepipe.modelling.k8s_cluster import (
    GPU_RESOURCE,
    SCRATCH_MOUNT,
    SCRATCH_VOLUME,
    KubernetesClusterApi,
    OwnerPod,
    Placement,
    container_security_context,
    pod_security_context,
    sigterm_raises,
    stage_folders,
)
from tunepipe.storage.stores import shares_through_tensorflow

# OwnerPod, Placement and KubernetesClusterApi live in k8s_cluster (shared with the train step's launcher)
__all__ = ["ClusterApi", "KubernetesClusterApi", "OwnerPod", "Placement", "TuningLaunch", "launch_and_wait",
           "render_manifests", "run_kubernetes_tuning"]

log = logging.getLogger(__name__)

# The oracle's gRPC port; k8s/base/networkpolicy-tuner.yaml admits it only from the tuner's own pods.
ORACLE_PORT = 8000
# Labels of the chief and worker pods; the NetworkPolicy in k8s/base selects them (tests/k8s checks both agree).
APP_LABEL = "app.kubernetes.io/name"
TUNER_APP = "tunepipe-tuner"
ROLE_LABEL = "tunepipe/role"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
# A worker pod that fails (preempted node, out of memory) is replaced this many times in all.
WORKER_BACKOFF_LIMIT = 6
# activeDeadlineSeconds of the chief Pod and the worker Job: 24 h. A backstop for GPU pods whose
# step died without cleaning up (the owner references cover a deleted step pod); no search the
# pipeline is meant for runs longer, and a search cut off resumes from tuner_root on the next run.
ACTIVE_DEADLINE_S = 24 * 3600


@dataclass(frozen=True)
class TuningLaunch:
    """One distributed search: names, placement and the worker command's arguments.

    Attributes:
        name: Prefix of the three objects (unique per launch, DNS-safe).
        namespace: The tune step's namespace.
        placement: Image, GPUs per worker, node selector and tolerations.
        workers: Worker pods (the Job's parallelism and completions).
        arguments: ``tunepipe.modelling.distributed_worker`` arguments shared by the chief and workers,
            without ``--bind``.
    """

    name: str
    namespace: str
    placement: Placement
    workers: int
    arguments: list[str]

    @property
    def service_host(self) -> str:
        return f"{self.name}-chief.{self.namespace}.svc"


def _pod_spec(launch: TuningLaunch, role: str, env: list[dict[str, Any]], gpus: int) -> dict[str, Any]:
    bind = f"0.0.0.0:{ORACLE_PORT}"  # only the chief binds; workers connect through the Service
    container: dict[str, Any] = {
        "name": role,
        "image": launch.placement.image,
        "command": ["python", "-m", WORKER_MODULE],
        "args": [*launch.arguments, "--bind", bind],
        "env": [*env, {"name": "HOME", "value": "/tmp"}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "securityContext": container_security_context(),
        "volumeMounts": [SCRATCH_MOUNT],
    }
    if role == "chief":
        container["ports"] = [{"name": "oracle", "containerPort": ORACLE_PORT}]
    if gpus:
        container["resources"] = {"limits": {GPU_RESOURCE: gpus}}
    spec: dict[str, Any] = {
        "restartPolicy": "Never" if role == "chief" else "OnFailure",
        # the run's identity (GKE Workload Identity needs no token), but no API token: they never call it
        "serviceAccountName": launch.placement.service_account,
        "automountServiceAccountToken": False,
        "securityContext": pod_security_context(),
        "containers": [container],
        "volumes": [dict(SCRATCH_VOLUME)],
    }
    if launch.placement.node_selector:
        spec["nodeSelector"] = dict(launch.placement.node_selector)
    if launch.placement.tolerations:
        spec["tolerations"] = list(launch.placement.tolerations)
    return spec


def _env(tuner_id: dict[str, Any], oracle_ip: str) -> list[dict[str, Any]]:
    return [
        {"name": "KERASTUNER_TUNER_ID", **tuner_id},
        {"name": "KERASTUNER_ORACLE_IP", "value": oracle_ip},
        {"name": "KERASTUNER_ORACLE_PORT", "value": str(ORACLE_PORT)},
    ]


def render_manifests(launch: TuningLaunch) -> list[dict[str, Any]]:
    """The chief Pod, its Service and the indexed worker Job, as plain Kubernetes objects."""
    labels = {APP_LABEL: TUNER_APP, "tunepipe/launch": launch.name}
    chief_labels = {**labels, ROLE_LABEL: "chief"}
    meta: dict[str, Any] = {"namespace": launch.namespace}
    if launch.placement.owner:
        meta["ownerReferences"] = [launch.placement.owner.reference()]
    chief = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": f"{launch.name}-chief", "labels": chief_labels, **meta},
        # the chief only serves the oracle: no GPU
        "spec": {**_pod_spec(launch, "chief", _env({"value": "chief"}, "0.0.0.0"), gpus=0),
                 "activeDeadlineSeconds": ACTIVE_DEADLINE_S},
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": f"{launch.name}-chief", "labels": labels, **meta},
        "spec": {"selector": chief_labels, "ports": [{"name": "oracle", "port": ORACLE_PORT, "targetPort": "oracle"}]},
    }
    index = {"valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}}
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": f"{launch.name}-workers", "labels": labels, **meta},
        "spec": {
            "completionMode": "Indexed", "completions": launch.workers, "parallelism": launch.workers,
            "backoffLimit": WORKER_BACKOFF_LIMIT, "ttlSecondsAfterFinished": 3600,
            "activeDeadlineSeconds": ACTIVE_DEADLINE_S,
            "template": {
                "metadata": {"labels": {**labels, ROLE_LABEL: "worker"}},
                "spec": _pod_spec(launch, "worker", _env(index, launch.service_host), launch.placement.gpus),
            },
        },
    }
    return [chief, service, job]


class ClusterApi(Protocol):
    """The few Kubernetes calls the launcher makes (a fake in tests, :class:`KubernetesClusterApi` here)."""

    def create(self, manifest: dict[str, Any]) -> None: ...
    def delete(self, kind: str, name: str, namespace: str) -> None: ...
    def pod_phase(self, name: str, namespace: str) -> str: ...
    def job_counts(self, name: str, namespace: str) -> tuple[int, int]: ...
    def log_tail(self, name: str, namespace: str, lines: int) -> str: ...


def launch_and_wait(
    api: ClusterApi, launch: TuningLaunch, poll_s: float = 10.0, timeout_s: float | None = None
) -> None:
    """Creates the chief, Service and worker Job, waits for both to finish, and always deletes them.

    Raises:
        TuningError: The chief or the worker Job failed (its last log lines are included),
            the timeout passed, or the step was terminated.
    """
    manifests = render_manifests(launch)
    created: list[dict[str, Any]] = []
    chief, job = manifests[0]["metadata"]["name"], manifests[2]["metadata"]["name"]
    started, last = time.monotonic(), ""
    try:
        with sigterm_raises(TuningError("the tune step was terminated (SIGTERM); distributed tuning cancelled")):
            for manifest in manifests:
                api.create(manifest)
                created.append(manifest)
            while True:
                phase = api.pod_phase(chief, launch.namespace)
                succeeded, failed = api.job_counts(job, launch.namespace)
                line = f"tune: chief {phase.lower()}, workers {succeeded}/{launch.workers} done, {failed} failed"
                if line != last:
                    log.info("%s", line)
                    last = line
                if phase == "Failed":
                    tail = api.log_tail(chief, launch.namespace, 20)
                    raise TuningError(f"distributed tuning: chief pod {chief} failed:\n{tail}")
                if failed > WORKER_BACKOFF_LIMIT:
                    raise TuningError(f"distributed tuning: worker Job {job} failed {failed} times")
                if phase == "Succeeded" and succeeded >= launch.workers:
                    return
                if timeout_s is not None and time.monotonic() - started > timeout_s:
                    raise TuningError(f"distributed tuning did not finish within {timeout_s:.0f} s")
                time.sleep(poll_s)
    finally:
        for manifest in reversed(created):
            try:
                api.delete(manifest["kind"], manifest["metadata"]["name"], launch.namespace)
            except Exception as error:  # keep deleting the others; say what was left behind
                log.warning("tune: could not delete %s %s: %s", manifest["kind"], manifest["metadata"]["name"], error)


def run_kubernetes_tuning(
    train_dir: Any, validation_dir: Any, spec_dir: Any, search_space: dict[str, Any], tuning: TuningConfig,
    seed: int, location: str, gpus: int, api: KubernetesClusterApi | None = None,
) -> None:
    """Runs the distributed search as pods next to this one (see the module docstring).

    Args:
        gpus: GPUs per worker; 0 takes the tune step's own GPU limit.
    """
    if not shares_through_tensorflow(location):
        raise ConfigError(f"tune_backend kubernetes needs a gs:// tuner_root shared by the pods, got {location!r}")
    namespace = Path(NAMESPACE_FILE).read_text().strip()
    api = api or KubernetesClusterApi()
    placement = api.own_placement(namespace)
    if gpus:
        placement = dataclasses.replace(placement, gpus=gpus)
    inputs = stage_folders({artifacts.TRAIN: str(train_dir), artifacts.VALIDATION: str(validation_dir),
                            artifacts.INPUTS_SPEC_DIR: str(spec_dir)}, f"{location}/{artifacts.TUNER_INPUTS_DIR}")
    arguments = worker_arguments(search_space, tuning, seed, location, inputs=inputs)
    launch = TuningLaunch(f"tunepipe-tune-{uuid.uuid4().hex[:8]}", namespace, placement, tuning.workers, arguments)
    launch_and_wait(api, launch)
