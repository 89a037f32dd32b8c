"""The Kubernetes tuner launcher's create / wait / clean-up logic, through the one job runner,
against the tests' fake cluster API."""

from __future__ import annotations

import dataclasses
import os
import signal
from typing import Any

import pytest
from fake_cluster import FakeCluster  # tests/ is on sys.path (conftest.py)

from tunepipe.errors import TuningError
from tunepipe.execution.k8s.pods import StepPod, read_step_pod
from tunepipe.execution.k8s.runner import ACTIVE_DEADLINE_S, JobRunner, OwnerPod, owned
from tunepipe.execution.k8s.tuning import TuningLaunch, render_manifests, tuning_job

pytestmark = pytest.mark.unit
LAUNCH = TuningLaunch("tunepipe-tune-test", "ns", StepPod("img:1", 1), 2, ["--seed", "0"])
CHIEF_LOG = ["2026-12-04T10:00:00.000000000Z Traceback ...",
             "2026-12-04T10:00:01.000000000Z RuntimeError: oracle crashed"]


def cluster(phases: list[str], jobs: list[tuple[int, int]], **kwargs: Any) -> FakeCluster:
    """The chief's phase and the worker Job's (succeeded, failed) counts, one step per poll."""
    return FakeCluster({"Pod": [{"phase": phase} for phase in phases],
                        "Job": [{"succeeded": done, "failed": failed} for done, failed in jobs]},
                       pods=lambda poll: ["tunepipe-tune-test-chief"], logs=lambda poll: CHIEF_LOG, **kwargs)


def launch_and_wait(api: FakeCluster, launch: TuningLaunch = LAUNCH, **kwargs: Any) -> None:
    JobRunner(api, launch.step.owner, TuningError, **kwargs).run(tuning_job(launch))


def deletes(api: FakeCluster) -> list[tuple[str, ...]]:
    return [call[:3] for call in api.calls if call[0] == "delete"]


def test_success_creates_three_objects_waits_and_cleans_up() -> None:
    api = cluster(["Pending", "Running", "Running", "Succeeded"], [(0, 0), (0, 0), (1, 0), (2, 0)])
    launch_and_wait(api, poll_s=0, timeout_s=30)
    created = [c for c in api.calls if c[0] == "create"]
    assert [c[1] for c in created] == ["Pod", "Service", "Job"]
    assert api.polls == 4  # waited until the chief succeeded and both workers finished
    assert api.alive == set()


def test_chief_failure_raises_with_its_log_and_cleans_up() -> None:
    api = cluster(["Running", "Failed"], [(0, 0)])
    with pytest.raises(TuningError, match=r"chief pod tunepipe-tune-test-chief failed:[\s\S]*oracle crashed"):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.alive == set()
    assert deletes(api) == [
        ("delete", "Job", "tunepipe-tune-test-workers"), ("delete", "Service", "tunepipe-tune-test-chief"),
        ("delete", "Pod", "tunepipe-tune-test-chief"),
    ]


def test_worker_job_failures_raise_and_clean_up() -> None:
    api = cluster(["Running"], [(0, 7)])
    with pytest.raises(TuningError, match="worker Job tunepipe-tune-test-workers failed 7 times"):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.alive == set()


def test_a_worker_job_failed_by_its_deadline_fails_the_search_at_once() -> None:
    """The job controller ends a Job at activeDeadlineSeconds by deleting its pods and setting the
    Failed condition; no pod counts as failed, so only the condition tells the launcher."""
    deadline = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                "message": "Job was active longer than specified deadline"}
    api = FakeCluster({"Pod": [{"phase": "Running"}],
                       "Job": [{"active": 2}, {"failed": 0, "conditions": [deadline]}]},
                      pods=lambda poll: ["tunepipe-tune-test-chief"], logs=lambda poll: CHIEF_LOG)
    with pytest.raises(TuningError, match=r"worker Job tunepipe-tune-test-workers failed \(DeadlineExceeded: Job "
                                          r"was active longer than specified deadline\)"):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.polls == 2  # noticed at the first look that saw the condition, not at the timeout
    assert api.alive == set()


def test_a_false_or_other_job_condition_does_not_end_the_search() -> None:
    conditions = [{"type": "Failed", "status": "False"}, {"type": "Suspended", "status": "True"}]
    api = cluster(["Running", "Succeeded"], [(0, 0)])
    api.statuses["Job"] = [{"conditions": conditions}, {"succeeded": 2, "conditions": conditions}]
    launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.polls == 2
    assert api.alive == set()


def test_an_exception_while_waiting_still_cleans_up() -> None:
    api = cluster(["Running"], [(0, 0)], fail_on_poll=2)
    with pytest.raises(ConnectionError):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.alive == set()


def test_timeout_raises_and_cleans_up() -> None:
    api = cluster(["Running"], [(0, 0)])
    with pytest.raises(TuningError, match="did not finish within"):
        launch_and_wait(api, poll_s=0.01, timeout_s=0.05)
    assert api.alive == set()


def test_a_failed_create_deletes_what_was_created() -> None:
    api = cluster(["Running"], [(0, 0)], refuse={"create:Job": PermissionError("jobs.batch is forbidden")})
    with pytest.raises(PermissionError):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert api.alive == set()
    assert deletes(api) == [("delete", "Service", "tunepipe-tune-test-chief"),
                            ("delete", "Pod", "tunepipe-tune-test-chief")]


def test_sigterm_from_a_cancelled_run_cleans_up() -> None:
    class Cancelled(FakeCluster):
        def read(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
            found = super().read(kind, name, namespace)
            if kind == "Pod" and self.polls == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # what the kubelet sends when the run is cancelled
            return found

    api = Cancelled({"Pod": [{"phase": "Running"}], "Job": [{"succeeded": 0, "failed": 0}]})
    with pytest.raises(TuningError, match="SIGTERM"):
        launch_and_wait(api, poll_s=0.01, timeout_s=30)
    assert api.alive == set()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # the step's own handler is back


def _real_api_over(core: Any):  # type: ignore[no-untyped-def]
    """The real client wrapper, its core API replaced: what it makes of the server's answers."""
    from kubernetes import client

    from tunepipe.execution.k8s.api import KubernetesClusterApi

    api = object.__new__(KubernetesClusterApi)
    api.core, api.serializer = core, client.ApiClient()
    return api


def test_workers_inherit_the_tune_pods_placement() -> None:
    """Image, GPU limit, node selector and tolerations come from the step's own pod (its "main" container)."""
    from kubernetes import client

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

    step = read_step_pod(_real_api_over(FakeCore()), "team-a", TuningError, "tuning.placement where cluster")
    assert step == StepPod(
        "reg/tunepipe-gpu:0.1.0", 2, {"cloud.google.com/gke-accelerator": "nvidia-l4"},
        [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
        "tunepipe-runner", OwnerPod("run-abc-tune", "1234-uid"),
    )


def test_tuner_objects_run_as_the_steps_account_are_owned_by_its_pod_and_have_a_deadline() -> None:
    owner = OwnerPod("run-abc-tune", "1234-uid")
    launch = dataclasses.replace(LAUNCH, step=StepPod("img:1", 1, service_account="tunepipe-runner", owner=owner))
    api = cluster(["Succeeded"], [(2, 0)])
    launch_and_wait(api, launch, poll_s=0, timeout_s=30)  # creates exactly these, owned, with the deadline
    chief, service, job = api.created
    assert api.created == [owned(manifest, owner) for manifest in render_manifests(launch)]
    reference = {"apiVersion": "v1", "kind": "Pod", "name": "run-abc-tune", "uid": "1234-uid",
                 "blockOwnerDeletion": False}
    for manifest in (chief, service, job):
        assert manifest["metadata"]["ownerReferences"] == [reference]
    for spec in (chief["spec"], job["spec"]["template"]["spec"]):
        assert spec["serviceAccountName"] == "tunepipe-runner"
    assert chief["spec"]["activeDeadlineSeconds"] == job["spec"]["activeDeadlineSeconds"] == ACTIVE_DEADLINE_S
    assert "activeDeadlineSeconds" not in service["spec"]  # a Service takes none; its owner collects it


def test_the_chiefs_log_is_followed_and_a_vanished_chief_fails_the_search(caplog) -> None:
    class Evicted(FakeCluster):
        def read(self, kind: str, name: str, namespace: str) -> dict[str, Any] | None:
            if kind == "Pod" and self.polls == 2:  # evicted and collected after two looks
                self.objects.pop((kind, namespace, name), None)
            return super().read(kind, name, namespace)

    api = Evicted({"Pod": [{"phase": "Running"}], "Job": [{"succeeded": 0, "failed": 0}]},
                  pods=lambda poll: ["tunepipe-tune-test-chief"], logs=lambda poll: CHIEF_LOG)
    with caplog.at_level("INFO", logger="tunepipe.execution.k8s.runner"), \
            pytest.raises(TuningError, match="chief pod tunepipe-tune-test-chief is gone"):
        launch_and_wait(api, poll_s=0, timeout_s=30)
    assert ("list", "Pod", "tunepipe/launch=tunepipe-tune-test,tunepipe/role=chief", "ns") in api.calls
    assert "tune: [chief] RuntimeError: oracle crashed" in [r.getMessage() for r in caplog.records]


class _Failing:
    def __init__(self, status: int, reason: str) -> None:
        self.status, self.reason = status, reason

    def read_namespaced_pod(self, name: str, namespace: str) -> None:
        from kubernetes.client.exceptions import ApiException

        raise ApiException(status=self.status, reason=self.reason)

    def read_namespaced_pod_log(self, name: str, namespace: str, timestamps: bool) -> None:
        self.read_namespaced_pod(name, namespace)


@pytest.mark.parametrize("status", [400, 404, 500, 503])
def test_a_log_the_node_cannot_serve_yet_is_no_lines_not_an_error(status: int) -> None:
    """400/404: the container is starting or the pod went; 5xx: the API server could not reach the
    node's kubelet for it (a kwok node serves none): the follower retries at the next poll."""
    assert _real_api_over(_Failing(status, "x")).log_lines("chief", "ns") == []


def test_a_refused_log_read_passes_through() -> None:
    from kubernetes.client.exceptions import ApiException

    with pytest.raises(ApiException, match="Forbidden"):
        _real_api_over(_Failing(403, "Forbidden")).log_lines("chief", "ns")


def test_no_own_pod_means_not_in_a_cluster_and_says_so() -> None:
    api = _real_api_over(_Failing(404, "Not Found"))
    with pytest.raises(TuningError, match=r"no pod '[^']+' \(this hostname\) in namespace 'team-a'"):
        read_step_pod(api, "team-a", TuningError, "tuning.placement where cluster")


def test_other_api_errors_reading_the_own_pod_pass_through() -> None:
    from kubernetes.client.exceptions import ApiException

    api = _real_api_over(_Failing(403, "Forbidden"))
    with pytest.raises(ApiException, match="Forbidden"):
        read_step_pod(api, "team-a", TuningError, "tuning.placement where cluster")
