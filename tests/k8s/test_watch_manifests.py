"""k8s/watch renders offline, validates against the Kubernetes schema, meets the restricted Pod
Security Standard, and runs the real `tunepipe watch` command line: its arguments parse with the
CLI's own parser, its liveness probe asks the port the watcher serves, its configuration loads."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest
import yaml
from credential_checks import credential_findings
from k8s_checks import pod_specs, pss_violations
from test_manifests import K8S, KUBERNETES_VERSION, LABELS, only, render

import tunepipe
from pipelines.cli import _parser
from tunepipe.config import load_config
from tunepipe.identity import IMAGE_UID

pytestmark = pytest.mark.k8s


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return render(K8S / "watch")


def _pod(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (spec,) = pod_specs(only(docs, "Deployment", "tunepipe-watch"))
    return spec


def test_every_object_validates_and_carries_the_labels(docs: list) -> None:
    assert {(doc["kind"], doc["metadata"]["name"]) for doc in docs} == {
        ("Deployment", "tunepipe-watch"), ("ConfigMap", "tunepipe-watch")}
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        assert LABELS.items() <= doc["metadata"]["labels"].items()
        assert doc["metadata"]["namespace"] == "kubeflow"  # where KFP standalone's tunepipe-runner lives
    assert credential_findings(docs) == []


def test_one_replica_as_the_runner_meeting_the_restricted_standard(docs: list) -> None:
    deployment = only(docs, "Deployment", "tunepipe-watch")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    pod = _pod(docs)
    assert pss_violations(pod) == []
    assert pod["serviceAccountName"] == "tunepipe-runner" and pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsUser"] == IMAGE_UID
    (container,) = pod["containers"]
    assert container["image"] == f"tunepipe:{tunepipe.__version__}"


def test_the_command_parses_and_the_probe_asks_the_port_the_watcher_serves(docs: list) -> None:
    (container,) = _pod(docs)["containers"]
    assert container["command"] == ["tunepipe", "watch"]
    args = _parser().parse_args(["watch", *container["args"]])
    assert args.location.startswith("gs://") and args.health_port and not args.local and not args.once
    probe = container["livenessProbe"]["httpGet"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert probe["path"] == "/healthz" and ports[probe["port"]] == args.health_port
    mount = next(m for m in container["volumeMounts"] if m["name"] == "config")
    assert args.config.startswith(mount["mountPath"] + "/")


def test_the_runs_configuration_loads_and_names_the_label_and_the_champion(docs: list, tmp_path) -> None:
    (container,) = _pod(docs)["containers"]
    args = _parser().parse_args(["watch", *container["args"]])
    text = only(docs, "ConfigMap", "tunepipe-watch")["data"][args.config.rsplit("/", 1)[1]]
    path = tmp_path / "watch.yaml"
    path.write_text(text.replace("BUCKET", "example-bucket"))  # the placeholder (k8s/README.md) is no bucket name
    config = load_config(str(path))
    assert config.data.label and config.export.export_root and yaml.safe_load(text)["export"]["model_name"]
