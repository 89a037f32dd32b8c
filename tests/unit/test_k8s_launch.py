"""The Kubernetes launcher's create / wait / clean-up logic, against a fake cluster API."""

from __future__ import annotations

import dataclasses
import os
import signal
from typing import Any

import pytest

from tunepipe.errors import TuningError
from tunepipe.modelling.k8s_tuning import (
    ACTIVE_DEADLINE_S,
    OwnerPod,
    Placement,
    TuningLaunch,
    launch_and_wait,
    render_manifests,
)

pytestmark = pytest.mark.unit
LAUNCH = TuningLaunch("tunepipe-tune-test", "ns", Placement("img:1", 1), 2, ["--seed", "0"])


class FakeCluster:
    """Records calls; the chief and the Job progress through scripted states, one per poll."""

    def __init__(self, phases: list[str], jobs: list[tuple[int, int]], fail_on_poll: int | None = None) -> None:
        self.phases, self.jobs, self.fail_on_poll = phases, jobs, fail_on_poll
        self.calls: list[tuple[str, ...]] = []
        self.polls = 0
        self.alive: set[tuple[str, str]] = set()

    def create(self, manifest: dict[str, Any]) -> None:
        self.calls.append(("create", manifest["kind"], manifest["metadata"]["name"]))
        self.alive.add((manifest["kind"], manifest["metadata"]["name"]))

    def delete(self, kind: str, name: str, namespace: str) -> None:
        self.calls.append(("delete", kind, name))
        self.alive.discard((kind, name))

    def pod_phase(self, name: str, namespace: str) -> str:
        self.polls += 1
        if self.fail_on_poll == self.polls:
            raise ConnectionError("API server went away")
        return self.phases[min(self.polls, len(self.phases)) - 1]

    def job_counts(self, name: str, namespace: str) -> tuple[int, int]:
        return self.jobs[min(self.polls, len(self.jobs)) - 1]

    def log_tail(self, name: str, namespace: str, lines: int) -> str:
        return "Traceback ...\nRuntimeError: oracle crashed"


def test_success_creates_three_objects_waits_and_cleans_up() -> None:
    cluster = FakeCluster(["Pending", "Running", "Running", "Succeeded"], [(0, 0), (0, 0), (1, 0), (2, 0)])
    launch_and_wait(cluster, LAUNCH, poll_s=0)
    created = [c for c in cluster.calls if c[0] == "create"]
    assert [c[1] for c in created] == ["Pod", "Service", "Job"]
    assert cluster.polls == 4  # waited until the chief succeeded and both workers finished
    assert cluster.alive == set()


def test_chief_failure_raises_with_its_log_and_cleans_up() -> None:
    cluster = FakeCluster(["Running", "Failed"], [(0, 0)])
    with pytest.raises(TuningError, match=r"chief pod tunepipe-tune-test-chief failed:[\s\S]*oracle crashed"):
        launch_and_wait(cluster, LAUNCH, poll_s=0)
    assert cluster.alive == set()
    assert [c for c in cluster.calls if c[0] == "delete"] == [
        ("delete", "Job", "tunepipe-tune-test-workers"), ("delete", "Service", "tunepipe-tune-test-chief"),
        ("delete", "Pod", "tunepipe-tune-test-chief"),
    ]


def test_worker_job_failures_raise_and_clean_up() -> None:
    cluster = FakeCluster(["Running"], [(0, 7)])
    with pytest.raises(TuningError, match="worker Job tunepipe-tune-test-workers failed 7 times"):
        launch_and_wait(cluster, LAUNCH, poll_s=0)
    assert cluster.alive == set()


def test_an_exception_while_waiting_still_cleans_up() -> None:
    cluster = FakeCluster(["Running"], [(0, 0)], fail_on_poll=2)
    with pytest.raises(ConnectionError):
        launch_and_wait(cluster, LAUNCH, poll_s=0)
    assert cluster.alive == set()


def test_timeout_raises_and_cleans_up() -> None:
    cluster = FakeCluster(["Running"], [(0, 0)])
    with pytest.raises(TuningError, match="did not finish within"):
        launch_and_wait(cluster, LAUNCH, poll_s=0.01, timeout_s=0.05)
    assert cluster.alive == set()


def test_a_failed_create_deletes_what_was_created() -> None:
    class FailingJobCreate(FakeCluster):
        def create(self, manifest: dict[str, Any]) -> None:
            if manifest["kind"] == "Job":
                raise PermissionError("jobs.batch is forbidden")
            super().create(manifest)

    cluster = FailingJobCreate(["Running"], [(0, 0)])
    with pytest.raises(PermissionError):
        launch_and_wait(cluster, LAUNCH, poll_s=0)
    assert cluster.alive == set()
    assert ("delete", "Job", "tunepipe-tune-test-workers") not in cluster.calls


def test_sigterm_from_a_cancelled_run_cleans_up() -> None:
    class Cancelled(FakeCluster):
        def pod_phase(self, name: str, namespace: str) -> str:
            phase = super().pod_phase(name, namespace)
            if self.polls == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # what the kubelet sends when the run is cancelled
            return phase

    cluster = Cancelled(["Running"], [(0, 0)])
    with pytest.raises(TuningError, match="SIGTERM"):
        launch_and_wait(cluster, LAUNCH, poll_s=0.01)
    assert cluster.alive == set()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the step's own handler is back


def test_workers_inherit_the_tune_pods_placement() -> None:
    """Image, GPU limit, node selector and tolerations come from the step's own pod (its "main" container)."""
    from kubernetes import client

    from tunepipe.modelling.k8s_tuning import KubernetesClusterApi

    pod = client.V1Pod(metadata=client.V1ObjectMeta(name="run-abc-tune", uid="1234-uid"), spec=client.V1PodSpec(
        service_account_name="tunepipe-runner",
        containers=[
            client.V1Container(name="wait", image="argoexec:v3"),
            client.V1Container(name="main", image="reg/tunepipe-gpu:0.1.0",
                               resources=client.V1ResourceRequirements(limits={"nvidia.com/gpu": "2"})),
        ],
        node_selector={"cloud.google.com/gke-accelerator": "nvidia-l4"},
        tolerations=[
            client.V1Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule"),
            client.V1Toleration(key="node.kubernetes.io/not-ready", operator="Exists", effect="NoExecute",
                                toleration_seconds=300),
        ],
    ))

    class FakeCore:
        def read_namespaced_pod(self, name: str, namespace: str) -> client.V1Pod:
            assert namespace == "team-a"
            return pod

    api = object.__new__(KubernetesClusterApi)
    api.core = FakeCore()
    placement = api.own_placement("team-a")
    assert placement == Placement(
        "reg/tunepipe-gpu:0.1.0", 2, {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "tunepipe-runner", OwnerPod("run-abc-tune", "1234-uid"),
    )


def test_tuner_objects_run_as_the_steps_account_are_owned_by_its_pod_and_have_a_deadline() -> None:
    owner = OwnerPod("run-abc-tune", "1234-uid")
    launch = dataclasses.replace(LAUNCH, placement=Placement("img:1", 1, service_account="tunepipe-runner",
                                                             owner=owner))
    chief, service, job = render_manifests(launch)
    reference = {"apiVersion": "v1", "kind": "Pod", "name": "run-abc-tune", "uid": "1234-uid",
                 "blockOwnerDeletion": False}
    for manifest in (chief, service, job):
        assert manifest["metadata"]["ownerReferences"] == [reference]
    for spec in (chief["spec"], job["spec"]["template"]["spec"]):
        assert spec["serviceAccountName"] == "tunepipe-runner"
    assert chief["spec"]["activeDeadlineSeconds"] == job["spec"]["activeDeadlineSeconds"] == ACTIVE_DEADLINE_S
    cluster = FakeCluster(["Succeeded"], [(2, 0)])
    launch_and_wait(cluster, launch, poll_s=0)  # the launcher creates exactly these
    assert [c[1:] for c in cluster.calls if c[0] == "create"] == [
        (m["kind"], m["metadata"]["name"]) for m in (chief, service, job)]


def _cluster_api_whose_own_pod_read_fails(status: int, reason: str):  # type: ignore[no-untyped-def]
    from kubernetes.client.exceptions import ApiException

    from tunepipe.modelling.k8s_tuning import KubernetesClusterApi

    class Failing:
        def read_namespaced_pod(self, name: str, namespace: str) -> None:
            raise ApiException(status=status, reason=reason)

    api = object.__new__(KubernetesClusterApi)
    api.core = Failing()
    return api


def test_no_own_pod_means_not_in_a_cluster_and_says_so() -> None:
    api = _cluster_api_whose_own_pod_read_fails(404, "Not Found")
    with pytest.raises(TuningError, match=r"no pod '[^']+' \(this hostname\) in namespace 'team-a'"):
        api.own_placement("team-a")


def test_other_api_errors_reading_the_own_pod_pass_through() -> None:
    from kubernetes.client.exceptions import ApiException

    api = _cluster_api_whose_own_pod_read_fails(403, "Forbidden")
    with pytest.raises(ApiException, match="Forbidden"):
        api.own_placement("team-a")
