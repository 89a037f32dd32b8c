"""The distributed tuner's launcher (src/tunepipe/execution/k8s/tuning.py, run by the one job runner
of src/tunepipe/execution/k8s/runner.py) against a real API server,
with the tune step's own identity: a TokenRequest token of `tunepipe-runner`, bound to a stand-in
of the step's pod, used through `load_incluster_config()` exactly as in that pod.

What the server proves here and no test of ours could: the Role of k8s/base is enough for every
call the launcher makes, and nothing more is granted; the restricted standard admits the chief and
the workers; kube-scheduler places them; kube-controller-manager's garbage collector removes the
chief, its Service, the worker Job and its pods when the step's pod is deleted, and its job
controller ends a worker Job that outlives `activeDeadlineSeconds`.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from kube_cluster import (  # pytest puts this folder on sys.path
    IMAGE,
    RUNNER,
    Cluster,
    Step,
    in_pod,
    launcher_api,
    restricted_pod,
    wait_until,
)

from tunepipe.config import TuningConfig
from tunepipe.errors import TuningError
from tunepipe.execution.k8s import tuning as k8s_tuning
from tunepipe.execution.k8s.pods import StepPod
from tunepipe.execution.k8s.runner import JobRunner, owned
from tunepipe.execution.tuner_processes import worker_arguments

pytestmark = pytest.mark.kube

TUNER_ROOT = "gs://tunepipe-kube-tests/tuner"  # never read: the pods here only have to exist
# (API group, resource, verb) the tuner and TrainJob launchers call, including the watch and list a
# follower would use: what k8s/base/role.yaml must grant, and all it may grant
LAUNCHER_CALLS = {
    *{("batch", "jobs", verb) for verb in ("create", "get", "list", "watch", "delete")},
    *{("", "pods", verb) for verb in ("create", "get", "list", "watch", "delete")},
    *{("", "pods/log", verb) for verb in ("get", "list", "watch")},
    *{("", "services", verb) for verb in ("create", "get", "list", "delete")},
    *{("trainer.kubeflow.org", "trainjobs", verb) for verb in ("create", "get", "delete")},
}


def _launch(step: Step, placement: StepPod, workers: int = 2) -> k8s_tuning.TuningLaunch:
    arguments = worker_arguments({}, TuningConfig(), 42, TUNER_ROOT, inputs=f"{TUNER_ROOT}/inputs")
    return k8s_tuning.TuningLaunch(f"tunepipe-tune-{uuid.uuid4().hex[:8]}", step.namespace, placement, workers,
                                   arguments)


def _pods(cluster: Cluster, ns: str, launch: str) -> list[dict[str, Any]]:
    return list(cluster.get("pods", "-n", ns, "-l", f"tunepipe/launch={launch}")["items"])


def test_the_launcher_reads_its_placement_from_the_steps_pod(cluster: Cluster, step: Step) -> None:
    _, placement = launcher_api(cluster, step)
    assert placement.image == IMAGE
    assert placement.service_account == RUNNER
    assert placement.owner is not None
    assert (placement.owner.name, placement.owner.uid) == (step.name, step.pod["metadata"]["uid"])


def test_the_launcher_creates_follows_and_deletes_the_tuner_with_the_steps_token(
    cluster: Cluster, step: Step
) -> None:
    api, placement = launcher_api(cluster, step)
    launch = _launch(step, placement)
    seen: dict[str, Any] = {"pods": {}, "service": False}
    stop = threading.Event()

    def observe() -> None:  # what the cluster holds while the launcher waits
        while not stop.is_set():
            for pod in _pods(cluster, step.namespace, launch.name):
                seen["pods"][pod["metadata"]["name"]] = pod
            seen["service"] |= cluster.exists("service", f"{launch.name}-chief", "-n", step.namespace)
            stop.wait(0.3)

    observer = threading.Thread(target=observe)
    observer.start()
    try:
        # Nothing here runs a real search (kwok's pods never end; on kind the search has no data), so
        # the launcher waits until its timeout, or until the chief fails, and then cleans up.
        with pytest.raises(TuningError):
            JobRunner(api, placement.owner, TuningError, poll_s=0.5, timeout_s=25).run(k8s_tuning.tuning_job(launch))
    finally:
        stop.set()
        observer.join()
    roles = sorted(pod["metadata"]["labels"][k8s_tuning.ROLE_LABEL] for pod in seen["pods"].values())
    assert roles == ["chief", "worker", "worker"], roles
    assert seen["service"]
    for pod in seen["pods"].values():  # admitted under `restricted`, placed by kube-scheduler
        assert pod["spec"].get("nodeName"), f"pod {pod['metadata']['name']} was never scheduled"
        assert pod["spec"]["serviceAccountName"] == RUNNER
        assert pod["spec"]["automountServiceAccountToken"] is False
    # the launcher deleted the chief, the Service and the Job; the Job's pods follow it
    wait_until(lambda: not _pods(cluster, step.namespace, launch.name), 60, f"pods of {launch.name} gone")
    assert not cluster.exists("service", f"{launch.name}-chief", "-n", step.namespace)
    assert not cluster.exists("job", f"{launch.name}-workers", "-n", step.namespace)


def test_the_launcher_fails_at_once_when_the_worker_job_fails(cluster: Cluster, step: Step) -> None:
    """The job controller fails the worker Job at its activeDeadlineSeconds (shortened here by an
    admin while the launcher waits) and deletes its pods; the chief, on a kwok node, keeps running,
    as a chief waiting for workers would. The launcher must end on the Job's Failed condition, not
    at its own timeout, and clean up."""
    if not cluster.kwok_nodes():
        pytest.skip("needs a chief that keeps running: a kwok node (`make cluster-up` has one; kind has none)")
    api, placement = launcher_api(cluster, step)
    launch = _launch(step, placement)
    job = f"{launch.name}-workers"
    patched: list[float] = []

    def shorten_the_deadline() -> None:
        wait_until(lambda: cluster.exists("job", job, "-n", step.namespace), 30, f"job {job} created")
        cluster.kubectl("patch", "job", job, "-n", step.namespace, "--type=merge",
                        "-p", '{"spec": {"activeDeadlineSeconds": 2}}')
        patched.append(time.monotonic())

    patcher = threading.Thread(target=shorten_the_deadline)
    patcher.start()
    try:
        with pytest.raises(TuningError, match=rf"worker Job {job} failed \(DeadlineExceeded"):
            JobRunner(api, placement.owner, TuningError, poll_s=0.5, timeout_s=180).run(k8s_tuning.tuning_job(launch))
    finally:
        patcher.join()
    assert patched, "the Job's deadline was never shortened"
    assert time.monotonic() - patched[0] < 60, "the launcher waited on after the Job had failed"
    wait_until(lambda: not _pods(cluster, step.namespace, launch.name), 60, f"pods of {launch.name} gone")
    assert not cluster.exists("job", job, "-n", step.namespace)


def test_the_runner_is_granted_exactly_what_the_launchers_call(cluster: Cluster, step: Step) -> None:
    """The API server's own account of what the token may do in its namespace (the grants every
    authenticated identity has, its self reviews, set aside) equals what the two launchers call:
    k8s/base/role.yaml gives no more, and nothing else in the cluster gives tunepipe-runner more."""
    from kubernetes import client

    with in_pod(cluster, step.token, step.namespace, step.mount):
        review = client.AuthorizationV1Api().create_self_subject_rules_review(
            {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectRulesReview",
             "spec": {"namespace": step.namespace}})
    granted = {(group, resource, verb) for rule in review.status.resource_rules
               for group in rule.api_groups or [] for resource in rule.resources or [] for verb in rule.verbs}
    everyone = {item for item in granted if item[0] in ("authorization.k8s.io", "authentication.k8s.io")}
    assert granted - everyone == LAUNCHER_CALLS


@pytest.mark.parametrize("call", [
    "list secrets", "create deployment", "patch pod", "create pod in another namespace", "list pods cluster-wide",
    "create rolebinding", "list trainjobs",
])
def test_a_call_outside_the_role_is_refused(cluster: Cluster, step: Step, call: str) -> None:
    from kubernetes import client

    ns = step.namespace
    with in_pod(cluster, step.token, ns, step.mount):
        core, apps, rbac = client.CoreV1Api(), client.AppsV1Api(), client.RbacAuthorizationV1Api()
        custom = client.CustomObjectsApi()
        calls: dict[str, Callable[[], Any]] = {
            "list secrets": lambda: core.list_namespaced_secret(ns),
            "create deployment": lambda: apps.create_namespaced_deployment(ns, {
                "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"},
                "spec": {"selector": {"matchLabels": {"a": "b"}}, "template": {
                    "metadata": {"labels": {"a": "b"}}, "spec": step.pod["spec"]}}}),
            "patch pod": lambda: core.patch_namespaced_pod(step.name, ns, {"metadata": {"labels": {"x": "y"}}}),
            "create pod in another namespace": lambda: core.create_namespaced_pod(
                "default", restricted_pod("x", "default", IMAGE, "default")),
            "list pods cluster-wide": lambda: core.list_pod_for_all_namespaces(),
            "create rolebinding": lambda: rbac.create_namespaced_role_binding(ns, {
                "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding", "metadata": {"name": "x"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "admin"},
                "subjects": [{"kind": "ServiceAccount", "name": RUNNER, "namespace": ns}]}),
            "list trainjobs": lambda: custom.list_namespaced_custom_object("trainer.kubeflow.org", "v1alpha1", ns,
                                                                           "trainjobs"),
        }
        with pytest.raises(client.ApiException) as refused:
            calls[call]()
    assert refused.value.status == 403, refused.value


def test_deleting_the_steps_pod_garbage_collects_the_chief_service_and_workers(cluster: Cluster, step: Step) -> None:
    api, placement = launcher_api(cluster, step)
    launch = _launch(step, placement)
    manifests = [owned(manifest, placement.owner) for manifest in k8s_tuning.render_manifests(launch)]
    for manifest in manifests:
        api.create(manifest)  # as the step: tunepipe-runner's token, owned as the job runner creates them
    wait_until(lambda: len(_pods(cluster, step.namespace, launch.name)) == 3, 60, "chief and 2 workers created")
    for manifest in manifests:
        owner = cluster.get(manifest["kind"], manifest["metadata"]["name"], "-n", step.namespace)
        assert [o["uid"] for o in owner["metadata"]["ownerReferences"]] == [step.pod["metadata"]["uid"]]
    cluster.kubectl("delete", "pod", step.name, "-n", step.namespace, "--wait=false")
    wait_until(lambda: not _pods(cluster, step.namespace, launch.name), 90,
               "the garbage collector deleting the chief and the workers' pods")
    for manifest in manifests:
        assert not cluster.exists(manifest["kind"], manifest["metadata"]["name"], "-n", step.namespace)


def test_active_deadline_ends_a_stuck_tuner(cluster: Cluster, step: Step) -> None:
    """The worker Job's deadline is the job controller's (real here); the chief Pod's is the kubelet's.

    kwok plays containers that never exit and enforces no pod deadline, so on a kwok node the chief's
    deadline is only checked as stored; on a real node (kind, or a later stage's kubelet) the pod
    must end as DeadlineExceeded.
    """
    api, placement = launcher_api(cluster, step)
    launch = _launch(step, placement)
    for manifest in k8s_tuning.render_manifests(launch):
        api.create(owned(manifest, placement.owner, deadline_s=5))  # the runner's stamp, with a 5 s deadline
    job = f"{launch.name}-workers"

    def deadline_exceeded() -> bool:
        conditions = cluster.get("job", job, "-n", step.namespace)["status"].get("conditions", [])
        return any(c["type"] == "Failed" and c["status"] == "True" and c["reason"] == "DeadlineExceeded"
                   for c in conditions)

    wait_until(deadline_exceeded, 60, f"job {job} failed with DeadlineExceeded")
    workers = f"tunepipe/launch={launch.name},{k8s_tuning.ROLE_LABEL}=worker"
    wait_until(lambda: not cluster.get("pods", "-n", step.namespace, "-l", workers)["items"], 60,
               "the job controller deleting the worker pods")
    chief = cluster.get("pod", f"{launch.name}-chief", "-n", step.namespace)
    assert chief["spec"]["activeDeadlineSeconds"] == 5
    if cluster.is_kwok_node(chief["spec"]["nodeName"]):
        assert chief["status"]["phase"] == "Running"  # kwok: nothing ends it; the Job's deadline above is real
    else:
        wait_until(lambda: cluster.get("pod", f"{launch.name}-chief", "-n", step.namespace)["status"].get("reason")
                   == "DeadlineExceeded", 60, "the kubelet ending the chief pod at its deadline")

