"""Where final training runs: one device, every device of the train step's node, or a ``TrainJob``.

:func:`training_runner` is what the train step asks for, first thing (splitting the CPU into
logical devices must precede TensorFlow's start); the runner says how many replicas train in
sync (the batch and learning-rate rules of :mod:`tunepipe.modelling.scaling` follow from it)
and trains the work it is handed (:class:`TrainingWork`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import keras_tuner

from tunepipe.artifacts import PathLike
from tunepipe.config import SearchSpace, TrainingConfig
from tunepipe.execution.placement import training_devices
from tunepipe.execution.replicas import Replicas, choose_replicas, replica_scope
from tunepipe.modelling.hyperparameters import PipelineHyperModel
from tunepipe.modelling.train import TrainingResult, train_final


@dataclass(frozen=True)
class TrainingWork:
    """Final training, as the train step hands it to a runner.

    Attributes:
        hypermodel: Builds and fits the model (in this process).
        hyperparameters: The tuned values, scaled for the runner's replicas.
        train: Training inputs (arrays or a dataset, :func:`tunepipe.data.split.fit_inputs`).
        validation: Validation inputs, likewise.
        training: The training section.
        seed: Seeds Keras.
        backup: The per-epoch backup folder this process resumes from.
        folders: The ``train``, ``validation`` and ``preprocessing`` folders, by those names
            (what pods elsewhere read).
        hyperparameters_dir: The folder of the tuned (unscaled) hyperparameters.
        search_space: The search space (pods rebuild the hypermodel from it).
        location: The backup location (an object-store prefix when pods train).
    """

    hypermodel: PipelineHyperModel
    hyperparameters: keras_tuner.HyperParameters
    train: Any
    validation: Any
    training: TrainingConfig
    seed: int
    backup: Path
    folders: dict[str, PathLike]
    hyperparameters_dir: PathLike
    search_space: SearchSpace
    location: str


class TrainingRunner(Protocol):
    """Trains the final model wherever its placement says."""

    @property
    def replicas(self) -> Replicas: ...

    def train(self, work: TrainingWork) -> TrainingResult:
        """The trained model (best epoch's weights), its history and best epoch."""
        ...


@dataclass(frozen=True)
class OnDevices:
    """In the train step's process, on one device or every device ``replicas`` names
    (``MirroredStrategy``), resumable from the per-epoch backup."""

    replicas: Replicas

    def train(self, work: TrainingWork) -> TrainingResult:
        return train_final(work.hypermodel, work.hyperparameters, work.train, work.validation, work.training,
                           work.seed, work.backup, scope=replica_scope(self.replicas))


@dataclass(frozen=True)
class OnTrainJob:
    """A Kubeflow Trainer ``TrainJob`` of ``workers`` JAX processes trains instead of the step's pod
    (:mod:`tunepipe.execution.k8s.training`); one replica per worker."""

    workers: int

    @property
    def replicas(self) -> Replicas:
        return Replicas(tuple(f"worker:{index}" for index in range(self.workers)), "workers")

    def train(self, work: TrainingWork) -> TrainingResult:
        from tunepipe.execution.k8s.training import train_on_cluster  # the kubernetes client, only here

        return train_on_cluster(work.folders, work.hyperparameters_dir, work.training, work.search_space, work.seed,
                                work.location, self.workers)


def training_runner(training: TrainingConfig) -> TrainingRunner:
    """The runner ``training.placement`` names; the devices are chosen now (see the module docstring).

    Raises:
        TunepipeError: More GPUs asked for than the step sees, or several devices on a backend
            other than TensorFlow (:func:`~tunepipe.execution.replicas.choose_replicas`).
    """
    if training.placement.where == "cluster":
        return OnTrainJob(training.placement.workers)
    return OnDevices(choose_replicas(training_devices(training.placement)))
