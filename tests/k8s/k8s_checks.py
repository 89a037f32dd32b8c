"""Checks over rendered Kubernetes objects, kept apart from the tests so they can be tested too.

``pss_violations`` follows the "restricted" Pod Security Standard
(https://kubernetes.io/docs/concepts/security/pod-security-standards/) plus this project's own rule
that root filesystems are read-only. ``credential_findings`` looks for literal secrets.
"""

from __future__ import annotations

import re
from typing import Any

# Volume types the restricted standard allows; anything else (hostPath, nfs, ...) is refused.
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
                   "secret"}
SAFE_SECCOMP = {"RuntimeDefault", "Localhost"}
SECRET_NAME = re.compile(r"pass(word|wd)?|token|secret|api[_-]?key|credential|private[_-]?key|access[_-]?key", re.I)
SECRET_TEXT = re.compile(r"-----BEGIN|AKIA[0-9A-Z]{16}|\"private_key\"")


def pod_specs(doc: dict[str, Any]) -> list[dict[str, Any]]:
    """The pod specs a workload object creates (none for other kinds)."""
    spec = doc.get("spec") or {}
    kind = doc.get("kind")
    if kind == "Pod":
        return [spec]
    if kind == "CronJob":
        return [spec["jobTemplate"]["spec"]["template"]["spec"]]
    if kind in {"Job", "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "ReplicationController"}:
        return [spec["template"]["spec"]]
    return []


def pss_violations(spec: dict[str, Any]) -> list[str]:
    """Every way ``spec`` (a pod spec) breaks the restricted standard or read-only root filesystems."""
    problems = [f"{field} is true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    for volume in spec.get("volumes", []):
        types = set(volume) - {"name"}
        if not types <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume.get('name')} has disallowed type {sorted(types - ALLOWED_VOLUMES)}")
    pod = spec.get("securityContext") or {}
    if pod.get("runAsUser") == 0:
        problems.append("pod runAsUser is 0 (root)")
    containers = [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]
    if not containers:
        problems.append("pod has no containers")
    for container in containers:
        name = container.get("name")
        problems += [f"container {name}: {problem}" for problem in _container_violations(container, pod)]
    return problems


def _container_violations(container: dict[str, Any], pod: dict[str, Any]) -> list[str]:
    ctx = container.get("securityContext") or {}
    capabilities = ctx.get("capabilities") or {}
    seccomp = (ctx.get("seccompProfile") or pod.get("seccompProfile") or {}).get("type")
    checks = {
        "privileged": ctx.get("privileged") is True,
        "allowPrivilegeEscalation is not false": ctx.get("allowPrivilegeEscalation") is not False,
        "capabilities do not drop ALL": "ALL" not in capabilities.get("drop", []),
        "capabilities add more than NET_BIND_SERVICE": bool(set(capabilities.get("add", [])) - {"NET_BIND_SERVICE"}),
        "runAsNonRoot is not true": ctx.get("runAsNonRoot", pod.get("runAsNonRoot")) is not True,
        "runAsUser is 0 (root)": ctx.get("runAsUser") == 0,
        f"seccompProfile {seccomp!r} is not RuntimeDefault or Localhost": seccomp not in SAFE_SECCOMP,
        "procMount is not Default": ctx.get("procMount", "Default") != "Default",
        "readOnlyRootFilesystem is not true": ctx.get("readOnlyRootFilesystem") is not True,
        "uses a hostPort": any(port.get("hostPort") for port in container.get("ports", [])),
    }
    return [problem for problem, broken in checks.items() if broken]


def credential_findings(node: Any, where: str = "") -> list[str]:
    """Places in ``node`` (a parsed manifest) that hold what looks like a literal credential."""
    findings = []
    if isinstance(node, dict):
        # env entries and similar: {"name": "DB_PASSWORD", "value": "hunter2"}
        name, value = node.get("name"), node.get("value")
        if isinstance(name, str) and SECRET_NAME.search(name) and isinstance(value, str):
            findings.append(f"{where}: {name} has a literal value")
        for key, child in node.items():
            if isinstance(child, str) and child and SECRET_NAME.search(str(key)):
                findings.append(f"{where}.{key}: literal value")
            findings += credential_findings(child, f"{where}.{key}")
    elif isinstance(node, list):
        for index, item in enumerate(node):
            findings += credential_findings(item, f"{where}[{index}]")
    elif isinstance(node, str) and SECRET_TEXT.search(node):
        findings.append(f"{where}: text that looks like a key")
    return findings
