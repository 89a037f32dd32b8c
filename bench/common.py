"""What every benchmark section shares: the result shape, medians, ratios, stamps, tables and the machine header.

Each section module in ``bench/`` exposes ``run(quick: bool) -> Section``; ``bench/run_all.py``
calls them one after another and writes ``docs/benchmarks.md`` from the sections it gets back,
each stamped with when and under which load it ran (:class:`Stamp`). A section measures
everything it reports in the same run (ratios are never formed across runs, because the
machines are shared and noisy), forms every ratio as a ratio of medians
(:func:`ratio_of_medians`) and states each goal with the figure that decides it.
"""

from __future__ import annotations

import datetime
import os
import platform
import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memcap import ChildRun, run_measured

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


def load_average() -> list[float]:
    """The 1, 5 and 15 minute load averages, rounded to 0.01."""
    return [round(value, 2) for value in os.getloadavg()]


def now() -> str:
    """The local time as ISO 8601 to the second, with its UTC offset."""
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def _loads(values: Sequence[float] | None) -> str:
    return ", ".join(f"{value:.1f}" for value in values) if values else "not recorded"


@dataclass
class Stamp:
    """When a section ran and under which load: the page's evidence that sections did not overlap.

    Attributes:
        section: the section's name (its module in ``bench/``).
        started: ISO 8601 time (seconds, UTC offset) the section started.
        ended: ISO 8601 time it ended; empty while it runs, or for results kept before ends were recorded.
        load_start: 1, 5 and 15 minute load averages at the start.
        load_end: the same at the end (empty when not recorded).
        quick: whether the section ran in quick mode.
    """

    section: str
    started: str
    ended: str = ""
    load_start: list[float] = field(default_factory=list)
    load_end: list[float] = field(default_factory=list)
    quick: bool = False

    @classmethod
    def begin(cls, section: str, quick: bool) -> Stamp:
        """A stamp for ``section`` opened now, with the current load."""
        return cls(section, now(), load_start=load_average(), quick=quick)

    def finish(self) -> Stamp:
        """Closes the stamp now, with the current load; returns it."""
        self.ended, self.load_end = now(), load_average()
        return self

    @classmethod
    def from_json(cls, kept: dict[str, Any], section: str) -> Stamp:
        """A stamp kept by ``run_all.py --results`` for ``section``, also in the older form (start minute, load)."""
        if "ran" in kept:  # kept before end times were recorded: {"ran", "quick", "load": "a, b, c"}
            load = [float(value) for value in str(kept.get("load", "")).split(",") if value.strip()]
            return cls(section, str(kept["ran"]), load_start=load, quick=bool(kept.get("quick")))
        return cls(**{"section": section, **kept})

    def row(self) -> list[str]:
        """This stamp's row of the page's schedule table."""
        mode = " (quick)" if self.quick else ""
        return [f"{self.section}{mode}", self.started, self.ended or "not recorded", _loads(self.load_start),
                _loads(self.load_end)]

    def span(self) -> tuple[datetime.datetime, datetime.datetime] | None:
        """Start and end as times, or None where the end was not recorded."""
        if not self.ended:
            return None
        return datetime.datetime.fromisoformat(self.started), datetime.datetime.fromisoformat(self.ended)

    def line(self) -> str:
        """The italic line that opens a section: when it ran and the load at its start and end."""
        span = f"from {self.started} to {self.ended}" if self.ended else f"from {self.started} (end not recorded)"
        return (f"_Ran {span}{' in quick mode' if self.quick else ''}; load average (1, 5, 15 min) "
                f"{_loads(self.load_start)} at the start, {_loads(self.load_end)} at the end._")


SCHEDULE_HEADER = ("section", "started", "ended", "load at start", "load at end")


def schedule(stamps: Sequence[Stamp]) -> str:
    """The page header's table: which section ran when, under which load (1, 5, 15 min averages)."""
    return table(SCHEDULE_HEADER, [stamp.row() for stamp in stamps])


def overlapping(stamps: Sequence[Stamp]) -> list[tuple[str, str]]:
    """Pairs of sections whose recorded runs overlap in time (none when each ran after the other)."""
    spans = [(stamp.section, span) for stamp in stamps if (span := stamp.span())]
    return [(first, second) for index, (first, (start, end)) in enumerate(spans)
            for second, (other_start, other_end) in spans[index + 1:] if start < other_end and other_start < end]


@dataclass
class Section:
    """A benchmark section as it appears in docs/benchmarks.md.

    Attributes:
        title: the ``##`` heading.
        command: the command that reproduces this section alone.
        body: Markdown below the heading: what was run, tables, findings.
        goals: the goals this section decides, for the summary table at the top.
        stamp: when and under which load it ran (set by ``run_all.py``, not by the section).
    """

    title: str
    command: str
    body: str
    goals: list[Goal] = field(default_factory=list)
    stamp: Stamp | None = None


def median(values: Sequence[float]) -> float:
    """The median of ``values`` (the figure each repeated measurement reports)."""
    return float(statistics.median(values))


def ratio_of_medians(numerators: Sequence[float], denominators: Sequence[float]) -> float:
    """``median(numerators) / median(denominators)``: how every ratio on the page is formed.

    Each figure in a table is a median over repetitions, so a ratio built from the same medians
    agrees with the table; the median of per-repetition ratios (or a ratio of means) would not,
    and a mean would let one disturbed repetition move it.

    Raises:
        ValueError: either sequence is empty.
        ZeroDivisionError: the median of ``denominators`` is zero.
    """
    if not numerators or not denominators:
        raise ValueError("a ratio of medians needs at least one value on each side")
    return median(numerators) / median(denominators)


def table(header: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table; floats are written with 3 significant decimals unless already strings."""

    def cell(value: object) -> str:
        return f"{value:.3f}" if isinstance(value, float) else str(value)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def machine() -> dict[str, str]:
    """Cores, memory, CPU model and Python (each section's stamp carries the load it ran under)."""
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    cpu = platform.processor() or platform.machine()
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        names = [line.split(":", 1)[1].strip() for line in cpuinfo.read_text().splitlines() if "model name" in line]
        cpu = names[0] if names else cpu
    return {"cores": str(os.cpu_count()), "memory": f"{memory_gib:.0f} GiB", "cpu": cpu,
            "python": platform.python_version()}


def run_child(command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> ChildRun:
    """Runs ``command`` to completion, uncapped, and measures it on its own (:func:`memcap.run_measured`).

    The peak is the ``VmHWM`` of the largest process the command started; ``cwd`` defaults to the
    repository.

    Raises:
        RuntimeError: the command failed; the message carries the end of its error output.
    """
    run = run_measured(command, env=env, cwd=cwd or REPO)
    if run.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} exited {run.returncode}:\n{run.stderr[-3000:]}")
    return run


def prepare_splits(work: Path, uri: str, label: str, seed: int) -> dict[str, str]:
    """Ingest and preprocess ``uri`` with the default settings into ``work``: the split folders.

    Returns:
        Folder paths under the keys ``cleaned``, ``train``, ``validation``, ``test`` and ``spec``.
    """
    from tunepipe import ingest_step, preprocess_step
    from tunepipe.config import (
        AugmentationConfig,
        CleaningConfig,
        DataConfig,
        ImageConfig,
        PreprocessingConfig,
        SplitConfig,
    )

    out = {name: str(work / name) for name in ("cleaned", "train", "validation", "test", "spec")}
    ingest_step.run(ingest_step.Inputs(uri, label, "auto", "", DataConfig(), CleaningConfig(), ImageConfig()),
                    ingest_step.Outputs(out["cleaned"], str(work / "report.html")))
    preprocess_step.run(
        preprocess_step.Inputs(out["cleaned"], seed, SplitConfig(), PreprocessingConfig(), AugmentationConfig()),
        preprocess_step.Outputs(out["train"], out["validation"], out["test"], out["spec"]))
    return out
