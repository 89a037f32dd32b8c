"""Distributed Hyperband on Kubernetes: a chief pod and Service plus an indexed Job of GPU workers.

The tune step (itself a pod of the pipeline run) creates, in its own namespace:

- a **chief** Pod running ``python -m tunepipe.execution.tuner_worker`` with
  ``KERASTUNER_TUNER_ID=chief``, serving Keras Tuner's oracle on port 8000;
- a **Service** that gives the chief a stable DNS name;
- an **indexed Job** of N worker pods (``completionMode: Indexed``); worker ``i`` gets
  ``KERASTUNER_TUNER_ID`` = ``i`` from the Job's completion-index annotation, and the chief's
  Service name and port.

Every pod has the tune step's own image, GPU request, node selector, tolerations and service
account (read from the step's pod, so compile-time placement and the run's identity, e.g. its
Workload Identity for ``gs://``, apply to the workers as well), and the ``restricted`` Pod
Security settings. The job runner (:mod:`.runner`) creates the three objects owned by the step's
pod and with its deadline, prints the chief's log and a progress line while it waits, and
deletes them whatever happens. It needs exactly the RBAC in ``k8s/base/role.yaml``: Jobs, Pods,
Services (and pod logs) in its own namespace.

The tuner directory must be ``gs://``: the pods share it through TensorFlow's file system
(Keras Tuner writes through ``tf.io.gfile`` on the TensorFlow backend), which reads ``gs://``
natively but not ``s3://`` (that needs the tensorflow-io plugin, not installed); the
decision is :func:`tunepipe.storage.stores.shares_through_tensorflow`. The step's input
folders are staged next to it (``<tuner directory>/inputs``) for the pods to download.
"""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.config import TuningConfig
from tunepipe.errors import ConfigError, TuningError
from tunepipe.execution.k8s.api import ClusterApi, KubernetesClusterApi
from tunepipe.execution.k8s.pods import GPU_RESOURCE, StepPod, read_step_pod, restricted_pod_spec, stage_folders
from tunepipe.execution.k8s.runner import Job, JobRunner, Progress
from tunepipe.execution.tuner_processes import WORKER_MODULE, worker_arguments
from tunepipe.identity import NAMESPACE_FILE
from tunepipe.storage.stores import shares_through_tensorflow

# The oracle's gRPC port; k8s/base/networkpolicy-tuner.yaml admits it only from the tuner's own pods.
ORACLE_PORT = 8000
# Labels of the chief and worker pods; the NetworkPolicy in k8s/base selects them (tests/k8s checks both agree).
APP_LABEL = "app.kubernetes.io/name"
TUNER_APP = "tunepipe-tuner"
ROLE_LABEL = "tunepipe/role"
LAUNCH_LABEL = "tunepipe/launch"
COMPLETION_INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"
# A worker pod that fails (preempted node, out of memory) is replaced this many times in all.
WORKER_BACKOFF_LIMIT = 6


@dataclass(frozen=True)
class TuningLaunch:
    """One distributed search: names, placement and the worker command's arguments.

    Attributes:
        name: Prefix of the three objects (unique per launch, DNS-safe).
        namespace: The tune step's namespace.
        step: Image, GPUs per worker, node selector, tolerations, service account, owner.
        workers: Worker pods (the Job's parallelism and completions).
        arguments: ``tunepipe.execution.tuner_worker`` arguments shared by the chief and workers,
            without ``--bind``.
    """

    name: str
    namespace: str
    step: StepPod
    workers: int
    arguments: list[str]

    @property
    def service_host(self) -> str:
        return f"{self.name}-chief.{self.namespace}.svc"

    @property
    def names(self) -> tuple[str, str]:
        """The chief Pod's (and Service's) name and the worker Job's."""
        return f"{self.name}-chief", f"{self.name}-workers"


def _pod_spec(launch: TuningLaunch, role: str, env: list[dict[str, Any]], gpus: int) -> dict[str, Any]:
    bind = f"0.0.0.0:{ORACLE_PORT}"  # only the chief binds; workers connect through the Service
    container: dict[str, Any] = {
        "name": role,
        "image": launch.step.image,
        "command": ["python", "-m", WORKER_MODULE],
        "args": [*launch.arguments, "--bind", bind],
        "env": [*env, {"name": "HOME", "value": "/tmp"}, {"name": "PYTHONUNBUFFERED", "value": "1"}],
    }
    if role == "chief":
        container["ports"] = [{"name": "oracle", "containerPort": ORACLE_PORT}]
    if gpus:
        container["resources"] = {"limits": {GPU_RESOURCE: gpus}}
    # the run's identity (GKE Workload Identity needs no token), but no API token: they never call it
    return restricted_pod_spec(launch.step, [container], restartPolicy="Never" if role == "chief" else "OnFailure",
                               automountServiceAccountToken=False)


def _env(tuner_id: dict[str, Any], oracle_ip: str) -> list[dict[str, Any]]:
    return [
        {"name": "KERASTUNER_TUNER_ID", **tuner_id},
        {"name": "KERASTUNER_ORACLE_IP", "value": oracle_ip},
        {"name": "KERASTUNER_ORACLE_PORT", "value": str(ORACLE_PORT)},
    ]


def render_manifests(launch: TuningLaunch) -> list[dict[str, Any]]:
    """The chief Pod, its Service and the indexed worker Job, as plain Kubernetes objects.

    Owner and deadline are the runner's to add (:func:`~tunepipe.execution.k8s.runner.owned`).
    """
    labels = {APP_LABEL: TUNER_APP, LAUNCH_LABEL: launch.name}
    chief_labels = {**labels, ROLE_LABEL: "chief"}
    chief_name, job_name = launch.names
    meta: dict[str, Any] = {"namespace": launch.namespace}
    chief = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": chief_name, "labels": chief_labels, **meta},
        # the chief only serves the oracle: no GPU
        "spec": _pod_spec(launch, "chief", _env({"value": "chief"}, "0.0.0.0"), gpus=0),
    }
    service = {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": chief_name, "labels": labels, **meta},
        "spec": {"selector": chief_labels, "ports": [{"name": "oracle", "port": ORACLE_PORT, "targetPort": "oracle"}]},
    }
    index = {"valueFrom": {"fieldRef": {"fieldPath": f"metadata.annotations['{COMPLETION_INDEX_ANNOTATION}']"}}}
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": job_name, "labels": labels, **meta},
        "spec": {
            "completionMode": "Indexed", "completions": launch.workers, "parallelism": launch.workers,
            "backoffLimit": WORKER_BACKOFF_LIMIT, "ttlSecondsAfterFinished": 3600,
            "template": {
                "metadata": {"labels": {**labels, ROLE_LABEL: "worker"}},
                "spec": _pod_spec(launch, "worker", _env(index, launch.service_host), launch.step.gpus),
            },
        },
    }
    return [chief, service, job]


def _failed_condition(status: dict[str, Any]) -> str:
    """``reason: message`` of a Job status's true ``Failed`` condition; empty while it has none.

    The job controller sets it when the Job as a whole has failed (``DeadlineExceeded`` at
    ``activeDeadlineSeconds``, ``BackoffLimitExceeded``, a pod failure policy) and deletes the
    running pods then, so the counts alone would not say so: the chief would wait for workers
    that no longer exist.
    """
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Failed" and condition.get("status") == "True":
            return f"{condition.get('reason') or 'Failed'}: {condition.get('message') or ''}".rstrip(": ")
    return ""


def progress(launch: TuningLaunch) -> Callable[[ClusterApi], Progress]:
    """How the runner reads the search's state: the chief's phase, the worker Job's counts and
    its ``Failed`` condition."""
    chief, job = launch.names

    def look(api: ClusterApi) -> Progress:
        pod, workers = api.read("Pod", chief, launch.namespace), api.read("Job", job, launch.namespace)
        if pod is None or workers is None:  # deleted by someone else, or evicted and collected
            return Progress(failed=f"{'chief pod ' + chief if pod is None else 'worker Job ' + job} is gone")
        phase = str((pod.get("status") or {}).get("phase") or "Pending")
        counts = workers.get("status") or {}
        succeeded, failed = int(counts.get("succeeded") or 0), int(counts.get("failed") or 0)
        line = f"chief {phase.lower()}, workers {succeeded}/{launch.workers} done, {failed} failed"
        if phase == "Failed":
            reason = (pod.get("status") or {}).get("reason")  # DeadlineExceeded, Evicted, ...
            return Progress(failed=f"chief pod {chief} failed" + (f" ({reason})" if reason else ""), line=line)
        ended = _failed_condition(counts)
        if ended:  # the job controller's verdict: its deadline, its backoff limit, a failure policy
            return Progress(failed=f"worker Job {job} failed ({ended})", line=line)
        if failed > WORKER_BACKOFF_LIMIT:
            return Progress(failed=f"worker Job {job} failed {failed} times", line=line)
        return Progress(done=phase == "Succeeded" and succeeded >= launch.workers, line=line)

    return look


def tuning_job(launch: TuningLaunch) -> Job:
    """The search as the runner runs it: its objects, their progress, the chief's log."""
    selector = f"{LAUNCH_LABEL}={launch.name},{ROLE_LABEL}=chief"
    return Job("tune", "distributed tuning", launch.namespace, render_manifests(launch), progress(launch),
               logs=selector, log_name="chief")


def run_kubernetes_tuning(
    train_dir: Any, validation_dir: Any, spec_dir: Any, search_space: dict[str, Any], tuning: TuningConfig,
    seed: int, location: str, workers: int, gpus: int, api: ClusterApi | None = None,
) -> None:
    """Runs the distributed search as pods next to this one (see the module docstring).

    Args:
        workers: Worker pods.
        gpus: GPUs per worker; 0 takes the tune step's own GPU limit.
    """
    if not shares_through_tensorflow(location):
        raise ConfigError("tuning.placement where cluster needs a gs:// tuner_root shared by the pods, "
                          f"got {location!r}")
    namespace = Path(NAMESPACE_FILE).read_text().strip()
    api = api or KubernetesClusterApi()
    step = read_step_pod(api, namespace, TuningError, "tuning.placement where cluster")
    if gpus:
        step = dataclasses.replace(step, gpus=gpus)
    inputs = stage_folders({artifacts.TRAIN: str(train_dir), artifacts.VALIDATION: str(validation_dir),
                            artifacts.INPUTS_SPEC_DIR: str(spec_dir)}, f"{location}/{artifacts.TUNER_INPUTS_DIR}")
    arguments = worker_arguments(search_space, tuning, seed, location, inputs=inputs)
    launch = TuningLaunch(f"tunepipe-tune-{uuid.uuid4().hex[:8]}", namespace, step, workers, arguments)
    JobRunner(api, step.owner, TuningError).run(tuning_job(launch))
