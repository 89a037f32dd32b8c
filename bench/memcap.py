"""Running a command in a process of its own, with or without a memory cap, and measuring its peak.

:func:`run_measured` is the one way the benchmarks run a child: every section's peak-memory figure
comes from it (``common.run_child`` for the uncapped runs, ``scale.run_steps`` for the capped ones).

The peak is ``VmHWM`` (``/proc/<pid>/status``), the high-water mark of resident memory, of the largest
process the command started: the command and every process of its process group, sampled every
:data:`WATCH_SECONDS` while they run. It is the figure the steps themselves print
(:func:`tunepipe.step_logging.peak_memory_mib`). ``ru_maxrss`` (``RUSAGE_CHILDREN``) is not used: a
process started by ``fork`` and ``exec`` keeps its parent's high-water mark in it, so a step started
from a 2 GiB process reads 2 GiB. Sampling can miss what a process adds in its last
:data:`WATCH_SECONDS`, and a process that lives shorter than that; a step's own line (bench/steplog.py)
is exact where that matters. Resident memory is not the page cache that a cgroup also charges (and
reclaims before killing anything), and counts shared-library pages that other processes already
brought into memory: a step's peak can read a little above a cap it ran under.

A cap is enforced by the kernel where this machine lets us create a memory cgroup (root, and cgroup
v1's ``memory`` controller or cgroup v2 with it enabled): the command runs inside a fresh cgroup whose
limit is the cap, so going over it gets the command OOM-killed, not slowed. Elsewhere the sampler
kills the process group once its resident memory is over the cap, which can miss a spike shorter than
a sample; :attr:`ChildRun.enforcement` says which one ran.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

CGROUP_V1 = Path("/sys/fs/cgroup/memory")
CGROUP_V2 = Path("/sys/fs/cgroup")
# Seconds between samples: short enough to catch a step's growth before the cap or its exit, long
# enough that the sampler costs a fraction of a core (a sample reads one stat file per new process).
WATCH_SECONDS = 0.02


@dataclass(frozen=True)
class ChildRun:
    """What a command did: exit status, wall seconds, peak resident memory (VmHWM) and its output.

    Attributes:
        returncode: The command's exit status (negative: killed by that signal).
        seconds: Wall time from start to exit.
        peak_rss_mib: The largest ``VmHWM`` of the command's processes, in MiB.
        stdout: Its standard output (with ``stderr`` merged in when the run asked for one stream).
        stderr: Its standard error (empty when merged).
        killed_by_cap: Whether the cap killed it (never without a cap).
        enforcement: ``"cgroup v1"``, ``"cgroup v2"`` or ``"watchdog"``; ``""`` without a cap.
    """

    returncode: int
    seconds: float
    peak_rss_mib: float
    stdout: str
    stderr: str = ""
    killed_by_cap: bool = False
    enforcement: str = ""

    @property
    def output(self) -> str:
        """Everything the command printed (stdout, then stderr when they were kept apart)."""
        return self.stdout + self.stderr


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


def _process_group(pid: int) -> int | None:
    """The process group of ``pid`` (``/proc/<pid>/stat``), ``None`` once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            return int(handle.read().rsplit(b")", 1)[1].split()[2])
    except (OSError, IndexError, ValueError):
        return None


def _memory_kib(pid: int) -> tuple[int, int] | None:
    """``(VmHWM, VmRSS)`` of ``pid`` in KiB; ``None`` once it is gone (or a zombie, whose memory is freed)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as handle:
            fields = dict(line.split(b":", 1) for line in handle.read().splitlines() if b":" in line)
        return int(fields[b"VmHWM"].split()[0]), int(fields[b"VmRSS"].split()[0])
    except (OSError, KeyError, IndexError, ValueError):
        return None


class GroupSampler:
    """Follows a process group: the largest ``VmHWM`` any member reached, and the group's resident memory.

    A process is looked up (its ``stat`` file read) once, when it first appears in ``/proc``: that keeps
    a sample cheap on a machine running many processes.

    Args:
        leader: The command's process, leader of its own group (``start_new_session``). It is followed
            from the start, even before its ``setsid`` is seen.
    """

    def __init__(self, leader: int) -> None:
        self.group = leader
        self.members = {leader}
        self.seen = {leader}
        self.peak_kib = 0

    def sample(self) -> int:
        """Reads every member's memory once; returns the group's resident memory now, in bytes."""
        for name in os.listdir("/proc"):
            if name.isdigit() and int(name) not in self.seen:
                self.seen.add(int(name))
                if _process_group(int(name)) == self.group:
                    self.members.add(int(name))
        resident = 0
        for pid in sorted(self.members):
            memory = _memory_kib(pid)
            if memory is None:
                self.members.discard(pid)
                continue
            self.peak_kib = max(self.peak_kib, memory[0])
            resident += memory[1] * 1024
        return resident


def _follow(process: subprocess.Popen[bytes], sampler: GroupSampler, cap_bytes: int | None,
            tripped: list[bool]) -> None:
    """Samples until the command exits; kills its group once over ``cap_bytes`` (the watchdog), if given."""
    while process.poll() is None:
        if sampler.sample() > (cap_bytes or float("inf")):
            tripped.append(True)
            os.killpg(process.pid, 9)
            return
        time.sleep(WATCH_SECONDS)


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


def _joining(procs: str) -> object:
    """A ``preexec_fn`` that moves the new process into the cgroup before it runs the command."""
    def join() -> None:
        with open(procs, "w") as handle:
            handle.write(str(os.getpid()))

    return join


def run_measured(command: Sequence[str], cap_bytes: int | None = None, env: dict[str, str] | None = None,
                 cwd: Path | None = None, merge_output: bool = False) -> ChildRun:
    """Runs ``command`` to completion in a new session and measures its peak (see the module docstring).

    Args:
        command: The program and its arguments.
        cap_bytes: Memory cap; ``None`` (default) runs it uncapped.
        env: Variables added to this process's environment (default: none added).
        cwd: Working folder (default: this process's).
        merge_output: Whether stderr goes into stdout, as one log in the order written (default: kept
            apart, so the caller can parse stdout).

    Returns:
        The run, whatever its exit status: the caller decides what a failure means.
    """
    cgroup = _cgroup(cap_bytes) if cap_bytes is not None else None
    started = time.perf_counter()
    process = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT if merge_output else subprocess.PIPE,
        env={**os.environ, **(env or {})}, cwd=cwd, start_new_session=True,
        preexec_fn=_joining(cgroup[1]) if cgroup else None)  # type: ignore[arg-type]
    sampler, tripped = GroupSampler(process.pid), []
    follower = threading.Thread(target=_follow, args=(process, sampler, None if cgroup else cap_bytes, tripped),
                                daemon=True)
    follower.start()
    out, err = process.communicate()
    seconds = time.perf_counter() - started
    follower.join()
    killed = bool(tripped)
    if cgroup is not None:
        killed = process.returncode == -9 and _oom_killed(cgroup[0], cgroup[2])
        cgroup[0].rmdir()
    enforcement = "" if cap_bytes is None else cgroup[2] if cgroup else "watchdog"
    return ChildRun(process.returncode, seconds, sampler.peak_kib / 1024, out.decode(errors="replace"),
                    (err or b"").decode(errors="replace"), killed, enforcement)
