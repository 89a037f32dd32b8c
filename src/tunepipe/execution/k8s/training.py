"""Multi-worker final training on the cluster's training engine: a Kubeflow Trainer ``TrainJob``.

With ``training.placement`` ``where: cluster`` the train step (itself a pod of the pipeline run) does not train:
it stages its inputs in the object store, has the job runner (:mod:`.runner`) create one
``TrainJob`` (``trainer.kubeflow.org/v1alpha1``) of ``workers`` nodes on Kubeflow Trainer's
built-in ``jax-distributed`` ClusterTrainingRuntime, follow it while printing process 0's log and
delete it whatever happens (success, failure, an exception, SIGTERM from a cancelled run), and
reads the model that process 0 wrote back from the object store. Each node runs
``python -m tunepipe.execution.jax_worker`` (Keras' ``DataParallel`` on JAX).

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
read-only root and an ``emptyDir`` at /tmp. The runner names the step's pod as the ``TrainJob``'s
owner, so Kubernetes' garbage collector deletes it (and Trainer's JobSet and pods with it) when
that pod goes, and gives it the runner's deadline. RBAC: ``trainjobs``
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
import tempfile
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.config import SearchSpace, TrainingConfig
from tunepipe.errors import ConfigError, TrainingError
from tunepipe.execution import jax_worker
from tunepipe.execution.k8s.api import KINDS, ClusterApi, KubernetesClusterApi
from tunepipe.execution.k8s.pods import GPU_RESOURCE, StepPod, read_step_pod, restricted_pod_spec, stage_folders
from tunepipe.execution.k8s.runner import Job, JobRunner, Progress
from tunepipe.identity import NAMESPACE_FILE
from tunepipe.modelling.train import TrainingResult
from tunepipe.storage.stores import is_remote, parse
from tunepipe.storage.tuner_state import StoreSync

# Kubeflow Trainer's built-in JAX runtime (manifests/base/runtimes/jax_distributed.yaml); its
# replicated Job and container are both named "node".
RUNTIME, NODE = "jax-distributed", "node"
TRAINER_GROUP, TRAINER_VERSION, _ = KINDS["TrainJob"]
PATCH_MANAGER = "tunepipe.dev/train-step"
APP_LABEL, TRAINER_APP = "app.kubernetes.io/name", "tunepipe-trainer"
# Labels JobSet puts on the pods Trainer creates: which TrainJob (its JobSet has the same name), which process.
JOBSET_LABEL, INDEX_LABEL = "jobset.sigs.k8s.io/jobset-name", "batch.kubernetes.io/job-completion-index"


@dataclass(frozen=True)
class TrainingLaunch:
    """One multi-worker training: names, placement and the worker command's arguments.

    Attributes:
        name: The TrainJob's name (unique per launch, DNS-safe).
        namespace: The train step's namespace.
        step: Image, GPUs per node, node selector, tolerations, service account, owner.
        workers: Nodes (JAX processes).
        arguments: ``tunepipe.execution.jax_worker`` arguments.
    """

    name: str
    namespace: str
    step: StepPod
    workers: int
    arguments: list[str]


def _pod_patch(step: StepPod) -> dict[str, Any]:
    """The runtime patch of the node pods: the runtime's container, made restricted, on the step's nodes."""
    return {"spec": {"template": {"spec": restricted_pod_spec(step, [{"name": NODE}])}}}


def render_trainjob(launch: TrainingLaunch) -> dict[str, Any]:
    """The TrainJob of ``launch``, as a plain object (tests/k8s validates it against Trainer's CRD).

    Owner and deadline are the runner's to add (:func:`~tunepipe.execution.k8s.runner.owned`).
    """
    trainer: dict[str, Any] = {
        "image": launch.step.image,
        "command": ["python", "-m", jax_worker.MODULE],
        "args": list(launch.arguments),
        "env": [{"name": "KERAS_BACKEND", "value": "jax"}, {"name": "HOME", "value": "/tmp"},
                {"name": "PYTHONUNBUFFERED", "value": "1"}],
        "numNodes": launch.workers,
    }
    if launch.step.gpus:
        trainer["resourcesPerNode"] = {"limits": {GPU_RESOURCE: launch.step.gpus}}
    patch = {"manager": PATCH_MANAGER, "trainingRuntimeSpec": {"template": {"spec": {
        "replicatedJobs": [{"name": NODE, "template": _pod_patch(launch.step)}]}}}}
    return {
        "apiVersion": f"{TRAINER_GROUP}/{TRAINER_VERSION}", "kind": "TrainJob",
        "metadata": {"name": launch.name, "namespace": launch.namespace, "labels": {APP_LABEL: TRAINER_APP}},
        "spec": {
            "runtimeRef": {"name": RUNTIME, "apiGroup": TRAINER_GROUP, "kind": "ClusterTrainingRuntime"},
            "trainer": trainer, "runtimePatches": [patch],
        },
    }


def progress(launch: TrainingLaunch) -> Callable[[ClusterApi], Progress]:
    """How the runner reads the TrainJob's state: its ``Complete`` or ``Failed`` condition."""

    def look(api: ClusterApi) -> Progress:
        found = api.read("TrainJob", launch.name, launch.namespace)
        if found is None:  # deleted by someone else
            return Progress(failed=f"TrainJob {launch.name} is gone")
        for condition in (found.get("status") or {}).get("conditions") or []:
            if condition.get("status") != "True":
                continue
            if condition.get("type") == "Complete":
                return Progress(done=True)
            if condition.get("type") == "Failed":
                reason = f"{condition.get('reason', '')}: {condition.get('message', '')}"
                return Progress(failed=f"TrainJob {launch.name} failed ({reason})")
        return Progress()

    return look


def training_job(launch: TrainingLaunch) -> Job:
    """The TrainJob as the runner runs it: the object, its conditions, process 0's log."""
    selector = f"{JOBSET_LABEL}={launch.name},{INDEX_LABEL}=0"
    return Job("train", "multi-worker training", launch.namespace, [render_trainjob(launch)], progress(launch),
               logs=selector, log_name=launch.name)


def check_location(location: str, workers: int) -> None:
    """Refuses a staging location the worker pods cannot reach (see the module docstring).

    Raises:
        ConfigError: ``location`` is a local path.
    """
    if not is_remote(location):
        raise ConfigError(f"training.placement cluster ({workers} workers) trains in pods of a Kubeflow Trainer "
                          "TrainJob, which share data through the object store: set tuner_root to gs:// or s3://, "
                          f"got {location!r}")
    parse(location, "tuner_root: ", ConfigError)


def train_on_cluster(
    inputs: dict[str, Any], hyperparameters_dir: Any, training: TrainingConfig, space: SearchSpace, seed: int,
    location: str, workers: int, api: ClusterApi | None = None,
) -> TrainingResult:
    """What the train step runs instead of :func:`~tunepipe.modelling.train.train_final` when its
    placement is the cluster: the model the TrainJob trained, its history and best epoch.

    Args:
        inputs: The train step's ``train``, ``validation`` and ``preprocessing`` folders, by those names.
        hyperparameters_dir: The folder holding the best hyperparameters.
        workers: The TrainJob's nodes.

    Raises:
        ConfigError: This image has no JAX, so neither would the worker pods, which run it.
    """
    import keras

    if importlib.util.find_spec("jax") is None:
        raise ConfigError("training.placement cluster runs its workers in this step's image, which has no JAX; "
                          "build the image with the multiworker extra (pip install 'tunepipe[multiworker]')")
    folders = {name: str(folder) for name, folder in inputs.items()}
    folders[jax_worker.BEST] = str(hyperparameters_dir)
    with tempfile.TemporaryDirectory(prefix="tunepipe-workers-") as scratch:
        model_path, result = run_kubernetes_training(folders, training, space, seed, location, workers, Path(scratch),
                                                     api)
        model = keras.models.load_model(model_path)
    return TrainingResult(model, result["history"], int(result[artifacts.META_BEST_EPOCH]),
                          replicas_in_sync=int(result["processes"]))


def run_kubernetes_training(
    folders: dict[str, str], training: TrainingConfig, space: SearchSpace, seed: int, location: str, workers: int,
    scratch: Path, api: ClusterApi | None = None,
) -> tuple[Path, dict[str, Any]]:
    """Trains on a TrainJob of ``workers`` nodes; the downloaded model and the workers' result.

    Args:
        folders: The local ``train``, ``validation``, ``preprocessing`` and ``best`` (best
            hyperparameters) folders, by those names.
        location: The object-store prefix inputs are staged under and the model comes back to
            (the train step passes its backup location under ``tuner_root``).
        scratch: A local folder the model and :data:`~tunepipe.artifacts.WORKERS_RESULT_FILE` are downloaded to.
        api: The cluster API (default: :class:`KubernetesClusterApi` in the pod).
    """
    check_location(location, workers)
    namespace = Path(NAMESPACE_FILE).read_text().strip()
    api = api or KubernetesClusterApi()
    step = read_step_pod(api, namespace, TrainingError, f"training.placement cluster ({workers} workers)")
    name = f"tunepipe-train-{uuid.uuid4().hex[:8]}"
    staging = f"{location.rstrip('/')}/workers/{name}"
    stage_folders(folders, f"{staging}/{jax_worker.INPUTS}")
    arguments = ["--location", staging, "--training", training.model_dump_json(),
                 "--search-space", space.model_dump_json(), "--seed", str(seed), *jax_worker.engine_arguments()]
    launch = TrainingLaunch(name, namespace, step, workers, arguments)
    JobRunner(api, step.owner, TrainingError).run(training_job(launch))
    StoreSync(f"{staging}/{jax_worker.OUTPUT}").download_all(scratch)
    result = json.loads((scratch / artifacts.WORKERS_RESULT_FILE).read_text())
    return scratch / artifacts.MODEL_FILE, result
