"""Where the tune step's trials run: its own process, a chief and workers on its node, or pods.

:func:`tuning_runner` is what the tune step asks for, with its ``tuning`` section; the runner it
returns takes the search (:class:`TuningWork`) and gives back its result, whichever of the three
ran it. All three share the resumable tuner directory and, beyond the step's own process, Keras
Tuner's own chief/worker protocol (``KERASTUNER_TUNER_ID``, ``KERASTUNER_ORACLE_IP``,
``KERASTUNER_ORACLE_PORT``, gRPC); when the chief is done, the step reloads the shared oracle
state and takes the best trial from it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from tunepipe.config import SearchSpace, TuningConfig
from tunepipe.execution.devices import local_gpus
from tunepipe.execution.placement import Layout, resolve_tuning
from tunepipe.execution.tuner_processes import (
    LOOPBACK,
    ensure_folder,
    free_port,
    run_local_distributed,
    worker_arguments,
)
from tunepipe.modelling.problem import TuningProblem
from tunepipe.modelling.tune import TuningResult, build_tuner, collect_result, run_tuning
from tunepipe.storage.tuner_state import TunerStateSync


@dataclass(frozen=True)
class TuningWork:
    """One search, as the tune step hands it to a runner.

    Attributes:
        problem: The hypermodel and the (sampled) data, built in the step.
        folders: The training, validation and preprocessing folders, from which every other
            process builds the same problem.
        search_space: The search space.
        tuning: The tuning section.
        seed: Seeds the oracle and Keras in every process.
        location: The tuner directory every process shares (``gs://`` for pods).
        work_dir: Where this process's tuner works: ``location`` itself, or a local copy of it.
        sync: The mirror between ``work_dir`` and ``location``; ``None`` when they are one folder.
        gpus: GPUs per pod on the cluster (the step's ``gpu_count``; 0 takes the step's own limit).
    """

    problem: TuningProblem
    folders: tuple[str, str, str]
    search_space: SearchSpace
    tuning: TuningConfig
    seed: int
    location: str
    work_dir: Path
    sync: TunerStateSync | None
    gpus: int = 0


class TuningRunner(Protocol):
    """Runs one search wherever its layout says."""

    @property
    def layout(self) -> Layout: ...

    def tune(self, work: TuningWork) -> TuningResult:
        """Runs or resumes the search; its result as the oracle holds it."""
        ...


@dataclass(frozen=True)
class InStep:
    """The tuner in the tune step's own process (``where: step``)."""

    layout: Layout

    def tune(self, work: TuningWork) -> TuningResult:
        problem = work.problem
        return run_tuning(problem.hypermodel, problem.train, problem.validation, work.tuning, work.seed,
                          work.work_dir, work.sync)


def _from_shared_state(work: TuningWork) -> TuningResult:
    """The chief has finished: a plain tuner over the same directory reloads the final oracle state."""
    return collect_result(build_tuner(work.problem.hypermodel, work.tuning, work.seed, work.work_dir).oracle)


@dataclass(frozen=True)
class OnNode:
    """A chief and ``layout.workers`` worker processes on the step's node (``where: node``); worker
    ``i`` sees only GPU ``i mod n`` of ``gpus``. The tuner directory is mirrored every second."""

    layout: Layout
    gpus: Sequence[str] = ()

    def tune(self, work: TuningWork) -> TuningResult:
        if work.sync is not None:
            work.sync.download_all(work.work_dir)
        space = work.search_space.model_dump(exclude_none=True)  # plain values, sent to the processes as JSON
        arguments = worker_arguments(space, work.tuning, work.seed, str(work.work_dir), folders=work.folders)
        ensure_folder(work.work_dir)
        sync = work.sync
        upload = (lambda: sync.upload_changed(work.work_dir)) if sync is not None else None
        port = free_port()
        run_local_distributed([*arguments, "--bind", f"{LOOPBACK}:{port}"], self.layout.workers, self.gpus,
                              on_poll=upload, port=port)
        return _from_shared_state(work)


@dataclass(frozen=True)
class OnCluster:
    """A chief pod and an indexed Job of ``layout.workers`` worker pods (``where: cluster``)."""

    layout: Layout

    def tune(self, work: TuningWork) -> TuningResult:
        from tunepipe.execution.k8s.tuning import run_kubernetes_tuning  # the kubernetes client, only here

        space = work.search_space.model_dump(exclude_none=True)
        run_kubernetes_tuning(*work.folders, space, work.tuning, work.seed, work.location, self.layout.workers,
                              work.gpus)
        if work.sync is not None:
            work.sync.download_all(work.work_dir)
        return _from_shared_state(work)


def tuning_runner(tuning: TuningConfig, gpus: Sequence[str] | None = None) -> TuningRunner:
    """The runner ``tuning.placement`` names for this host (:func:`~tunepipe.execution.placement.resolve_tuning`).

    Args:
        tuning: The tuning section.
        gpus: The GPU ids the step sees; default: :func:`~tunepipe.execution.devices.local_gpus`.
    """
    gpus = local_gpus() if gpus is None else list(gpus)
    layout = resolve_tuning(tuning, gpus)
    if layout.where == "node":
        return OnNode(layout, gpus)
    return OnCluster(layout) if layout.where == "cluster" else InStep(layout)
