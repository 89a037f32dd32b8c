"""The multi-worker training launcher (a Kubeflow Trainer TrainJob) against a fake cluster API."""

from __future__ import annotations

import json
import os
import signal
from typing import Any

import pytest

from tunepipe.config import TrainingConfig
from tunepipe.errors import ConfigError, TrainingError
from tunepipe.modelling.k8s_cluster import OwnerPod, Placement
from tunepipe.modelling.k8s_training import TrainingLaunch, check_location, launch_and_wait
from tunepipe.reports.modelcard import _trained_model_lines

pytestmark = pytest.mark.unit
OWNER = OwnerPod("run-abc-train", "1234-uid")
LAUNCH = TrainingLaunch("tunepipe-train-test", "ns", Placement("img:1", 0, owner=OWNER), 2, ["--seed", "0"])
DONE = [{"type": "Complete", "status": "True", "reason": "JobsCompleted", "message": "jobs completed"}]
FAILED = [{"type": "Failed", "status": "True", "reason": "JobsFailed", "message": "node-1 exited 1"}]


class FakeCluster:
    """Records calls; the TrainJob's conditions and process 0's log advance one step per poll."""

    def __init__(self, states: list[list[dict[str, Any]]], fail_on_poll: int | None = None) -> None:
        self.states, self.fail_on_poll = states, fail_on_poll
        self.calls: list[tuple[str, ...]] = []
        self.created: list[dict[str, Any]] = []
        self.alive: set[str] = set()
        self.polls = 0

    def create(self, manifest: dict[str, Any]) -> None:
        self.calls.append(("create", manifest["kind"], manifest["metadata"]["name"]))
        self.created.append(manifest)
        self.alive.add(manifest["metadata"]["name"])

    def delete(self, kind: str, name: str, namespace: str) -> None:
        self.calls.append(("delete", kind, name))
        self.alive.discard(name)

    def conditions(self, kind: str, name: str, namespace: str) -> list[dict[str, Any]]:
        if self.fail_on_poll == self.polls:
            raise ConnectionError("API server went away")
        return self.states[min(self.polls, len(self.states)) - 1]

    def pod_names(self, selector: str, namespace: str) -> list[str]:
        self.polls += 1
        self.calls.append(("pods", selector))
        return [f"{LAUNCH.name}-node-0-0-abcde"] if self.polls > 1 else []  # the pod appears on the 2nd poll

    def log_lines(self, name: str, namespace: str) -> list[str]:
        lines = [f"2026-12-04T10:00:0{i}.000000000Z line {i}" for i in range(self.polls)]
        return [*lines, "2026-12-04T10:00:09.000000000Z Traceback ...", "2026-12-04T10:00:09.500000000Z "
                "RuntimeError: gloo lost a peer"] if self.states[-1] is FAILED and self.polls >= 3 else lines


def test_success_creates_the_trainjob_streams_each_log_line_once_and_deletes_it(caplog) -> None:
    cluster = FakeCluster([[], [], [], DONE])
    with caplog.at_level("INFO", logger="tunepipe.modelling.k8s_training"):
        launch_and_wait(cluster, LAUNCH, poll_s=0)
    assert cluster.calls[0] == ("create", "TrainJob", "tunepipe-train-test")
    assert cluster.calls[-1] == ("delete", "TrainJob", "tunepipe-train-test") and cluster.alive == set()
    streamed = [r.getMessage() for r in caplog.records if "] line" in r.getMessage()]
    assert streamed == [f"train: [tunepipe-train-test] line {i}" for i in range(4)]  # each line once, in order
    assert ("pods", "jobset.sigs.k8s.io/jobset-name=tunepipe-train-test,batch.kubernetes.io/job-completion-index=0") \
        in cluster.calls


def test_the_trainjob_is_owned_by_the_steps_pod() -> None:
    cluster = FakeCluster([DONE])
    launch_and_wait(cluster, LAUNCH, poll_s=0)
    assert cluster.created[0]["metadata"]["ownerReferences"] == [
        {"apiVersion": "v1", "kind": "Pod", "name": "run-abc-train", "uid": "1234-uid", "blockOwnerDeletion": False}]


def test_a_failed_trainjob_raises_one_error_naming_it_its_reason_and_the_last_log_lines() -> None:
    cluster = FakeCluster([[], [], FAILED])
    with pytest.raises(TrainingError, match=r"TrainJob tunepipe-train-test failed \(JobsFailed: node-1 exited 1\)"
                                            r"[\s\S]*RuntimeError: gloo lost a peer"):
        launch_and_wait(cluster, LAUNCH, poll_s=0)
    assert cluster.alive == set()


def test_an_exception_while_waiting_still_deletes_the_trainjob() -> None:
    cluster = FakeCluster([[]], fail_on_poll=2)
    with pytest.raises(ConnectionError):
        launch_and_wait(cluster, LAUNCH, poll_s=0)
    assert cluster.alive == set()


def test_a_failed_create_deletes_nothing() -> None:
    class Forbidden(FakeCluster):
        def create(self, manifest: dict[str, Any]) -> None:
            raise PermissionError("trainjobs.trainer.kubeflow.org is forbidden")

    cluster = Forbidden([[]])
    with pytest.raises(PermissionError):
        launch_and_wait(cluster, LAUNCH, poll_s=0)
    assert not [c for c in cluster.calls if c[0] == "delete"]


def test_timeout_raises_and_deletes() -> None:
    cluster = FakeCluster([[]])
    with pytest.raises(TrainingError, match="did not finish within"):
        launch_and_wait(cluster, LAUNCH, poll_s=0.01, timeout_s=0.05)
    assert cluster.alive == set()


def test_sigterm_from_a_cancelled_run_deletes_the_trainjob() -> None:
    class Cancelled(FakeCluster):
        def conditions(self, kind: str, name: str, namespace: str) -> list[dict[str, Any]]:
            if self.polls == 2:
                os.kill(os.getpid(), signal.SIGTERM)  # what the kubelet sends when the run is cancelled
            return super().conditions(kind, name, namespace)

    cluster = Cancelled([[]])
    with pytest.raises(TrainingError, match="SIGTERM"):
        launch_and_wait(cluster, LAUNCH, poll_s=0.01)
    assert cluster.alive == set()
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL


@pytest.mark.parametrize("location", ["/data/tuner", "runs/tuner", ""])
def test_a_local_tuner_root_is_refused_naming_the_setting(location) -> None:
    with pytest.raises(ConfigError, match=r"training.workers 2 .* set tuner_root to gs:// or s3://"):
        check_location(location, 2)


def test_both_object_stores_are_accepted() -> None:
    check_location("gs://bucket/tuner", 2)
    check_location("s3://bucket/tuner", 2)


def test_workers_default_to_one_and_exclude_replicas() -> None:
    assert TrainingConfig().workers == 1
    assert TrainingConfig(workers=4, replicas=1).workers == 4
    with pytest.raises(ValueError, match="choose one way to spread"):
        TrainingConfig(workers=2, replicas=2)
    with pytest.raises(ValueError):
        TrainingConfig(workers=0)


def test_the_model_card_says_the_training_ran_on_worker_pods() -> None:
    trained = {"kind": "single", "members": 1, "epochs": 12, "rows": 300, "training_devices": {
        "replicas": 4, "devices": "workers", "global_batch": 64, "batch_per_replica": 16,
        "learning_rate": 2e-2, "tuned_learning_rate": 1e-2}}
    text = " ".join(_trained_model_lines(json.loads(json.dumps(trained))))
    assert "4 worker pods" in text and "TrainJob" in text and "global batch 64 (16 per worker)" in text


def test_an_image_without_jax_is_refused_before_anything_is_created(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    from tunepipe.config import SearchSpace
    from tunepipe.modelling import k8s_training

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *rest: None if name == "jax" else real(name, *rest))
    with pytest.raises(ConfigError, match="no JAX"):
        k8s_training.train_on_cluster({}, "best", TrainingConfig(workers=2), SearchSpace(), 0, "gs://b/t",
                                      api=object())
