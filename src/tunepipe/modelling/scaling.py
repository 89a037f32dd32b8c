"""Hyperparameters for data-parallel training: the tuned batch per replica, the learning rate scaled.

Whatever runs final training on several replicas at once (devices of one node, or worker
processes of a ``TrainJob``: :mod:`tunepipe.execution`), each replica trains on the tuned batch
size, so the global batch is ``batch_size x N`` and an epoch takes N times fewer steps. The
learning rate is scaled to match: by ``sqrt(N)`` for Adam and RMSprop (the square-root rule for
adaptive optimizers, Malladi et al. 2022, "On the SDEs and Scaling Rules for Adaptive Gradient
Algorithms") and by ``N`` for SGD (the linear rule, Goyal et al. 2017). Early stopping, the
plateau schedule and the per-epoch backup work on the scaled values unchanged.
"""

from __future__ import annotations

import math
from typing import Any

import keras_tuner

# The hyperparameters every hypermodel declares (image models have no optimizer choice: Adam).
BATCH_SIZE, LEARNING_RATE, OPTIMIZER = "batch_size", "learning_rate", "optimizer"
DEFAULT_OPTIMIZER = "adam"
LINEAR_RULE_OPTIMIZERS = frozenset({"sgd"})


def learning_rate_factor(optimizer: str, replicas: int) -> float:
    """How much the learning rate grows with ``replicas`` times the batch: N for SGD, sqrt(N) else."""
    return float(replicas) if optimizer in LINEAR_RULE_OPTIMIZERS else math.sqrt(replicas)


def with_values(hyperparameters: keras_tuner.HyperParameters, values: dict[str, Any]) -> keras_tuner.HyperParameters:
    """A copy of ``hyperparameters`` with ``values`` set; every other value and the space are kept."""
    copy = keras_tuner.HyperParameters.from_config(hyperparameters.get_config())
    copy.values.update(values)
    return copy


def scaled_for_replicas(
    hyperparameters: keras_tuner.HyperParameters, replicas: int,
) -> keras_tuner.HyperParameters:
    """A copy of the tuned ``hyperparameters`` with the global batch and learning rate for ``replicas``.

    One replica returns ``hyperparameters`` themselves. The copy keeps every other value, so
    the model built from it is the tuned architecture.
    """
    if replicas < 2:
        return hyperparameters
    values = hyperparameters.values
    optimizer = str(values.get(OPTIMIZER, DEFAULT_OPTIMIZER))
    return with_values(hyperparameters, {
        BATCH_SIZE: int(values[BATCH_SIZE]) * replicas,
        LEARNING_RATE: float(values[LEARNING_RATE]) * learning_rate_factor(optimizer, replicas),
    })
