"""What this process may use of its machine: CPUs and memory, container limits included.

A pod's container sees the node's cores and memory in ``os.cpu_count()`` and ``/proc/meminfo``
but may use only its cgroup's share (the task's CPU and memory limits); these functions read
both and return the smaller, for cgroup v2 (current Kubernetes nodes) and v1. No Keras here:
the layout of parallel work is decided before TensorFlow is imported.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

CGROUP = Path("/sys/fs/cgroup")
MEMINFO = Path("/proc/meminfo")
# cgroup v1 writes a page-aligned huge number for "no limit"; anything above this is no limit
UNLIMITED_BYTES = 2**60


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def _cgroup_cpus(root: Path) -> float | None:
    """The CPU quota in CPUs (``cpu.max`` of v2, ``cfs_quota_us/cfs_period_us`` of v1); None: no quota."""
    v2 = _read(root / "cpu.max")
    if v2 is not None:
        quota, _, period = v2.partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100000)
    quota_v1, period_v1 = _read(root / "cpu" / "cpu.cfs_quota_us"), _read(root / "cpu" / "cpu.cfs_period_us")
    if quota_v1 is None or period_v1 is None or int(quota_v1) <= 0:
        return None
    return int(quota_v1) / int(period_v1)


def usable_cpus(root: Path = CGROUP) -> int:
    """CPUs this process may run on: its affinity, capped by the cgroup's quota (rounded down, at least 1)."""
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    quota = _cgroup_cpus(root)
    return max(1, min(affinity, math.floor(quota)) if quota is not None else affinity)


def _cgroup_free_bytes(root: Path) -> int | None:
    """The cgroup's memory limit less its current use; None where no limit is set."""
    for limit_file, usage_file in (("memory.max", "memory.current"),
                                   ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes")):
        limit = _read(root / limit_file)
        if limit is None:
            continue
        if limit == "max" or int(limit) >= UNLIMITED_BYTES:
            return None
        return int(limit) - int(_read(root / usage_file) or 0)
    return None


def available_memory_mib(root: Path = CGROUP, meminfo: Path = MEMINFO) -> float:
    """Memory this process could still take, in MiB: the machine's ``MemAvailable``, capped by the cgroup's headroom."""
    text = _read(meminfo) or ""
    available = next((int(line.split()[1]) * 1024 for line in text.splitlines() if line.startswith("MemAvailable:")),
                     None)
    free = [value for value in (available, _cgroup_free_bytes(root)) if value is not None]
    return min(free) / 2**20 if free else 0.0
