"""The distributed tuner's chief Pod, Service and worker Job: valid, restricted, GPU-placed, RBAC-covered."""

from __future__ import annotations

from pathlib import Path

import kubernetes_validate
import pytest
import yaml
from k8s_checks import pod_specs, pss_violations  # pytest puts this folder on sys.path

from tunepipe.execution.k8s.pods import StepPod
from tunepipe.execution.k8s.runner import OwnerPod, owned
from tunepipe.execution.k8s.tuning import COMPLETION_INDEX_ANNOTATION, ORACLE_PORT, TuningLaunch, render_manifests
from tunepipe.identity import IMAGE_UID

pytestmark = pytest.mark.k8s
KUBERNETES_VERSION = "1.32.0"
ROLE = Path(__file__).resolve().parents[2] / "k8s" / "base" / "role.yaml"
GKE_T4 = StepPod(
    image="registry.example/tunepipe-gpu:0.1.0", gpus=1,
    node_selector={"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"},
    tolerations=[{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}],
    service_account="tunepipe-runner", owner=OwnerPod("tunepipe-run-tune-driver", "0f1e2d3c-uid"),
)
LAUNCH = TuningLaunch("tunepipe-tune-0123abcd", "kubeflow", GKE_T4, 3,
                      ["--inputs", "gs://b/t/inputs", "--directory", "gs://b/t", "--seed", "42"])


@pytest.fixture(scope="module")
def manifests() -> dict[str, dict]:
    """The objects as the job runner creates them: owned by the step's pod, with the deadline."""
    return {doc["kind"]: owned(doc, GKE_T4.owner) for doc in render_manifests(LAUNCH)}


def test_manifests_validate_strictly_against_kubernetes_schemas(manifests) -> None:
    assert set(manifests) == {"Pod", "Service", "Job"}
    for doc in manifests.values():
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_pods_meet_the_restricted_pod_security_standard(manifests) -> None:
    specs = [spec for doc in manifests.values() for spec in pod_specs(doc)]
    assert len(specs) == 2
    for spec in specs:
        assert pss_violations(spec) == []  # restricted, read-only root, an emptyDir at /tmp
        assert spec["securityContext"]["runAsUser"] == IMAGE_UID
        assert {"name": "tmp", "emptyDir": {}} in spec["volumes"]
        assert spec["automountServiceAccountToken"] is False  # they never call the Kubernetes API


def test_workers_get_gpus_node_pool_and_toleration_the_chief_no_gpu(manifests) -> None:
    worker = manifests["Job"]["spec"]["template"]["spec"]
    chief = manifests["Pod"]["spec"]
    assert worker["containers"][0]["resources"] == {"limits": {"nvidia.com/gpu": 1}}
    assert "resources" not in chief["containers"][0]
    for spec in (worker, chief):
        assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
        assert spec["tolerations"] == GKE_T4.tolerations
        assert spec["containers"][0]["image"] == GKE_T4.image


def test_keras_tuner_protocol_wiring(manifests) -> None:
    job = manifests["Job"]["spec"]
    assert (job["completionMode"], job["completions"], job["parallelism"]) == ("Indexed", 3, 3)
    worker_env = {e["name"]: e for e in job["template"]["spec"]["containers"][0]["env"]}
    assert COMPLETION_INDEX_ANNOTATION in worker_env["KERASTUNER_TUNER_ID"]["valueFrom"]["fieldRef"]["fieldPath"]
    assert worker_env["KERASTUNER_ORACLE_IP"]["value"] == "tunepipe-tune-0123abcd-chief.kubeflow.svc"
    assert worker_env["KERASTUNER_ORACLE_PORT"]["value"] == str(ORACLE_PORT)
    chief_env = {e["name"]: e.get("value") for e in manifests["Pod"]["spec"]["containers"][0]["env"]}
    assert chief_env["KERASTUNER_TUNER_ID"] == "chief"
    service = manifests["Service"]["spec"]
    assert service["selector"] == manifests["Pod"]["metadata"]["labels"]
    assert service["ports"][0]["port"] == ORACLE_PORT
    assert all(doc["metadata"]["namespace"] == "kubeflow" for doc in manifests.values())


def test_role_grants_what_the_launcher_calls_and_no_more() -> None:
    """The job runner creates/reads/deletes Pods, Services, Jobs, lists the chief's pod and reads its log.

    ``pods get`` also covers ``read_step_pod`` reading the step's own pod (image, placement,
    ``serviceAccountName``, uid). Owner references with ``blockOwnerDeletion: false`` need no grant
    on the owner, and ``serviceAccountName`` needs none (a pod may name any account of its namespace).
    """
    rules = yaml.safe_load(ROLE.read_text())["rules"]
    granted = {(group, resource): set(rule["verbs"]) for rule in rules
               for group in rule["apiGroups"] for resource in rule["resources"]}
    needed = {("batch", "jobs"): {"create", "get", "delete"}, ("", "pods"): {"create", "get", "list", "delete"},
              ("", "pods/log"): {"get"}, ("", "services"): {"create", "delete"},
              ("trainer.kubeflow.org", "trainjobs"): set()}  # the train step's launcher: test_training_manifests
    for key, verbs in needed.items():
        assert verbs <= granted.get(key, set()), key
    assert set(granted) == set(needed)
