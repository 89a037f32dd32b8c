"""The manifests under k8s/ render offline with `kubectl kustomize`, validate against the Kubernetes
schemas, and keep their promises: restricted pods, a least-privilege Role, GPU only in gke-gpu,
the image tagged with the package version, no credentials."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from credential_checks import KEY_FILE, SECRET_TEXT, credential_findings  # tests/ is on sys.path (conftest.py)
from k8s_checks import pod_specs, pss_violations  # pytest puts this folder on sys.path

import tunepipe
from tunepipe.identity import IMAGE_UID

pytestmark = pytest.mark.k8s

K8S = Path(__file__).resolve().parents[2] / "k8s"
TARGETS = ("base", "overlays/gke-gpu", "overlays/kind", "overlays/multi-user")
OVERLAYS = TARGETS[1:]
# Where each target puts the runner identity: where pipeline pods run (KFP standalone: `kubeflow`;
# multi-user: the profile namespace, Kubeflow's example profile by default).
NAMESPACES = {"base": "tunepipe", "overlays/gke-gpu": "kubeflow", "overlays/kind": "kubeflow",
              "overlays/multi-user": "kubeflow-user-example-com"}
KUBERNETES_VERSION = "1.32"  # the schemas manifests are validated against (kind and GKE run 1.32 or later)
LABELS = {"app.kubernetes.io/name": "tunepipe", "app.kubernetes.io/part-of": "tunepipe"}
GPU = "nvidia.com/gpu"
ROLE_GRANTS = {  # (apiGroup, resource) -> verbs: what the tuner and training launchers need, nothing more
    ("batch", "jobs"): {"create", "get", "list", "watch", "delete"},
    ("", "pods"): {"create", "get", "list", "watch", "delete"},
    ("", "pods/log"): {"get", "list", "watch"},
    ("", "services"): {"create", "get", "list", "delete"},
    ("trainer.kubeflow.org", "trainjobs"): {"create", "get", "delete"},  # training.placement cluster
}
SMOKE_COMMAND = [
    "python", "-c", "import tunepipe, keras, keras_tuner, kfp; print('tunepipe', tunepipe.__version__, 'ok')"
]


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path:
        return path
    reason = "kubectl is not on PATH; install it to render k8s/ offline (`kubectl kustomize`, no cluster needed)"
    if os.environ.get("CI") == "true":
        pytest.fail(reason + " (CI=true: the k8s tier must run in CI)")
    pytest.skip(reason)


def render(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run([kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"kubectl kustomize {directory} failed:\n{result.stderr}"
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[dict[str, Any]]]:
    return {target: render(K8S / target) for target in TARGETS}


def only(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [doc for doc in docs if doc["kind"] == kind and doc["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind}/{name}, found {len(found)}"
    return found[0]


def smoke_job(docs: list[dict[str, Any]]) -> dict[str, Any]:
    return only(docs, "Job", "tunepipe-smoke-check")["spec"]["template"]["spec"]


def container_limits(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [c.get("resources", {}).get("limits", {}) for d in docs for s in pod_specs(d) for c in s["containers"]]


# --- schema, labels, namespaces ---------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_against_the_kubernetes_schema(rendered: dict, target: str) -> None:
    for doc in rendered[target]:
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{target}: {doc['kind']}/{doc['metadata']['name']}: {error.message}")


def test_strict_validation_rejects_an_unknown_field() -> None:
    bad = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}, "spec": {"backofLimit": 0}}
    with pytest.raises(kubernetes_validate.ValidationError, match="backofLimit"):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_carries_the_labels_and_sits_in_one_namespace(rendered: dict, target: str) -> None:
    for doc in rendered[target]:
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        assert LABELS.items() <= doc["metadata"].get("labels", {}).items(), f"{target}: {name} lacks {LABELS}"
        if doc["kind"] != "Namespace":
            assert doc["metadata"].get("namespace") == NAMESPACES[target], f"{target}: {name} namespace"


def test_tunepipe_namespace_enforces_the_restricted_standard(rendered: dict) -> None:
    labels = only(rendered["base"], "Namespace", "tunepipe")["metadata"]["labels"]
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"


@pytest.mark.parametrize("target", OVERLAYS)
def test_overlays_run_in_kubeflows_namespace_without_redefining_it(rendered: dict, target: str) -> None:
    # kubeflow and profile namespaces belong to Kubeflow; a restricted label would reject KFP's own pods,
    # and a default deny would cut KFP's services apart.
    kinds = {(doc["kind"], doc["metadata"]["name"]) for doc in rendered[target]}
    assert not [kind for kind in kinds if kind[0] == "Namespace"]
    assert ("NetworkPolicy", "tunepipe-default-deny-ingress") not in kinds
    assert ("NetworkPolicy", "tunepipe-tuner-oracle") in kinds  # the tuner's pods run here, next to the step


def test_the_profile_namespace_is_set_in_one_place(tmp_path: Path) -> None:
    """`kustomize edit set namespace` on the multi-user overlay moves every object and subject."""
    settings = [line for path in K8S.rglob("*.yaml") for line in path.read_text().splitlines()
                if NAMESPACES["overlays/multi-user"] in line and not line.lstrip().startswith("#")]
    assert settings == ["namespace: kubeflow-user-example-com"]
    overlay = {"resources": [os.path.relpath(K8S / "overlays/multi-user", tmp_path)], "namespace": "team-a"}
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    docs = render(tmp_path)
    assert {doc["metadata"]["namespace"] for doc in docs} == {"team-a"}
    subjects = [s for doc in docs if doc["kind"] == "RoleBinding" for s in doc["subjects"]]
    assert len(subjects) == 2 and {s["namespace"] for s in subjects} == {"team-a"}


# --- pod security ----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_every_pod_meets_the_restricted_pod_security_standard(rendered: dict, target: str) -> None:
    specs = [spec for doc in rendered[target] for spec in pod_specs(doc)]
    assert specs, f"{target} renders no pods to check"
    for spec in specs:
        assert pss_violations(spec) == []


def test_smoke_check_pod_settings(rendered: dict) -> None:
    spec = smoke_job(rendered["base"])
    job = only(rendered["base"], "Job", "tunepipe-smoke-check")["spec"]
    assert (job["backoffLimit"], job["ttlSecondsAfterFinished"]) == (0, 600)
    assert (spec["serviceAccountName"], spec["restartPolicy"]) == ("tunepipe-runner", "Never")
    assert spec["securityContext"]["runAsUser"] == spec["securityContext"]["runAsGroup"] == IMAGE_UID
    [container] = spec["containers"]
    assert container["command"] == SMOKE_COMMAND
    assert {"cpu", "memory"} <= container["resources"]["requests"].keys() & container["resources"]["limits"].keys()
    tmp = {mount["name"] for mount in container["volumeMounts"] if mount["mountPath"] == "/tmp"}
    assert [volume for volume in spec["volumes"] if volume["name"] in tmp and "emptyDir" in volume]


BAD_PODS = {
    "hostNetwork": lambda s: s.update(hostNetwork=True),
    "hostPath volume": lambda s: s["volumes"].append({"name": "host", "hostPath": {"path": "/"}}),
    "privileged": lambda s: s["containers"][0]["securityContext"].update(privileged=True),
    "privilege escalation": lambda s: s["containers"][0]["securityContext"].pop("allowPrivilegeEscalation"),
    "keeps capabilities": lambda s: s["containers"][0]["securityContext"].pop("capabilities"),
    "adds SYS_ADMIN": lambda s: s["containers"][0]["securityContext"]["capabilities"].update(add=["SYS_ADMIN"]),
    "may run as root": lambda s: s["securityContext"].pop("runAsNonRoot"),
    "runs as uid 0": lambda s: s["securityContext"].update(runAsUser=0),
    "unconfined seccomp": lambda s: s["securityContext"].update(seccompProfile={"type": "Unconfined"}),
    "no seccomp": lambda s: s["securityContext"].pop("seccompProfile"),
    "writable root": lambda s: s["containers"][0]["securityContext"].update(readOnlyRootFilesystem=False),
    "hostPort": lambda s: s["containers"][0].update(ports=[{"containerPort": 80, "hostPort": 80}]),
    "bad init container": lambda s: s.update(initContainers=[{"name": "init", "image": "busybox"}]),
    "unsafe sysctl": lambda s: s["securityContext"].update(sysctls=[{"name": "kernel.msgmax", "value": "1"}]),
    "unconfined AppArmor": lambda s: s["containers"][0]["securityContext"].update(
        appArmorProfile={"type": "Unconfined"}),
    "SELinux super-privileged": lambda s: s["securityContext"].update(seLinuxOptions={"type": "spc_t"}),
    "Windows host process": lambda s: s["securityContext"].update(windowsOptions={"hostProcess": True}),
    "no scratch at /tmp": lambda s: s["containers"][0].pop("volumeMounts"),
    "/tmp not an emptyDir": lambda s: s.update(volumes=[{"name": "tmp", "configMap": {"name": "x"}}]),
}


@pytest.mark.parametrize("breakage", BAD_PODS)
def test_pod_security_check_rejects_a_bad_pod(rendered: dict, breakage: str) -> None:
    spec = copy.deepcopy(smoke_job(rendered["base"]))
    assert pss_violations(spec) == []
    BAD_PODS[breakage](spec)
    assert pss_violations(spec), f"a pod with {breakage} passed the restricted check"


# --- RBAC ------------------------------------------------------------------------------------------


def grants(role: dict[str, Any]) -> dict[tuple[str, str], set[str]]:
    found: dict[tuple[str, str], set[str]] = {}
    for rule in role["rules"]:
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                found.setdefault((group, resource), set()).update(rule["verbs"])
    return found


@pytest.mark.parametrize("target", TARGETS)
def test_role_grants_exactly_what_the_tuner_launcher_needs(rendered: dict, target: str) -> None:
    docs = rendered[target]
    assert not [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding", "Secret"}]
    [role] = [doc for doc in docs if doc["kind"] == "Role"]
    words = [w for rule in role["rules"] for key in ("apiGroups", "resources", "verbs") for w in rule.get(key, [])]
    assert "*" not in words
    assert not [rule for rule in role["rules"] if "nonResourceURLs" in rule or "resourceNames" in rule]
    assert grants(role) == ROLE_GRANTS


@pytest.mark.parametrize("target", TARGETS)
def test_role_is_bound_to_the_runner_service_account(rendered: dict, target: str) -> None:
    docs, namespace = rendered[target], NAMESPACES[target]
    only(docs, "ServiceAccount", "tunepipe-runner")
    binding = only(docs, "RoleBinding", "tunepipe-tuner")
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "tunepipe-tuner"}
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tunepipe-runner", "namespace": namespace}]


@pytest.mark.parametrize(
    ("target", "role"),
    [("overlays/kind", ("Role", "pipeline-runner")), ("overlays/gke-gpu", ("Role", "pipeline-runner")),
     ("overlays/multi-user", ("ClusterRole", "kubeflow-edit"))],
)
def test_overlays_lend_kfps_runner_grants_to_the_service_account(rendered: dict, target: str, role: tuple) -> None:
    """KFP standalone's namespaced pipeline-runner Role; in a profile, what default-editor has, in that namespace."""
    binding = only(rendered[target], "RoleBinding", "tunepipe-runner-kfp")
    assert (binding["roleRef"]["kind"], binding["roleRef"]["name"]) == role
    namespace = NAMESPACES[target]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "tunepipe-runner", "namespace": namespace}]
    assert [d["metadata"]["name"] for d in rendered["base"] if d["kind"] == "RoleBinding"] == ["tunepipe-tuner"]


# --- placement, images, settings -------------------------------------------------------------------


@pytest.mark.parametrize("target", ["base", "overlays/kind", "overlays/multi-user"])
def test_cpu_targets_ask_for_no_gpu_and_no_node_pool(rendered: dict, target: str) -> None:
    assert not [limits for limits in container_limits(rendered[target]) if GPU in limits]
    spec = smoke_job(rendered[target])
    assert "nodeSelector" not in spec and "tolerations" not in spec
    assert GPU not in str(rendered[target])


def test_gke_gpu_runs_the_smoke_check_on_the_gpu_pool(rendered: dict) -> None:
    spec = smoke_job(rendered["overlays/gke-gpu"])
    [container] = spec["containers"]
    assert container["resources"]["limits"][GPU] == 1
    assert spec["nodeSelector"] == {"cloud.google.com/gke-accelerator": "nvidia-tesla-t4"}
    assert {"key": GPU, "operator": "Exists", "effect": "NoSchedule"} in spec["tolerations"]
    assert container["command"][:2] == ["python", "-c"]
    assert "list_physical_devices('GPU')" in container["command"][2] and "sys.exit" in container["command"][2]


@pytest.mark.parametrize(
    ("target", "image"),
    [("base", "tunepipe"), ("overlays/kind", "tunepipe"), ("overlays/multi-user", "tunepipe"),
     ("overlays/gke-gpu", "tunepipe-gpu")],
)
def test_image_is_tagged_with_the_package_version(rendered: dict, target: str, image: str) -> None:
    [container] = smoke_job(rendered[target])["containers"]
    assert container["image"] == f"{image}:{tunepipe.__version__}"


def test_kustomize_images_retargets_the_registry(tmp_path: Path) -> None:
    overlay = {
        "resources": [os.path.relpath(K8S / "base", tmp_path)],
        "images": [{"name": "tunepipe", "newName": "registry.example/team/tunepipe"}],
    }
    (tmp_path / "kustomization.yaml").write_text(yaml.safe_dump(overlay))
    [container] = smoke_job(render(tmp_path))["containers"]
    assert container["image"] == f"registry.example/team/tunepipe:{tunepipe.__version__}"


def test_gke_service_account_uses_workload_identity(rendered: dict) -> None:
    account = only(rendered["overlays/gke-gpu"], "ServiceAccount", "tunepipe-runner")
    annotation = account["metadata"]["annotations"]["iam.gke.io/gcp-service-account"]
    assert annotation == "tunepipe@PROJECT_ID.iam.gserviceaccount.com"
    assert account["metadata"]["namespace"] == "kubeflow"  # where KFP standalone runs the pipeline pods
    for target in ("base", "overlays/kind", "overlays/multi-user"):
        assert "annotations" not in only(rendered[target], "ServiceAccount", "tunepipe-runner")["metadata"]


@pytest.mark.parametrize(
    ("target", "pipeline_root"),
    [("overlays/kind", "minio://mlpipeline/tunepipe"), ("overlays/gke-gpu", "gs://BUCKET/tunepipe")],
)
def test_settings_name_the_artifact_store_and_kfp_host(rendered: dict, target: str, pipeline_root: str) -> None:
    data = only(rendered[target], "ConfigMap", "tunepipe-settings")["data"]
    assert data == {"pipeline_root": pipeline_root, "kfp_host": "http://localhost:8080"}


def test_placeholders_are_documented() -> None:
    readme = (K8S / "README.md").read_text()
    for placeholder in ("PROJECT_ID", "BUCKET", "nvidia-tesla-t4", "kustomize edit set image"):
        assert placeholder in readme, f"k8s/README.md does not explain {placeholder}"


# --- credentials -----------------------------------------------------------------------------------


@pytest.mark.parametrize("target", TARGETS)
def test_no_manifest_holds_a_credential(rendered: dict, target: str) -> None:
    assert credential_findings(rendered[target]) == []


def test_no_file_under_k8s_holds_a_credential() -> None:
    """Every file, rendered or not (patches, scripts), and every YAML document in them."""
    files = [path for path in K8S.rglob("*") if path.is_file()]
    assert len(files) > 10
    assert [path for path in files if SECRET_TEXT.search(path.read_text(errors="replace"))] == []
    assert [path for path in files if KEY_FILE.search(path.name)] == []
    for path in [path for path in files if path.suffix == ".yaml"]:
        documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
        assert credential_findings(documents, str(path.relative_to(K8S))) == []


@pytest.mark.parametrize(
    "doc",
    [
        {"kind": "ConfigMap", "data": {"db_password": "hunter2"}},
        {"spec": {"containers": [{"env": [{"name": "API_TOKEN", "value": "abc123"}]}]}},
        {"data": {"tls.key": "-----BEGIN PRIVATE KEY-----\nMIIE..."}},
        {"stringData": {"aws": "AKIAABCDEFGHIJKLMNOP"}},
        {"env": [{"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": "/secrets/sa-key.json"}]},
        {"data": {"key.json": '{"type": "service_account", "project_id": "p"}'}},
        {"args": ["--header", "Authorization: token ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"]},
    ],
)
def test_credential_check_finds_planted_secrets(doc: dict) -> None:
    assert credential_findings(doc)
