"""NetworkPolicies: ingress denied by default; the tuner's oracle port open only between the tuner's own pods.

The allowed port and labels are checked against what src/tunepipe/execution/k8s/tuning.py puts on the
chief, its Service and the workers, so the launcher and the policy cannot drift apart.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from test_manifests import K8S, OVERLAYS, TARGETS, render  # pytest puts this folder on sys.path

from tunepipe.execution.k8s.pods import StepPod
from tunepipe.execution.k8s.tuning import ORACLE_PORT, TuningLaunch, render_manifests

pytestmark = pytest.mark.k8s

DEFAULT_DENY = "tunepipe-default-deny-ingress"
TUNER_POLICY = "tunepipe-tuner-oracle"
LAUNCH = TuningLaunch("tunepipe-tune-5eed", "tunepipe", StepPod("tunepipe:0.1.0", gpus=1), 2, ["--seed", "1"])


@pytest.fixture(scope="module")
def policies() -> dict[str, dict[str, dict[str, Any]]]:
    """target -> policy name -> NetworkPolicy, for the base and every overlay."""
    return {target: {doc["metadata"]["name"]: doc for doc in render(K8S / target) if doc["kind"] == "NetworkPolicy"}
            for target in TARGETS}


@pytest.fixture(scope="module")
def tuner() -> dict[str, dict[str, Any]]:
    return {doc["kind"]: doc for doc in render_manifests(LAUNCH)}


def selects(selector: dict[str, Any], labels: dict[str, str]) -> bool:
    """Whether a label selector (matchLabels only, as these policies use) selects ``labels``."""
    assert set(selector) <= {"matchLabels"}, f"selector uses more than matchLabels: {selector}"
    return selector.get("matchLabels", {}).items() <= labels.items()


def admitted(policy: dict[str, Any], target: dict[str, str], source: dict[str, str], port: int) -> bool:
    """Whether ``policy`` admits TCP ``port`` on a pod labelled ``target`` from a same-namespace pod ``source``."""
    spec = policy["spec"]
    if not selects(spec["podSelector"], target):
        return False
    for rule in spec.get("ingress", []):
        peers = rule.get("from", [{"podSelector": {}}])  # no "from": every source
        ports = rule.get("ports", [{"port": port}])  # no "ports": every port
        peers_ok = any("podSelector" in peer and selects(peer["podSelector"], source) for peer in peers)
        ports_ok = any(p.get("protocol", "TCP") == "TCP" and p["port"] == port for p in ports)
        if peers_ok and ports_ok:
            return True
    return False


def oracle_policy_problems(policy: dict[str, Any], chief: dict[str, str], worker: dict[str, str]) -> list[str]:
    """How ``policy`` fails to open the oracle port to exactly the tuner's own pods."""
    rules = policy["spec"].get("ingress", [])
    peers = [peer for rule in rules for peer in rule.get("from", [{}])]
    checks = {
        "admits pods of other namespaces or IP ranges": any(set(peer) != {"podSelector"} for peer in peers),
        "workers cannot reach the chief's oracle": not admitted(policy, chief, worker, ORACLE_PORT),
        "a pod that is not the tuner's gets in": admitted(policy, chief, {"app": "someone-else"}, ORACLE_PORT)
        or admitted(policy, chief, {}, ORACLE_PORT),
        "a port other than the oracle's is open": any(admitted(policy, chief, worker, port)
                                                      for port in (ORACLE_PORT + 1, 22, 443)),
        "the policy does not select only the chief": not selects(policy["spec"]["podSelector"], chief)
        or selects(policy["spec"]["podSelector"], worker),
    }
    return [problem for problem, broken in checks.items() if broken]


def pod_labels(tuner: dict[str, dict[str, Any]]) -> tuple[dict[str, str], dict[str, str]]:
    return tuner["Pod"]["metadata"]["labels"], tuner["Job"]["spec"]["template"]["metadata"]["labels"]


def test_ingress_is_denied_by_default_in_the_tunepipe_namespace(policies: dict) -> None:
    spec = policies["base"][DEFAULT_DENY]["spec"]
    assert spec == {"podSelector": {}, "policyTypes": ["Ingress"]}  # every pod, no rule admits anything


@pytest.mark.parametrize("target", OVERLAYS)
def test_overlays_keep_kubeflows_namespace_open(policies: dict, target: str) -> None:
    # every overlay runs tunepipe in a Kubeflow namespace, where a default deny would cut KFP's services apart.
    assert DEFAULT_DENY not in policies[target]
    assert TUNER_POLICY in policies[target]


@pytest.mark.parametrize("target", TARGETS)
def test_only_the_tuners_pods_reach_the_oracle_port(policies: dict, tuner: dict, target: str) -> None:
    policy = policies[target][TUNER_POLICY]
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    assert oracle_policy_problems(policy, *pod_labels(tuner)) == []


def test_policy_port_is_the_port_the_launcher_serves(policies: dict, tuner: dict) -> None:
    [rule] = policies["base"][TUNER_POLICY]["spec"]["ingress"]
    assert [port["port"] for port in rule["ports"]] == [ORACLE_PORT]
    service_port = tuner["Service"]["spec"]["ports"][0]["port"]
    container_port = tuner["Pod"]["spec"]["containers"][0]["ports"][0]["containerPort"]
    assert service_port == container_port == ORACLE_PORT
    worker_env = {e["name"]: e.get("value") for e in tuner["Job"]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert worker_env["KERASTUNER_ORACLE_PORT"] == str(ORACLE_PORT)


BAD_POLICIES = {
    "wrong port": lambda rule, spec: rule["ports"][0].update(port=ORACLE_PORT + 80),
    "every port": lambda rule, spec: rule.pop("ports"),
    "any namespace": lambda rule, spec: rule["from"][0].update(namespaceSelector={}),
    "any pod": lambda rule, spec: rule["from"][0].update(podSelector={}),
    "any source": lambda rule, spec: rule.pop("from"),
    "chief only": lambda rule, spec: rule["from"][0]["podSelector"]["matchLabels"].update({"tunepipe/role": "chief"}),
    "selects workers too": lambda rule, spec: spec["podSelector"]["matchLabels"].pop("tunepipe/role"),
}


@pytest.mark.parametrize("breakage", BAD_POLICIES)
def test_policy_check_rejects_a_broken_or_loosened_policy(policies: dict, tuner: dict, breakage: str) -> None:
    policy = copy.deepcopy(policies["base"][TUNER_POLICY])
    assert oracle_policy_problems(policy, *pod_labels(tuner)) == []
    BAD_POLICIES[breakage](policy["spec"]["ingress"][0], policy["spec"])
    assert oracle_policy_problems(policy, *pod_labels(tuner)), f"a policy with {breakage} passed"


def test_launcher_relies_on_the_policy_and_creates_none(tuner: dict) -> None:
    assert set(tuner) == {"Pod", "Service", "Job"}
    role = yaml.safe_load((Path(K8S) / "base" / "role.yaml").read_text())
    assert not [rule for rule in role["rules"] if "networking.k8s.io" in rule["apiGroups"]]
