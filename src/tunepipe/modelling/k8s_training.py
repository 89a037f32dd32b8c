"""Multi-worker final training on the cluster's training engine: a Kubeflow Trainer ``TrainJob``.

With ``training.workers`` > 1 the train step (itself a pod of the pipeline run) does not train:
it stages its inputs in the object store, creates one ``TrainJob``
(``trainer.kubeflow.org/v1alpha1``) of ``workers`` nodes on Kubeflow Trainer's built-in
``jax-distributed`` ClusterTrainingRuntime, follows it while printing process 0's log, deletes
it whatever happens (success, failure, an exception, SIGTERM from a cancelled run), and reads the
model that process 0 wrote back from the object store. Each node runs
``python -m tunepipe.modelling.jax_worker`` (Keras' ``DataParallel`` on JAX).

Why Kubeflow Trainer and not the older Training Operator: the multi-worker path that works
with Keras 3 is JAX's (docs/tuning.md has the evidence; ``MultiWorkerMirroredStrategy`` fails
in Keras 3.15's ``fit`` with TensorFlow 2.21), so a ``TFJob``, which only sets ``TF_CONFIG``, is
of no use. Trainer's JAX plugin (``pkg/runtime/framework/plugins/jax/jax.go``) sets exactly what
``jax.distributed.initialize`` takes: ``JAX_COORDINATOR_ADDRESS`` (node 0's pod, port 29500),
``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` (the Job completion index). The Training Operator's
``JAXJob`` (v1.9) would do the same, but that operator is Kubeflow's legacy v1 API, superseded by
Trainer v2; a cluster with only the old operator is not supported here.

What the ``TrainJob`` sets: the runtime's node container gets the step's image, the worker
command, ``KERAS_BACKEND=jax`` and the step's GPU limit per node (``trainer``); a runtime patch
(``runtimePatches``, manager :data:`PATCH_MANAGER`) gives the node pods the step's service
account, node selector and tolerations and the ``restricted`` Pod Security settings with a
read-only root and an ``emptyDir`` at /tmp. The ``TrainJob`` names the step's pod as its owner,
so Kubernetes' garbage collector deletes it (and Trainer's JobSet and pods with it) when that
pod goes, and it fails after :data:`ACTIVE_DEADLINE_S` even if nobody deletes it. RBAC: ``trainjobs``
create/get/delete in the step's namespace, plus ``pods`` list and ``pods/log`` get
(``k8s/base/role.yaml``).

The train step's ``tuner_root`` must be ``gs://`` or ``s3://``: the pods download the staged
inputs and upload the model through tunepipe's own store clients
(:class:`~tunepipe.storage.tuner_state.StoreSync`), so unlike the tune step's pods (which
share Keras Tuner's directory through TensorFlow's file system, ``gs://`` only) both schemes work.
A local path is refused: the pods cannot see the step's disk.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from tunepipe import artifacts
from tunepipe.config import SearchSpace, TrainingConfig
from tunepipe.errors import ConfigError, TrainingError
from tunepipe.identity import NAMESPACE_FILE
from tunepipe.modelling import jax_worker
from tunepipe.modelling.k8s_cluster import (
    GPU_RESOURCE,
    SCRATCH_MOUNT,
    SCRATCH_VOLUME,
    TRAINER_GROUP,
    TRAINER_VERSION,
    KubernetesClusterApi,
    Placement,
    container_security_context,
    owned_metadata,
    pod_security_context,
    sigterm_raises,
    stage_folders,
)
from tunepipe.modelling.train import TrainingResult
from tunepipe.storage.stores import is_remote, parse
from tunepipe.storage.tuner_state import StoreSync

log = logging.getLogger(__name__)

# Kubeflow Trainer's built-in JAX runtime (manifests/base/runtimes/jax_distributed.yaml); its
# replicated Job and container are both named "node".
RUNTIME, NODE = "jax-distributed", "node"
PATCH_MANAGER = "tunepipe.dev/train-step"
APP_LABEL, TRAINER_APP = "app.kubernetes.io/name", "tunepipe-trainer"
# Labels JobSet puts on the pods Trainer creates: which TrainJob (its JobSet has the same name), which process.
JOBSET_LABEL, INDEX_LABEL = "jobset.sigs.k8s.io/jobset-name", "batch.kubernetes.io/job-completion-index"
# 24 h: a backstop for GPU pods whose step died without deleting them (as the tune step's pods).
ACTIVE_DEADLINE_S = 24 * 3600
FAILURE_LOG_LINES = 20


@dataclass(frozen=True)
class TrainingLaunch:
    """One multi-worker training: names, placement and the worker command's arguments.

    Attributes:
        name: The TrainJob's name (unique per launch, DNS-safe).
        namespace: The train step's namespace.
        placement: Image, GPUs per node, node selector, tolerations, service account, owner.
        workers: Nodes (JAX processes).
        arguments: ``tunepipe.modelling.jax_worker`` arguments.
    """

    name: str
    namespace: str
    placement: Placement
    workers: int
    arguments: list[str]


def _pod_patch(placement: Placement) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "serviceAccountName": placement.service_account,
        "securityContext": pod_security_context(),
        "volumes": [dict(SCRATCH_VOLUME)],
        "containers": [{"name": NODE, "securityContext": container_security_context(),
                        "volumeMounts": [dict(SCRATCH_MOUNT)]}],
    }
    if placement.node_selector:
        spec["nodeSelector"] = dict(placement.node_selector)
    if placement.tolerations:
        spec["tolerations"] = list(placement.tolerations)
    return {"spec": {"template": {"spec": spec}}}


def render_trainjob(launch: TrainingLaunch) -> dict[str, Any]:
    """The TrainJob of ``launch``, as a plain object (tests/k8s validates it against Trainer's CRD)."""
    trainer: dict[str, Any] = {
        "image": launch.placement.image,
        "command": ["python", "-m", jax_worker.MODULE],
        "args": list(launch.arguments),
        "env": [{"name": "KERAS_BACKEND", "value": "jax"}, {"name": "HOME", "value": "/tmp"},
                {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "numNodes": launch.workers,
    }
    if launch.placement.gpus:
        trainer["resourcesPerNode"] = {"limits": {GPU_RESOURCE: launch.placement.gpus}}
    patch = {"manager": PATCH_MANAGER, "trainingRuntimeSpec": {"template": {"spec": {
        "replicatedJobs": [{"name": NODE, "template": _pod_patch(launch.placement)}]}}}}
    return {
        "apiVersion": f"{TRAINER_GROUP}/{TRAINER_VERSION}", "kind": "TrainJob",
        "metadata": owned_metadata(launch.name, launch.namespace, {APP_LABEL: TRAINER_APP}, launch.placement),
        "spec": {
            "runtimeRef": {"name": RUNTIME, "apiGroup": TRAINER_GROUP, "kind": "ClusterTrainingRuntime"},
            "trainer": trainer, "runtimePatches": [patch], "activeDeadlineSeconds": ACTIVE_DEADLINE_S,
        },
    }


class TrainJobApi(Protocol):
    """The Kubernetes calls this launcher makes (a fake in tests, :class:`KubernetesClusterApi` here)."""

    def create(self, manifest: dict[str, Any]) -> None: ...
    def delete(self, kind: str, name: str, namespace: str) -> None: ...
    def conditions(self, kind: str, name: str, namespace: str) -> list[dict[str, Any]]: ...
    def pod_names(self, selector: str, namespace: str) -> list[str]: ...
    def log_lines(self, name: str, namespace: str) -> list[str]: ...


def _state(conditions: list[dict[str, Any]]) -> tuple[str, str]:
    """``("Complete" | "Failed" | "", message)`` from a TrainJob's status conditions."""
    for condition in conditions:
        if condition.get("type") in ("Complete", "Failed") and condition.get("status") == "True":
            return str(condition["type"]), f"{condition.get('reason', '')}: {condition.get('message', '')}"
    return "", ""


class _LogFollower:
    """Prints process 0's log lines not printed yet (Kubernetes timestamps each line; RFC 3339 sorts)."""

    def __init__(self, api: TrainJobApi, launch: TrainingLaunch) -> None:
        self.api, self.launch, self.after = api, launch, ""
        self.selector = f"{JOBSET_LABEL}={launch.name},{INDEX_LABEL}=0"
        self.recent: list[str] = []

    def follow(self) -> None:
        pods = self.api.pod_names(self.selector, self.launch.namespace)
        if not pods:
            return
        for line in self.api.log_lines(pods[-1], self.launch.namespace):  # the newest: a restarted pod
            stamp, _, text = line.partition(" ")
            if stamp > self.after:
                self.after = stamp
                log.info("train: [%s] %s", self.launch.name, text)
                self.recent = [*self.recent, text][-FAILURE_LOG_LINES:]


def launch_and_wait(api: TrainJobApi, launch: TrainingLaunch, poll_s: float = 10.0,
                    timeout_s: float | None = None) -> None:
    """Creates the TrainJob, follows it to Complete while printing its log, and always deletes it.

    Raises:
        TrainingError: The TrainJob failed (its reason and process 0's last log lines are
            included), the timeout passed, or the step was terminated.
    """
    manifest, created = render_trainjob(launch), False
    follower, started = _LogFollower(api, launch), time.monotonic()
    try:
        with sigterm_raises(TrainingError("the train step was terminated (SIGTERM); multi-worker training cancelled")):
            api.create(manifest)
            created = True
            log.info("train: TrainJob %s created: %d workers on runtime %s", launch.name, launch.workers, RUNTIME)
            while True:
                follower.follow()
                state, message = _state(api.conditions("TrainJob", launch.name, launch.namespace))
                if state == "Complete":
                    return
                if state == "Failed":
                    tail = "\n".join(follower.recent)
                    raise TrainingError(f"multi-worker training: TrainJob {launch.name} failed ({message}); "
                                        f"process 0's last log lines:\n{tail}")
                if timeout_s is not None and time.monotonic() - started > timeout_s:
                    raise TrainingError(f"multi-worker training: TrainJob {launch.name} did not finish "
                                        f"within {timeout_s:.0f} s")
                time.sleep(poll_s)
    finally:
        if created:
            try:
                api.delete("TrainJob", launch.name, launch.namespace)
            except Exception as error:  # say what was left behind; the owner reference still collects it
                log.warning("train: could not delete TrainJob %s: %s", launch.name, error)


def check_location(location: str, workers: int) -> None:
    """Refuses a staging location the worker pods cannot reach (see the module docstring).

    Raises:
        ConfigError: ``location`` is a local path.
    """
    if not is_remote(location):
        raise ConfigError(f"training.workers {workers} trains in pods of a Kubeflow Trainer TrainJob, which "
                          f"share data through the object store: set tuner_root to gs:// or s3://, got {location!r}")
    parse(location, "tuner_root: ", ConfigError)


def train_on_cluster(
    inputs: dict[str, Any], hyperparameters_dir: Any, training: TrainingConfig, space: SearchSpace, seed: int,
    location: str, api: Any = None,
) -> TrainingResult:
    """What the train step calls instead of :func:`~tunepipe.modelling.train.train_final` when
    ``training.workers`` > 1: the model the TrainJob trained, its history and best epoch.

    Args:
        inputs: The train step's ``train``, ``validation`` and ``preprocessing`` folders, by those names.
        hyperparameters_dir: The folder holding the best hyperparameters.

    Raises:
        ConfigError: This image has no JAX, so neither would the worker pods, which run it.
    """
    import keras

    if importlib.util.find_spec("jax") is None:
        raise ConfigError("training.workers > 1 runs its workers in this step's image, which has no JAX; "
                          "build the image with the multiworker extra (pip install 'tunepipe[multiworker]')")
    folders = {name: str(folder) for name, folder in inputs.items()}
    folders[jax_worker.BEST] = str(hyperparameters_dir)
    with tempfile.TemporaryDirectory(prefix="tunepipe-workers-") as scratch:
        model_path, result = run_kubernetes_training(folders, training, space, seed, location, Path(scratch), api)
        model = keras.models.load_model(model_path)
    return TrainingResult(model, result["history"], int(result[artifacts.META_BEST_EPOCH]),
                          replicas_in_sync=int(result["processes"]))


def run_kubernetes_training(
    folders: dict[str, str], training: TrainingConfig, space: SearchSpace, seed: int, location: str,
    scratch: Path, api: Any = None,
) -> tuple[Path, dict[str, Any]]:
    """Trains on a TrainJob of ``training.workers`` nodes; the downloaded model and the workers' result.

    Args:
        folders: The local ``train``, ``validation``, ``preprocessing`` and ``best`` (best
            hyperparameters) folders, by those names.
        location: The object-store prefix inputs are staged under and the model comes back to
            (the train step passes its backup location under ``tuner_root``).
        scratch: A local folder the model and :data:`~tunepipe.artifacts.WORKERS_RESULT_FILE` are downloaded to.
        api: The cluster API (default: :class:`KubernetesClusterApi` in the pod).
    """
    check_location(location, training.workers)
    namespace = Path(NAMESPACE_FILE).read_text().strip()
    api = api or KubernetesClusterApi()
    placement = api.own_placement(namespace, TrainingError, f"training.workers {training.workers}")
    name = f"tunepipe-train-{uuid.uuid4().hex[:8]}"
    staging = f"{location.rstrip('/')}/workers/{name}"
    stage_folders(folders, f"{staging}/{jax_worker.INPUTS}")
    arguments = ["--location", staging, "--training", training.model_dump_json(),
                 "--search-space", space.model_dump_json(), "--seed", str(seed), *jax_worker.engine_arguments()]
    launch_and_wait(api, TrainingLaunch(name, namespace, placement, training.workers, arguments))
    StoreSync(f"{staging}/{jax_worker.OUTPUT}").download_all(scratch)
    result = json.loads((scratch / artifacts.WORKERS_RESULT_FILE).read_text())
    return scratch / artifacts.MODEL_FILE, result
