"""The train step's TrainJob: valid against Kubeflow Trainer's CRD, restricted, GPU-placed, owned, RBAC-covered."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from k8s_checks import pss_violations  # pytest puts this folder on sys.path
from test_tuning_manifests import GKE_T4 as TUNING_PLACEMENT

from tunepipe.execution.jax_worker import engine_arguments
from tunepipe.execution.k8s.runner import OwnerPod, owned
from tunepipe.execution.k8s.training import NODE, RUNTIME, TrainingLaunch, render_trainjob

pytestmark = pytest.mark.k8s
KUBERNETES_VERSION = "1.32.0"
SCHEMA = Path(__file__).parent / "schemas" / "trainjob-v1alpha1.schema.json"
ROLE = Path(__file__).resolve().parents[2] / "k8s" / "base" / "role.yaml"
GKE_T4 = dataclasses.replace(TUNING_PLACEMENT, owner=OwnerPod("tunepipe-run-train-driver", "0f1e2d3c-uid"))
ARGUMENTS = ["--location", "gs://b/t/workers/x", "--training", "{}", "--search-space", "{}", "--seed", "42"]
LAUNCH = TrainingLaunch("tunepipe-train-0123abcd", "kubeflow", GKE_T4, 4, [*ARGUMENTS, *engine_arguments()])


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


@pytest.fixture(scope="module")
def trainjob() -> dict:
    """The TrainJob as the job runner creates it: owned by the step's pod, with the deadline."""
    return owned(render_trainjob(LAUNCH), GKE_T4.owner)


def _node_pod(trainjob: dict) -> dict:
    """The pod spec Trainer makes for a node: the runtime patch's pod plus the trainer's container fields."""
    [patch] = trainjob["spec"]["runtimePatches"]
    [job] = patch["trainingRuntimeSpec"]["template"]["spec"]["replicatedJobs"]
    pod = job["template"]["spec"]["template"]["spec"]
    return pod


def test_trainjob_validates_against_trainers_crd_schema(trainjob, validator) -> None:
    assert list(validator.iter_errors(trainjob)) == []
    kubernetes_validate.validate({"apiVersion": "v1", "kind": "Pod", "metadata": trainjob["metadata"],
                                  "spec": {"containers": [{"name": "x", "image": "x"}]}},
                                 KUBERNETES_VERSION, strict=True)  # its metadata, by Kubernetes' own rules


def test_the_crd_schema_refuses_what_trainer_would_refuse(trainjob, validator) -> None:
    """The check can fail: a misspelt field, a wrong type, a patch without its manager."""
    broken = json.loads(json.dumps(trainjob))
    broken["spec"]["trainer"]["numNode"] = 4
    broken["spec"]["trainer"]["numNodes"] = "4"
    del broken["spec"]["runtimePatches"][0]["manager"]
    messages = " ".join(error.message for error in validator.iter_errors(broken))
    assert "numNode" in messages and "'4' is not of type 'integer'" in messages and "'manager'" in messages


def test_node_pods_meet_the_restricted_pod_security_standard(trainjob) -> None:
    pod = _node_pod(trainjob)
    assert [c["name"] for c in pod["containers"]] == [NODE]  # the runtime's container, patched
    assert pss_violations(pod) == []
    assert pod["serviceAccountName"] == "tunepipe-runner"


def test_nodes_run_the_worker_with_the_steps_image_gpus_and_placement(trainjob) -> None:
    spec = trainjob["spec"]
    assert spec["runtimeRef"] == {"name": RUNTIME, "apiGroup": "trainer.kubeflow.org", "kind": "ClusterTrainingRuntime"}
    trainer = spec["trainer"]
    assert (trainer["image"], trainer["numNodes"]) == (GKE_T4.image, 4)
    assert trainer["command"] == ["python", "-m", "tunepipe.execution.jax_worker"]
    assert trainer["args"][-6:] == ["--coordinator", "$(JAX_COORDINATOR_ADDRESS)", "--processes",
                                    "$(JAX_NUM_PROCESSES)", "--process-id", "$(JAX_PROCESS_ID)"]
    assert {"name": "KERAS_BACKEND", "value": "jax"} in trainer["env"]
    assert trainer["resourcesPerNode"] == {"limits": {"nvidia.com/gpu": 1}}
    pod = _node_pod(trainjob)
    assert pod["nodeSelector"] == GKE_T4.node_selector and pod["tolerations"] == GKE_T4.tolerations
    assert trainjob["metadata"]["ownerReferences"] == [GKE_T4.owner.reference()]
    assert spec["activeDeadlineSeconds"] > 0


def test_role_grants_what_the_training_launcher_calls() -> None:
    """The job runner creates, reads and deletes the TrainJob, lists its pods and reads their logs."""
    rules = yaml.safe_load(ROLE.read_text())["rules"]
    granted = {(group, resource): set(rule["verbs"]) for rule in rules
               for group in rule["apiGroups"] for resource in rule["resources"]}
    needed = {("trainer.kubeflow.org", "trainjobs"): {"create", "get", "delete"}, ("", "pods"): {"list", "get"},
              ("", "pods/log"): {"get"}}
    for key, verbs in needed.items():
        assert verbs <= granted.get(key, set()), key
    assert granted[("trainer.kubeflow.org", "trainjobs")] == {"create", "get", "delete"}
