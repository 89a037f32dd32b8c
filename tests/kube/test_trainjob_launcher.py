"""The train step's TrainJob launcher (src/tunepipe/execution/k8s/training.py, run by the one job
runner) against a real API
server with Kubeflow Trainer's own CRDs installed (k8s/cluster/cluster.sh pins the release), with
the train step's identity: a TokenRequest token of `tunepipe-runner` bound to a stand-in step pod.

The TrainJob as the code renders it is checked against Trainer's CRD schema by the server (strict
field validation; nothing pruned), created, followed and deleted with the Role of k8s/base, and
garbage-collected with the step's pod. Trainer's controller and webhook are not installed here, so
no JobSet or pod is made from it and the TrainJob never completes; the launcher's wait ends at its
timeout.
"""

from __future__ import annotations

import dataclasses
import threading
import uuid
from typing import Any

import pytest
import yaml
from kube_cluster import Cluster, Step, assert_contains, in_pod, launcher_api, wait_until  # this folder is on sys.path

from tunepipe.errors import TrainingError
from tunepipe.execution.k8s import training as k8s_training
from tunepipe.execution.k8s.pods import StepPod
from tunepipe.execution.k8s.runner import JobRunner, owned

pytestmark = pytest.mark.kube

GROUP, VERSION = "trainer.kubeflow.org", "v1alpha1"


def _launch(step: Step, placement: StepPod) -> k8s_training.TrainingLaunch:
    # what a GPU pool's train step would hand on: a GPU per node, the pool's selector and toleration
    placement = dataclasses.replace(
        placement, gpus=1, node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}])
    arguments = ["--location", "gs://tunepipe-kube-tests/workers/x", "--seed", "42"]
    return k8s_training.TrainingLaunch(f"tunepipe-train-{uuid.uuid4().hex[:8]}", step.namespace, placement, 2,
                                       arguments)


def _created(launch: k8s_training.TrainingLaunch) -> dict[str, Any]:
    """The TrainJob as the job runner creates it: rendered, then owned by the step's pod and given
    the runner's deadline."""
    return owned(k8s_training.render_trainjob(launch), launch.step.owner)


def _trainjob(cluster: Cluster, ns: str, name: str) -> dict[str, Any] | None:
    if not cluster.exists("trainjob", name, "-n", ns):
        return None
    return cluster.get("trainjob", name, "-n", ns)


def test_the_rendered_trainjob_passes_trainers_crd_schema_strictly(
    cluster: Cluster, upstream_crds: tuple[str, ...], step: Step
) -> None:
    _, placement = launcher_api(cluster, step)
    manifest = _created(_launch(step, placement))
    checked = cluster.kubectl("create", "--dry-run=server", "--validate=strict", "-f", "-",
                              stdin=yaml.safe_dump(manifest), check=False)
    assert checked.returncode == 0, checked.stderr
    assert "unknown field" not in checked.stderr, checked.stderr


def test_the_launcher_creates_follows_and_deletes_the_trainjob_with_the_steps_token(
    cluster: Cluster, upstream_crds: tuple[str, ...], step: Step
) -> None:
    api, placement = launcher_api(cluster, step)
    launch = _launch(step, placement)
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def observe() -> None:
        while not stop.is_set() and not seen:
            found = _trainjob(cluster, step.namespace, launch.name)
            if found:
                seen.append(found)
            stop.wait(0.3)

    observer = threading.Thread(target=observe)
    observer.start()
    try:
        with pytest.raises(TrainingError, match="did not finish"):
            JobRunner(api, placement.owner, TrainingError, poll_s=0.5, timeout_s=15).run(
                k8s_training.training_job(launch))
    finally:
        stop.set()
        observer.join()
    assert seen, "the TrainJob never appeared"
    stored = seen[0]
    sent = _created(launch)
    assert_contains(stored["spec"], sent["spec"], "TrainJob.spec")  # Trainer's schema pruned nothing
    assert stored["metadata"]["ownerReferences"][0]["uid"] == step.pod["metadata"]["uid"]
    wait_until(lambda: _trainjob(cluster, step.namespace, launch.name) is None, 30, "the launcher deleting it")


def test_deleting_the_steps_pod_garbage_collects_the_trainjob(
    cluster: Cluster, upstream_crds: tuple[str, ...], step: Step
) -> None:
    api, placement = launcher_api(cluster, step)
    launch = _launch(step, placement)
    api.create(_created(launch))
    assert _trainjob(cluster, step.namespace, launch.name) is not None
    cluster.kubectl("delete", "pod", step.name, "-n", step.namespace, "--wait=false")
    wait_until(lambda: _trainjob(cluster, step.namespace, launch.name) is None, 90,
               "the garbage collector deleting the TrainJob")


@pytest.mark.parametrize("verb", ["list", "patch"])
def test_trainjob_calls_outside_the_role_are_refused(
    cluster: Cluster, upstream_crds: tuple[str, ...], step: Step, verb: str
) -> None:
    from kubernetes import client

    api, placement = launcher_api(cluster, step)
    launch = _launch(step, placement)
    api.create(_created(launch))
    with in_pod(cluster, step.token, step.namespace, step.mount):
        custom = client.CustomObjectsApi()
        with pytest.raises(client.ApiException) as refused:
            if verb == "list":
                custom.list_namespaced_custom_object(GROUP, VERSION, step.namespace, "trainjobs")
            else:
                custom.patch_namespaced_custom_object(GROUP, VERSION, step.namespace, "trainjobs", launch.name,
                                                      {"metadata": {"labels": {"x": "y"}}})
    assert refused.value.status == 403
