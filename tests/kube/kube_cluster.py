"""What the kube tier's tests share: kubectl and the Python client against the cluster that
TUNEPIPE_KUBECONFIG names, manifests of k8s/ rendered into a namespace of the test's own, and a
service-account token used the way a pipeline step's pod uses its own.

Every test works in namespaces it creates (``tpk-...``, deleted at the end), so the tier runs on a
user's kind cluster without touching what is deployed there, and runs again on the same cluster.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

import tunepipe

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
CLUSTER_SCRIPT = K8S / "cluster" / "cluster.sh"
FIELD_MANAGER = "tunepipe-kube-tests"
# Labels a namespace carries to enforce the restricted Pod Security Standard, as k8s/base/namespace.yaml.
RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
    "pod-security.kubernetes.io/warn": "restricted",
}
KWOK_NODE_ANNOTATION = "kwok.x-k8s.io/node"
# What puts a pod on a kwok node of k8s/cluster/cluster.sh (labelled `type: kwok`, tainted so that
# nothing lands there by chance): for tests whose pods only have to be admitted and scheduled.
KWOK_PLACEMENT = {
    "nodeSelector": {"type": "kwok"},
    "tolerations": [{"key": KWOK_NODE_ANNOTATION, "operator": "Exists", "effect": "NoSchedule"}],
}
RUNNER = "tunepipe-runner"  # the run identity of k8s/base
IMAGE = f"tunepipe:{tunepipe.__version__}"


def wait_until(check: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.5) -> Any:
    """Polls ``check`` until it returns something truthy; fails naming ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout_s:.0f} s: {what}")
        time.sleep(interval_s)


def assert_contains(stored: Any, sent: Any, where: str) -> None:
    """Every field of ``sent`` is in ``stored`` with the same value (the server may add defaults)."""
    if isinstance(sent, dict):
        assert isinstance(stored, dict), f"{where}: {stored!r} is not an object"
        for key, value in sent.items():
            assert key in stored, f"{where}.{key} was dropped by the API server"
            assert_contains(stored[key], value, f"{where}.{key}")
    elif isinstance(sent, list):
        assert isinstance(stored, list) and len(stored) == len(sent), f"{where}: {stored!r} != {sent!r}"
        for index, (s, v) in enumerate(zip(stored, sent, strict=True)):
            assert_contains(s, v, f"{where}[{index}]")
    else:
        assert stored == sent, f"{where}: stored {stored!r}, sent {sent!r}"


@dataclass
class Cluster:
    """The cluster under test: its kubeconfig, kubectl, an admin client, where its API server is."""

    kubeconfig: Path

    def kubectl(self, *args: str, stdin: str | None = None, check: bool = True,
                timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(["kubectl", f"--kubeconfig={self.kubeconfig}", *args], input=stdin,
                              capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise AssertionError(f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    def admin(self) -> Any:
        """A ``kubernetes.client.ApiClient`` with the kubeconfig's own (admin) identity."""
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def _current(self) -> tuple[dict[str, Any], dict[str, Any]]:
        config = yaml.safe_load(self.kubeconfig.read_text())
        context = next(c["context"] for c in config["contexts"] if c["name"] == config["current-context"])
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        return context, cluster

    @property
    def server(self) -> str:
        return str(self._current()[1]["server"])

    def ca_bytes(self) -> bytes:
        cluster = self._current()[1]
        if "certificate-authority-data" in cluster:
            return base64.b64decode(cluster["certificate-authority-data"])
        path = Path(cluster["certificate-authority"])
        return (path if path.is_absolute() else self.kubeconfig.parent / path).read_bytes()

    def apply(self, documents: list[dict[str, Any]], *extra: str) -> subprocess.CompletedProcess[str]:
        """Server-side apply with strict field validation: an unknown or misspelt field is an error."""
        text = yaml.safe_dump_all(documents)
        return self.kubectl("apply", "--server-side", f"--field-manager={FIELD_MANAGER}", "--validate=strict",
                            *extra, "-f", "-", stdin=text)

    def create(self, documents: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
        """``kubectl create`` (not checked: the caller looks at the answer)."""
        return self.kubectl("create", "-f", "-", stdin=yaml.safe_dump_all(documents), check=False)

    def get(self, *args: str) -> dict[str, Any]:
        return dict(json.loads(self.kubectl("get", *args, "-o", "json").stdout))

    def exists(self, *args: str) -> bool:
        return self.kubectl("get", *args, "--ignore-not-found", "-o", "name", check=False).stdout.strip() != ""

    def is_kwok_node(self, name: str) -> bool:
        node = self.get("node", name)
        return node["metadata"].get("annotations", {}).get(KWOK_NODE_ANNOTATION) == "fake"

    def kwok_nodes(self) -> list[str]:
        """Names of the nodes kwok simulates (none on a kind cluster)."""
        return [node["metadata"]["name"] for node in self.get("nodes")["items"]
                if node["metadata"].get("annotations", {}).get(KWOK_NODE_ANNOTATION) == "fake"]

    def simulated_placement(self) -> dict[str, Any]:
        """Pod spec fields that place a pod on a kwok node when the cluster has one: for pods that
        need not run (where none is, as on kind, the pod runs on a real node: nothing is added)."""
        return dict(KWOK_PLACEMENT) if self.kwok_nodes() else {}

    def create_namespace(self, purpose: str) -> str:
        """A fresh namespace that enforces the restricted Pod Security Standard."""
        name = f"tpk-{purpose}-{uuid.uuid4().hex[:6]}"
        self.apply([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": RESTRICTED}}])
        # kube-controller-manager's service-account controller gives every namespace its `default` account
        wait_until(lambda: self.exists("serviceaccount", "default", "-n", name), 30, f"serviceaccount {name}/default")
        return name

    def delete_namespace(self, name: str) -> None:
        self.kubectl("delete", "namespace", name, "--wait=false", "--ignore-not-found", check=False)


def render(target: str, namespace: str) -> list[dict[str, Any]]:
    """``k8s/<target>`` rendered by kustomize into ``namespace`` instead of its own.

    kustomize itself moves every object and every RoleBinding subject (a Namespace object is renamed),
    exactly as a user's ``namespace:`` line would; the kustomization sits next to a link to k8s/,
    because kustomize takes no absolute paths.
    """
    with tempfile.TemporaryDirectory(prefix="tpk-render-") as scratch:
        (Path(scratch) / "k8s").symlink_to(K8S)
        (Path(scratch) / "kustomization.yaml").write_text(yaml.safe_dump({
            "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
            "namespace": namespace, "resources": [f"k8s/{target}"],
        }))
        done = subprocess.run(["kubectl", "kustomize", scratch], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc]


@contextmanager
def token_client(cluster: Cluster, token: str) -> Iterator[Any]:
    """A ``kubernetes.client.ApiClient`` that authenticates with ``token`` and nothing else."""
    from kubernetes import client

    with tempfile.NamedTemporaryFile(prefix="tpk-ca-", suffix=".crt") as ca:
        ca.write(cluster.ca_bytes())
        ca.flush()
        configuration = client.Configuration()
        configuration.host = cluster.server
        configuration.api_key = {"authorization": f"Bearer {token}"}
        configuration.ssl_ca_cert = ca.name
        with client.ApiClient(configuration) as api:
            yield api


def service_account_token(api_client: Any, namespace: str, account: str, pod: dict[str, Any] | None = None) -> str:
    """A TokenRequest token of ``account``, bound to ``pod`` (name and uid) as a pod's own token is."""
    from kubernetes import client

    spec: dict[str, Any] = {"audiences": [], "expirationSeconds": 3600}
    if pod is not None:
        spec["boundObjectRef"] = {"apiVersion": "v1", "kind": "Pod", "name": pod["metadata"]["name"],
                                  "uid": pod["metadata"]["uid"]}
    answer = client.CoreV1Api(api_client).create_namespaced_service_account_token(
        account, namespace, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    return str(answer.status.token)


@contextmanager
def in_pod(cluster: Cluster, token: str, namespace: str, mount: Path, hostname: str | None = None) -> Iterator[None]:
    """Makes ``kubernetes.config.load_incluster_config()`` see what it sees in a pod of ``namespace``:
    the service's host and port in the environment, the token, CA and namespace in the folder
    ``mount`` standing in for /var/run/secrets/kubernetes.io/serviceaccount (it must outlive the
    clients made here, which read the CA file when they connect), and, when given, ``hostname`` as
    this machine's name (Kubernetes names a pod's host after the pod).

    The client's default configuration, which ``load_incluster_config`` replaces, is restored after.
    """
    import socket

    from kubernetes import client, config
    from kubernetes.config import incluster_config

    url = urlsplit(cluster.server)
    saved_default = client.Configuration.get_default_copy()
    saved = {name: getattr(incluster_config, name) for name in ("SERVICE_TOKEN_FILENAME", "SERVICE_CERT_FILENAME")}
    saved_env = {name: os.environ.get(name) for name in ("KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT")}
    saved_hostname = socket.gethostname
    mount.mkdir(parents=True, exist_ok=True)
    (mount / "token").write_text(token)
    (mount / "ca.crt").write_bytes(cluster.ca_bytes())
    (mount / "namespace").write_text(namespace)
    incluster_config.SERVICE_TOKEN_FILENAME = str(mount / "token")
    incluster_config.SERVICE_CERT_FILENAME = str(mount / "ca.crt")
    os.environ["KUBERNETES_SERVICE_HOST"] = str(url.hostname)
    os.environ["KUBERNETES_SERVICE_PORT"] = str(url.port or 443)
    if hostname is not None:
        socket.gethostname = lambda: hostname
    try:
        config.load_incluster_config()
        yield
    finally:
        socket.gethostname = saved_hostname
        for name, value in saved.items():
            setattr(incluster_config, name, value)
        for name, env_value in saved_env.items():
            if env_value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = env_value
        client.Configuration.set_default(saved_default)


def restricted_pod(name: str, namespace: str, image: str, account: str,
                   labels: dict[str, str] | None = None, placement: dict[str, Any] | None = None) -> dict[str, Any]:
    """A pod that meets the restricted standard and sleeps: the stand-in of a pipeline step's pod.

    ``placement`` adds pod spec fields (node selector, tolerations: see :meth:`Cluster.simulated_placement`).
    The image is never pulled: it is imported into the node (``make cluster-up``) or loaded into kind.
    """
    pod = {
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {
            "serviceAccountName": account,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001, "runAsGroup": 10001,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "main", "image": image, "imagePullPolicy": "Never", "command": ["sleep", "3600"],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True, "runAsNonRoot": True},
            }],
            "terminationGracePeriodSeconds": 1,
            **(placement or {}),
        },
    }
    return pod


@dataclass
class Step:
    """A stand-in of a pipeline step's pod (running as tunepipe-runner), and a token bound to it."""

    namespace: str
    pod: dict[str, Any]
    token: str
    mount: Path  # the pod's service-account mount, as :func:`in_pod` lays it out

    @property
    def name(self) -> str:
        return str(self.pod["metadata"]["name"])


def launcher_api(cluster: Cluster, step: Step) -> tuple[Any, Any]:
    """The launchers' cluster API made in ``step``'s pod, and the :class:`StepPod` they read from
    that pod (``read_step_pod``, by this process's hostname, as in the step)."""
    from tunepipe.errors import TuningError
    from tunepipe.execution.k8s.api import KubernetesClusterApi
    from tunepipe.execution.k8s.pods import read_step_pod

    with in_pod(cluster, step.token, step.namespace, step.mount, hostname=step.name):
        api = KubernetesClusterApi()
        return api, read_step_pod(api, step.namespace, TuningError, "the kube tier's launcher")
