"""Checks over rendered Kubernetes objects, kept apart from the tests so they can be tested too.

``pss_violations`` follows the "restricted" Pod Security Standard
(https://kubernetes.io/docs/concepts/security/pod-security-standards/) plus this project's own rule
that root filesystems are read-only with an ``emptyDir`` at /tmp as the scratch space. Literal
secrets are looked for by tests/credential_checks.py.
"""

from __future__ import annotations

from typing import Any

# Volume types the restricted standard allows; anything else (hostPath, nfs, ...) is refused.
ALLOWED_VOLUMES = {"configMap", "csi", "downwardAPI", "emptyDir", "ephemeral", "persistentVolumeClaim", "projected",
                   "secret"}
SAFE_SECCOMP = {"RuntimeDefault", "Localhost"}
SAFE_APPARMOR = {"RuntimeDefault", "Localhost"}
SAFE_SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
# The sysctls the baseline standard (and so restricted) allows a pod to set.
SAFE_SYSCTLS = {"kernel.shm_rmid_forced", "net.ipv4.ip_local_port_range", "net.ipv4.ip_unprivileged_port_start",
                "net.ipv4.tcp_syncookies", "net.ipv4.ping_group_range", "net.ipv4.ip_local_reserved_ports",
                "net.ipv4.tcp_keepalive_time", "net.ipv4.tcp_fin_timeout", "net.ipv4.tcp_keepalive_intvl",
                "net.ipv4.tcp_keepalive_probes"}
SCRATCH = "/tmp"


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
    if kind == "InferenceService":
        return [_predictor_pod(spec["predictor"])]
    return []


# Predictor fields that are KServe's own, not the pod's; a model-format key (tensorflow, model, ...)
# holds the predictor's one container.
_KSERVE_FIELDS = {"minReplicas", "maxReplicas", "scaleTarget", "scaleMetric", "scaleMetricType", "autoScaling",
                  "containerConcurrency", "timeout", "canaryTrafficPercent", "logger", "batcher", "labels",
                  "annotations", "deploymentStrategy", "storageUris", "storageContainerName", "workerSpec"}
_MODEL_FORMATS = {"model", "tensorflow", "sklearn", "xgboost", "pytorch", "triton", "onnx", "pmml", "lightgbm",
                  "paddle", "huggingface"}


def _predictor_pod(predictor: dict[str, Any]) -> dict[str, Any]:
    """The pod spec KServe makes of an InferenceService predictor, as far as the manifest decides it.

    KServe adds containers of its own (the storage initializer for a ``storageUri``, Knative's
    queue-proxy in serverless mode): their security settings come from KServe's configuration,
    not from these manifests, so they are not part of this check (k8s/README.md says so).
    """
    pod = {key: value for key, value in predictor.items() if key not in _KSERVE_FIELDS | _MODEL_FORMATS}
    formats = [predictor[key] for key in _MODEL_FORMATS if key in predictor]
    model_containers = [{"name": "kserve-container", **{k: v for k, v in fmt.items()
                                                         if k not in {"storageUri", "runtimeVersion", "runtime",
                                                                      "modelFormat", "protocolVersion",
                                                                      "storage"}}} for fmt in formats]
    pod["containers"] = [*model_containers, *predictor.get("containers", [])]
    return pod


def pss_violations(spec: dict[str, Any]) -> list[str]:
    """Every way ``spec`` (a pod spec) breaks the restricted standard or read-only root filesystems."""
    problems = [f"{field} is true" for field in ("hostNetwork", "hostPID", "hostIPC") if spec.get(field)]
    for volume in spec.get("volumes", []):
        types = set(volume) - {"name"}
        if not types <= ALLOWED_VOLUMES:
            problems.append(f"volume {volume.get('name')} has disallowed type {sorted(types - ALLOWED_VOLUMES)}")
    pod = spec.get("securityContext") or {}
    problems += [f"pod {problem}" for problem in _context_violations(pod)]
    problems += [f"pod sets sysctl {sysctl.get('name')}" for sysctl in pod.get("sysctls", [])
                 if sysctl.get("name") not in SAFE_SYSCTLS]
    containers = [*spec.get("initContainers", []), *spec.get("containers", []), *spec.get("ephemeralContainers", [])]
    if not containers:
        problems.append("pod has no containers")
    scratch = {volume.get("name") for volume in spec.get("volumes", []) if "emptyDir" in volume}
    for container in containers:
        name = container.get("name")
        problems += [f"container {name}: {problem}" for problem in _container_violations(container, pod)]
        mounts = {mount.get("mountPath"): mount.get("name") for mount in container.get("volumeMounts", [])}
        if mounts.get(SCRATCH) not in scratch:
            problems.append(f"container {name}: no emptyDir mounted at {SCRATCH} (the only writable place)")
    return problems


def _context_violations(ctx: dict[str, Any]) -> list[str]:
    """Settings the standard forbids wherever they appear (pod or container security context)."""
    apparmor = (ctx.get("appArmorProfile") or {}).get("type")
    selinux = ctx.get("seLinuxOptions") or {}
    checks = {
        "runAsUser is 0 (root)": ctx.get("runAsUser") == 0,
        f"appArmorProfile {apparmor!r} is not RuntimeDefault or Localhost": apparmor not in SAFE_APPARMOR | {None},
        f"seLinuxOptions type {selinux.get('type')!r} is not a container type":
            selinux.get("type", "") not in SAFE_SELINUX_TYPES,
        "seLinuxOptions sets a user or role": bool(selinux.get("user") or selinux.get("role")),
        "windowsOptions.hostProcess is true": (ctx.get("windowsOptions") or {}).get("hostProcess") is True,
    }
    return [problem for problem, broken in checks.items() if broken]


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
        f"seccompProfile {seccomp!r} is not RuntimeDefault or Localhost": seccomp not in SAFE_SECCOMP,
        "procMount is not Default": ctx.get("procMount", "Default") != "Default",
        "readOnlyRootFilesystem is not true": ctx.get("readOnlyRootFilesystem") is not True,
        "uses a hostPort": any(port.get("hostPort") for port in container.get("ports", [])),
    }
    return [problem for problem, broken in checks.items() if broken] + _context_violations(ctx)
