"""CPUs and memory a step may use, read from fake cgroup v1 and v2 trees."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tunepipe.execution.host import available_memory_mib, usable_cpus

pytestmark = pytest.mark.unit

MIB = 2**20


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    return root


def _meminfo(tmp_path: Path, available_mib: int) -> Path:
    path = tmp_path / "meminfo"
    path.write_text(f"MemTotal:       99999999 kB\nMemAvailable:   {available_mib * 1024} kB\n")
    return path


def test_cpus_follow_the_affinity_capped_by_a_v2_or_v1_quota(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path / "none") == affinity
    assert usable_cpus(_tree(tmp_path / "v2max", {"cpu.max": "max 100000"})) == affinity
    assert usable_cpus(_tree(tmp_path / "v2", {"cpu.max": "50000 100000"})) == 1  # half a CPU: at least 1
    assert usable_cpus(_tree(tmp_path / "v1", {"cpu/cpu.cfs_quota_us": "-1", "cpu/cpu.cfs_period_us": "100000"})) \
        == affinity
    big = _tree(tmp_path / "v1big", {"cpu/cpu.cfs_quota_us": "6400000", "cpu/cpu.cfs_period_us": "100000"})
    assert usable_cpus(big) == min(affinity, 64)


def test_memory_is_the_smaller_of_the_machine_and_the_cgroup_headroom(tmp_path: Path) -> None:
    meminfo = _meminfo(tmp_path, 20000)
    assert available_memory_mib(tmp_path / "none", meminfo) == 20000
    v2 = _tree(tmp_path / "v2", {"memory.max": str(2432 * MIB), "memory.current": str(400 * MIB)})
    assert available_memory_mib(v2, meminfo) == 2032
    assert available_memory_mib(_tree(tmp_path / "v2max", {"memory.max": "max"}), meminfo) == 20000
    unlimited_v1 = _tree(tmp_path / "v1", {"memory/memory.limit_in_bytes": str(2**63 - 4096),
                                           "memory/memory.usage_in_bytes": str(100 * MIB)})
    assert available_memory_mib(unlimited_v1, meminfo) == 20000
    limited_v1 = _tree(tmp_path / "v1l", {"memory/memory.limit_in_bytes": str(3000 * MIB),
                                          "memory/memory.usage_in_bytes": str(1000 * MIB)})
    assert available_memory_mib(limited_v1, _meminfo(tmp_path, 1500)) == 1500
