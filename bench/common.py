"""What every benchmark section shares: the result shape, medians, tables and the machine header.

Each section module in ``bench/`` exposes ``run(quick: bool) -> Section``; ``bench/run_all.py``
calls them in order and writes ``docs/benchmarks.md`` from the sections it gets back. A section
measures everything it reports in the same run (ratios are never formed across runs, because
the machines are shared and noisy) and states each goal with the figure that decides it.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The distributions whose versions decide the figures (tunepipe.reports.modelcard.package_versions reads them).
PACKAGES = ("tunepipe", "kfp", "keras", "keras-tuner", "tensorflow-cpu", "tensorflow", "pandas", "numpy",
            "scikit-learn")


@dataclass
class Goal:
    """One goal of the benchmark issue and the figure measured for it.

    Attributes:
        name: what is measured, e.g. ``"orchestration overhead"``.
        target: the goal in words, e.g. ``"<= 15% of a fresh run"``.
        measured: the measured figure in words, e.g. ``"11.2% (median of 3)"``.
        met: whether the figure meets the target; None where it cannot be decided here.
        note: why a missed goal is missed and what would close it (empty when met).
    """

    name: str
    target: str
    measured: str
    met: bool | None
    note: str = ""


@dataclass
class Section:
    """A benchmark section as it appears in docs/benchmarks.md.

    Attributes:
        title: the ``##`` heading.
        command: the command that reproduces this section alone.
        body: Markdown below the heading: what was run, tables, findings.
        goals: the goals this section decides, for the summary table at the top.
    """

    title: str
    command: str
    body: str
    goals: list[Goal] = field(default_factory=list)


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (the figure each repeated measurement reports)."""
    return float(statistics.median(values))


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats are written with 3 significant decimals unless already strings."""

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """Cores, memory, CPU model, Python and the load average when the suite started."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return {"cores": str(os.cpu_count()), "memory": f"{memory_gib:.0f} GiB", "cpu": cpu,
            "python": platform.python_version(), "load average (1, 5, 15 min)": load}


@dataclass
class ChildRun:
    """A command run in a fresh process: its wall time, peak RSS and output."""

    seconds: float
    peak_rss_mib: float
    stdout: str


def run_child(command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> ChildRun:
    """Runs ``command`` to completion and measures it on its own.

    The peak RSS is that of the largest process the command started (``ru_maxrss`` of waited-for
    children, read through a tiny wrapper so earlier children of this process do not count).

    Raises:
        RuntimeError: the command failed; the message carries the end of its output.
    """
    wrapper = (
        "import json, resource, subprocess, sys, time\n"
        "start = time.perf_counter()\n"
        "done = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
        "seconds = time.perf_counter() - start\n"
        "peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
        "sys.stderr.write(done.stderr)\n"
        "print(json.dumps({'rc': done.returncode, 'seconds': seconds, 'peak': peak, 'out': done.stdout}))\n"
    )
    done = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, cwd=cwd or REPO)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["rc"] != 0:
        raise RuntimeError(f"{' '.join(command)} exited {result['rc']}:\n{done.stderr[-3000:]}")
    return ChildRun(result["seconds"], result["peak"], result["out"])
