"""k8s/serving renders offline, its InferenceServices validate against KServe's own CRD schema,
their pods meet the restricted standard, each is pinned to one version, and the deploy step's
Role grants exactly what it calls."""

from __future__ import annotations

import copy
import json
import shlex
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from credential_checks import credential_findings
from k8s_checks import pod_specs, pss_violations
from test_manifests import K8S, KUBERNETES_VERSION, LABELS, grants, only, render

import tunepipe
from tunepipe.deploy_step import KIND, version_patch
from tunepipe.execution.k8s.api import KINDS
from tunepipe.identity import IMAGE_UID, SERVE_VERSION_ENV

pytestmark = pytest.mark.k8s

SCHEMA = Path(__file__).parent / "schemas" / "inferenceservice-v1beta1.schema.json"
OURS, TF = "tunepipe-serve", "tunepipe-tfserving"
# The newest TensorFlow Serving release (tag 2.20.0 of github.com/tensorflow/serving, April 2026):
# KServe's default image (2.6.2) predates the ops SavedModels of TensorFlow 2.21 use.
TF_SERVING_VERSION = "2.20.0"
TF_MODEL_BASE = "/mnt/models"  # KServe's runtime: --model_base_path=/mnt/models, where storageUri is copied
GROUP, VERSION, PLURAL = KINDS[KIND]  # how the deploy step's calls address the InferenceService
DEPLOYER_GRANTS = {(GROUP, PLURAL): {"get", "patch"}}


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(K8S / "serving")


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(json.loads(SCHEMA.read_text()))


def predictor(docs: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return only(docs, "InferenceService", name)["spec"]["predictor"]


def serve_args(docs: list[dict[str, Any]]) -> dict[str, str]:
    args = predictor(docs, OURS)["containers"][0]["args"]
    return dict(zip(args[::2], args[1::2], strict=True))


# --- schemas, labels, namespace ----------------------------------------------------------------------


def test_inference_services_validate_against_kserves_schema(docs: list, validator: jsonschema.Draft7Validator) -> None:
    found = [doc for doc in docs if doc["kind"] == "InferenceService"]
    assert {doc["metadata"]["name"] for doc in found} == {OURS, TF}
    for doc in found:
        assert doc["apiVersion"] == f"{GROUP}/{VERSION}"
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(doc)]
        assert errors == [], doc["metadata"]["name"]


@pytest.mark.parametrize(
    "breakage",
    [lambda p: p["tensorflow"].update(storageUrl="gs://x"), lambda p: p.update(replicas=2),
     lambda p: p["tensorflow"]["securityContext"].update(runAsNonRoot="yes")],
)
def test_kserves_schema_rejects_a_broken_predictor(docs: list, validator: jsonschema.Draft7Validator,
                                                   breakage: Any) -> None:
    doc = json.loads(json.dumps(only(docs, "InferenceService", TF)))
    breakage(doc["spec"]["predictor"])
    assert list(validator.iter_errors(doc))


def test_other_objects_validate_against_the_kubernetes_schema(docs: list) -> None:
    for doc in [doc for doc in docs if doc["kind"] != "InferenceService"]:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


def test_every_object_carries_the_labels_and_the_namespace(docs: list) -> None:
    for doc in docs:
        assert LABELS.items() <= doc["metadata"]["labels"].items(), doc["metadata"]["name"]
        assert doc["metadata"]["namespace"] == "tunepipe"


def test_no_manifest_holds_a_credential(docs: list) -> None:
    assert credential_findings(docs) == []


# --- pods --------------------------------------------------------------------------------------------


def test_both_predictor_pods_meet_the_restricted_standard(docs: list) -> None:
    specs = [spec for doc in docs for spec in pod_specs(doc)]
    assert len(specs) == 2
    for spec in specs:
        assert pss_violations(spec) == []
    ours = predictor(docs, OURS)["securityContext"]
    assert ours["runAsUser"] == ours["runAsGroup"] == IMAGE_UID


def test_the_pod_check_sees_the_tf_serving_container(docs: list) -> None:
    doc = json.loads(json.dumps(only(docs, "InferenceService", TF)))
    doc["spec"]["predictor"]["tensorflow"]["securityContext"].pop("readOnlyRootFilesystem")
    [spec] = pod_specs(doc)
    assert pss_violations(spec) == ["container kserve-container: readOnlyRootFilesystem is not true"]


def test_each_predictor_asks_for_cpu_and_memory(docs: list) -> None:
    ours, tf = predictor(docs, OURS)["containers"][0], predictor(docs, TF)["tensorflow"]
    for resources in (ours["resources"], tf["resources"]):
        assert {"cpu", "memory"} <= resources["requests"].keys() & resources["limits"].keys()


# --- (a) tunepipe serve ------------------------------------------------------------------------------


def test_tunepipe_serve_is_pinned_and_probed_on_its_own_endpoints(docs: list) -> None:
    spec = predictor(docs, OURS)
    [container] = spec["containers"]
    args = serve_args(docs)
    assert container["command"] == ["tunepipe", "serve"]
    assert container["image"] == f"tunepipe-serve:{tunepipe.__version__}"
    assert args["--export-root"].startswith("gs://") and spec["serviceAccountName"] == "tunepipe-runner"
    assert [env["value"] for env in container["env"] if env["name"] == SERVE_VERSION_ENV] == ["1"]
    port = int(args["--port"])
    assert container["readinessProbe"]["httpGet"] == {"path": f"/v1/models/{args['--model-name']}", "port": port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/", "port": port}
    assert container["ports"][0]["containerPort"] == port


def test_the_deploy_steps_patch_applies_to_the_rendered_service(docs: list) -> None:
    isvc = only(docs, "InferenceService", OURS)
    body = version_patch(isvc, 8)
    assert body is not None
    patched = copy.deepcopy(isvc)  # a merge patch replaces the containers list whole
    patched["spec"]["predictor"]["containers"] = body["spec"]["predictor"]["containers"]
    [container] = patched["spec"]["predictor"]["containers"]
    assert {"name": SERVE_VERSION_ENV, "value": "8"} in container["env"]
    assert version_patch(patched, 8) is None


# --- (b) TF Serving ----------------------------------------------------------------------------------


def test_tf_serving_runs_a_release_that_loads_tensorflow_2_21_models(docs: list) -> None:
    tensorflow = predictor(docs, TF)["tensorflow"]
    assert tensorflow["runtimeVersion"] == TF_SERVING_VERSION  # KServe's check: no "-gpu" suffix without a GPU
    assert "nvidia.com/gpu" not in tensorflow["resources"]["limits"]


def test_tf_serving_reads_the_same_model_folder(docs: list) -> None:
    args = serve_args(docs)
    assert predictor(docs, TF)["tensorflow"]["storageUri"] == f"{args['--export-root']}/{args['--model-name']}"


def test_tf_serving_is_pinned_by_its_mounted_model_config(docs: list) -> None:
    spec = predictor(docs, TF)
    tensorflow = spec["tensorflow"]
    [flag] = [arg for arg in tensorflow["args"] if arg.startswith("--model_config_file=")]
    path = Path(flag.split("=", 1)[1])
    [mount] = [m for m in tensorflow["volumeMounts"] if m["mountPath"] == str(path.parent)]
    [volume] = [v for v in spec["volumes"] if v["name"] == mount["name"]]
    data = only(docs, "ConfigMap", volume["configMap"]["name"])["data"]
    config = " ".join(shlex.split(data[path.name].replace("{", " { ").replace("}", " } ")))
    assert f"name: {TF}" in config  # KServe serves /v1/models/<InferenceService name>
    assert f"base_path: {TF_MODEL_BASE}" in config
    assert "model_version_policy { specific { versions: 1 } }" in config


# --- RBAC and network --------------------------------------------------------------------------------


def test_deployer_role_grants_exactly_what_the_deploy_step_calls(docs: list) -> None:
    role = only(docs, "Role", "tunepipe-deployer")
    assert grants(role) == DEPLOYER_GRANTS
    binding = only(docs, "RoleBinding", "tunepipe-deployer")
    assert binding["roleRef"]["name"] == "tunepipe-deployer" and binding["roleRef"]["kind"] == "Role"
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tunepipe-runner", "namespace": "tunepipe"}]
    assert not [doc for doc in docs if doc["kind"] in {"ClusterRole", "ClusterRoleBinding", "Secret"}]


def test_network_policy_opens_only_the_model_servers(docs: list) -> None:
    policy = only(docs, "NetworkPolicy", "tunepipe-serving")["spec"]
    [expression] = policy["podSelector"]["matchExpressions"]
    assert expression["key"] == f"{GROUP}/inferenceservice" and set(expression["values"]) == {OURS, TF}
    assert {port["port"] for rule in policy["ingress"] for port in rule["ports"]} == {8080, 9000}


def test_serving_is_documented() -> None:
    readme = (K8S / "README.md").read_text()
    for needle in ("serving/", TF_SERVING_VERSION, SERVE_VERSION_ENV, "BUCKET"):
        assert needle in readme, f"k8s/README.md does not mention {needle}"
    assert yaml.safe_load((K8S / "serving" / "kustomization.yaml").read_text())["namespace"] == "tunepipe"
