"""Running a command under a memory cap, and measuring its peak resident memory.

The cap is enforced by the kernel where this machine lets us create a memory cgroup (root, and
cgroup v1's ``memory`` controller or cgroup v2 with it enabled): the command runs inside a fresh
cgroup whose limit is the cap, so going over it gets the command OOM-killed, not slowed. Elsewhere
a watchdog thread reads the command's resident memory (``/proc/<pid>/status``) every
:data:`WATCH_SECONDS` and kills it when it is over the cap, which can miss a spike shorter than
that; :attr:`CappedRun.enforcement` says which one ran.

The peak reported is ``ru_maxrss`` of the command's process, read by a small wrapper process that
starts it: resident memory, not the page cache that a cgroup also charges (and reclaims before
killing anything). RSS also counts shared-library pages that other processes already brought into
memory, which the cgroup charged to them: a step's peak RSS can read a little above a cap it ran under.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CGROUP_V1 = Path("/sys/fs/cgroup/memory")
CGROUP_V2 = Path("/sys/fs/cgroup")
WATCH_SECONDS = 0.02


@dataclass(frozen=True)
class CappedRun:
    """What a capped command did: exit status, wall seconds, peak RSS, and whether the cap killed it."""

    returncode: int
    seconds: float
    peak_rss_mib: float
    killed_by_cap: bool
    enforcement: str  # "cgroup v1", "cgroup v2" or "watchdog"
    output: str


def _cgroup(cap_bytes: int) -> tuple[Path, str, str] | None:
    """A fresh cgroup limited to ``cap_bytes``: its folder, its procs file and what enforces it."""
    name = f"tunepipe-cap-{os.getpid()}-{time.monotonic_ns()}"
    for root, limit_file, kind in ((CGROUP_V1, "memory.limit_in_bytes", "cgroup v1"),
                                   (CGROUP_V2, "memory.max", "cgroup v2")):
        if not (root / limit_file).exists() and not (root / "cgroup.controllers").exists():
            continue
        folder = root / name
        try:
            folder.mkdir()
            (folder / limit_file).write_text(str(cap_bytes))
            if kind == "cgroup v2":
                (folder / "memory.swap.max").write_text("0")
            return folder, str(folder / "cgroup.procs"), kind
        except OSError:
            if folder.exists():
                folder.rmdir()
    return None


# Runs the command from a small fresh process, so that its peak RSS is its own: a child forked from
# this (large) process would count this one's pages until it calls exec.
WRAPPER = """
import json, os, resource, subprocess, sys
result, procs, command = sys.argv[1], sys.argv[2], sys.argv[3:]
if procs:
    with open(procs, "w") as handle:
        handle.write(str(os.getpid()))
code = subprocess.run(command).returncode
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
with open(result, "w") as handle:
    json.dump({"rc": code, "peak": peak}, handle)
"""


def _group_rss_bytes(group: int) -> int:
    """Resident memory of every process in process group ``group``."""
    total = 0
    for status in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = status.read_text().rsplit(")", 1)[1].split()
            if int(fields[2]) == group:  # pgrp
                total += int(fields[21]) * os.sysconf("SC_PAGE_SIZE")  # rss, in pages
        except (OSError, IndexError, ValueError):
            continue
    return total


def _watch(process: subprocess.Popen[bytes], cap_bytes: int, tripped: list[bool]) -> None:
    while process.poll() is None:
        if _group_rss_bytes(process.pid) > cap_bytes:
            tripped.append(True)
            os.killpg(process.pid, 9)
            return
        time.sleep(WATCH_SECONDS)


def run_capped(command: Sequence[str], cap_bytes: int, env: dict[str, str] | None = None,
               cwd: Path | None = None) -> CappedRun:
    """Runs ``command`` with its memory capped at ``cap_bytes``; its output (stdout and stderr) is kept."""
    cgroup = _cgroup(cap_bytes)
    with tempfile.TemporaryDirectory(prefix="tunepipe-memcap-") as scratch:
        result, log = Path(scratch) / "result.json", Path(scratch) / "output.log"
        started = time.perf_counter()
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-c", WRAPPER, str(result), cgroup[1] if cgroup else "", *command],
                stdout=output, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}, cwd=cwd,
                start_new_session=True)
            tripped: list[bool] = []
            if cgroup is None:
                threading.Thread(target=_watch, args=(process, cap_bytes, tripped), daemon=True).start()
            process.wait()
        seconds = time.perf_counter() - started
        measured = json.loads(result.read_text()) if result.exists() else {"rc": -9, "peak": float("nan")}
        text = log.read_text(errors="replace")
    killed = bool(tripped)
    if cgroup is not None:
        killed = measured["rc"] == -9 and _oom_killed(cgroup[0], cgroup[2])
        cgroup[0].rmdir()
    return CappedRun(measured["rc"], seconds, measured["peak"], killed, cgroup[2] if cgroup else "watchdog", text)


def _oom_killed(folder: Path, kind: str) -> bool:
    """Whether the cgroup's OOM killer fired (a SIGKILL from anyone else is not the cap)."""
    events = folder / ("memory.oom_control" if kind == "cgroup v1" else "memory.events")
    try:
        for line in events.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill" and int(value) > 0:
                return True
        return (folder / "memory.failcnt").exists() and int((folder / "memory.failcnt").read_text()) > 0
    except (OSError, ValueError):
        return True
