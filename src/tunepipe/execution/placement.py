"""The measured rules that turn a :class:`~tunepipe.config.Placement` into a layout for this host.

``where: auto`` and a ``workers`` count of 0 are decided here, from what the step sees of its
machine: its GPUs (:func:`~tunepipe.execution.devices.local_gpus`), the CPUs and memory its
cgroup lets it use (:mod:`tunepipe.execution.host`), and, for tuning, the size of the schedule.
Final training's devices are read by TensorFlow itself (:func:`tunepipe.execution.replicas.choose_replicas`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from tunepipe.config import Placement, TuningConfig
from tunepipe.execution.devices import parallel_processes
from tunepipe.execution.host import available_memory_mib, usable_cpus
from tunepipe.modelling.hyperband import hyperband_budget

# auto's CPU layout, from bench/tune_overhead.py (2 cores, 2026-12-03, medians of 3): the default
# 23-trial search took 43.3 s with a chief and 2 worker processes against 53.3 s in one process
# (0.81x); a 6-trial search took 30-36 s against 14-16 s (tests/unit/test_distributed.py). The
# workers' fixed cost (two more TensorFlow imports and warm-ups, ~17 s here) pays off from about
# 14 trials; CPU_WORKERS_MIN_TRIALS keeps a margin. Also the count of node and cluster tuning
# given no count (the default of the tuning.workers this replaces).
CPU_WORKERS = 2
CPU_WORKERS_MIN_TRIALS = 20
# One TensorFlow process of the tune step at its peak (docs/benchmarks.md: 905-1156 MiB); the
# chief and each worker are one such process, so the layout needs (workers + 1) of them free.
TUNE_PROCESS_PEAK_MIB = 1200
# Folds on CPU run in this process: 2 spawned processes, each paying its own TensorFlow import,
# measured slower on 2 cores: 14.9 s against 9.1 s for 5 folds of penguins (292 rows), 19.8 s
# against 15.4 s for 1,955 synthetic rows (bench/crossval.py, 2026-12-03, medians of 3).
CPU_FOLD_PROCESSES = 1


@dataclass(frozen=True)
class Layout:
    """A placement resolved for this host.

    Attributes:
        where: ``step``, ``node`` or ``cluster`` (never ``auto``).
        workers: Processes, devices or pods (1 for ``step``).
    """

    where: Literal["step", "node", "cluster"]
    workers: int = 1

    def describe(self) -> str:
        """One phrase for the step's log: ``step`` (its own process), ``node, 2 workers``, ..."""
        return "step" if self.where == "step" else f"{self.where}, {self.workers} workers"


def resolve_tuning(
    tuning: TuningConfig, gpus: Sequence[str], cpus: int | None = None, memory_mib: float | None = None,
) -> Layout:
    """Where the trials run: ``tuning.placement`` with ``auto`` and a count of 0 decided.

    ``auto``: with two or more GPUs, ``node`` with one worker per GPU (:func:`parallel_processes`),
    so that as many trials run at once. Otherwise ``node`` with :data:`CPU_WORKERS` CPU workers
    when all of these hold: the schedule has at least :data:`CPU_WORKERS_MIN_TRIALS` trials (fewer
    do not earn back the workers' start-up), the step may use at least that many CPUs, and its
    free memory holds the chief and the workers (:data:`TUNE_PROCESS_PEAK_MIB` each; a pod's limit
    counts, so a cluster task sized for one process keeps one). Else ``step``. ``node`` with 0
    workers: one per GPU with two or more, else :data:`CPU_WORKERS`; ``cluster`` with 0:
    :data:`CPU_WORKERS` pods.

    Args:
        tuning: The tuning section.
        gpus: The GPU ids the step sees (:func:`~tunepipe.execution.devices.local_gpus`).
        cpus: CPUs the step may use; default: read from the host and its cgroup.
        memory_mib: Free memory in MiB; default: read from the host and its cgroup.
    """
    where, workers = tuning.placement.where, tuning.placement.workers
    on_gpus = parallel_processes(gpus)
    if where == "step":
        return Layout("step")
    if where != "auto":
        return Layout(where, workers or (len(on_gpus) if where == "node" and on_gpus else CPU_WORKERS))
    if on_gpus:
        return Layout("node", len(on_gpus))
    trials = hyperband_budget(tuning.max_epochs, tuning.factor, tuning.hyperband_iterations).trials
    cpus = usable_cpus() if cpus is None else cpus
    memory_mib = available_memory_mib() if memory_mib is None else memory_mib
    if (trials >= CPU_WORKERS_MIN_TRIALS and cpus >= CPU_WORKERS
            and memory_mib >= (CPU_WORKERS + 1) * TUNE_PROCESS_PEAK_MIB):
        return Layout("node", CPU_WORKERS)
    return Layout("step")


def training_devices(placement: Placement) -> int:
    """The ``requested`` count of :func:`~tunepipe.execution.replicas.choose_replicas` for a
    placement on the step's node: 0 (every GPU it sees, one device without two) for ``auto`` and
    ``node`` without a count, 1 for ``step``, else the count."""
    return 1 if placement.where == "step" else placement.workers


def fold_processes(placement: Placement, gpus: Sequence[str]) -> list[str | None]:
    """Where the cross-validation folds run: one process per entry, none for the step's own.

    ``auto`` and ``node`` without a count: one process per GPU when there are two or more, else
    this process (:data:`CPU_FOLD_PROCESSES`). ``step``: this process. ``node`` with N: N
    processes, given the GPUs in turn when there are any.
    """
    if placement.where == "step":
        return []
    if not placement.workers:
        return parallel_processes(gpus, CPU_FOLD_PROCESSES)
    return [gpus[index % len(gpus)] if gpus else None for index in range(placement.workers)]
