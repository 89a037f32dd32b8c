"""Where cross-validation folds run: in the train step's process, or in processes of its node.

:func:`fold_runner` is what the train step asks for; the runner it returns takes the fold
function and each fold's arguments (:data:`tunepipe.evaluation.crossval.FoldRunner`) and hands
back the results in fold order.
"""

from __future__ import annotations

import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from tunepipe.config import Placement
from tunepipe.evaluation.crossval import FoldRunner, fold_done, one_after_another
from tunepipe.execution.devices import local_gpus, pin_gpu
from tunepipe.execution.placement import fold_processes

log = logging.getLogger(__name__)


class FoldProcesses:
    """Runs fold ``i`` in process ``i % len(processes)``, each a fresh interpreter (spawned: a forked
    TensorFlow runtime is not safe) that sees only its entry's GPU (``None``: the devices this
    process sees), all processes at the same time.

    Args:
        processes: One entry per process: a GPU id to pin it to, or ``None``.
    """

    def __init__(self, processes: Sequence[str | None]) -> None:
        self.processes = list(processes)

    def __call__(self, task: Callable[..., Any], arguments: Sequence[tuple[Any, ...]]) -> list[Any]:
        folds = len(arguments)
        log.info("train: cross-validating %d folds in %d processes", folds, len(self.processes))
        context = multiprocessing.get_context("spawn")
        pools = [ProcessPoolExecutor(1, mp_context=context, initializer=pin_gpu, initargs=(gpu,))
                 for gpu in self.processes]
        try:
            futures = [pools[fold % len(pools)].submit(task, *arguments[fold]) for fold in range(folds)]
            results = []
            for fold, future in enumerate(futures):
                results.append(future.result())
                fold_done(fold, folds)
            return results
        finally:
            for pool in pools:
                pool.shutdown(cancel_futures=True)


def fold_runner(placement: Placement, gpus: Sequence[str] | None = None) -> FoldRunner:
    """The runner for ``evaluation.cv_placement`` (:func:`~tunepipe.execution.placement.fold_processes`).

    Args:
        placement: Where the folds run.
        gpus: The GPU ids the step sees; default: :func:`~tunepipe.execution.devices.local_gpus`.
    """
    processes = fold_processes(placement, local_gpus() if gpus is None else gpus)
    return FoldProcesses(processes) if processes else one_after_another
