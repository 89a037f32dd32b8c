"""The kind setup under k8s/kind/ is well formed: the cluster config parses, the scripts pass
`bash -n` and pin what the kind tier depends on. (Running them needs Docker and kind: k8s/README.md.)"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
KIND = ROOT / "k8s" / "kind"
SCRIPTS = ("create-cluster.sh", "delete-cluster.sh")


def test_kind_config_has_one_control_plane_and_one_worker() -> None:
    config = yaml.safe_load((KIND / "kind-config.yaml").read_text())
    assert (config["kind"], config["apiVersion"]) == ("Cluster", "kind.x-k8s.io/v1alpha4")
    assert [node["role"] for node in config["nodes"]] == ["control-plane", "worker"]


@pytest.mark.parametrize("script", SCRIPTS)
def test_script_parses_and_stops_on_errors(script: str) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not on PATH")
    result = subprocess.run([bash, "-n", str(KIND / script)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    assert "set -euo pipefail" in (KIND / script).read_text()


def test_create_cluster_pins_kfp_and_applies_the_kind_overlay() -> None:
    text = (KIND / "create-cluster.sh").read_text()
    assert "PIPELINE_VERSION=${PIPELINE_VERSION:-2.14.3}" in text
    for step in (
        "cluster-scoped-resources?ref=$PIPELINE_VERSION",
        "--for condition=established --timeout=60s crd/applications.app.k8s.io",
        "env/platform-agnostic?ref=$PIPELINE_VERSION",
        "--timeout=15m",
        'kind load docker-image "$IMAGE" --name "$CLUSTER_NAME"',
        "apply -k k8s/overlays/kind",
        "kubectl port-forward -n kubeflow svc/ml-pipeline-ui 8080:80",
    ):
        assert step in text, f"create-cluster.sh lost: {step}"
    for path in ("k8s/kind/kind-config.yaml", "k8s/overlays/kind"):
        assert path in text and (ROOT / path).exists()
