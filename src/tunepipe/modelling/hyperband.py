"""Hyperband's schedule as pure arithmetic, so a budget can be shown before any run.

No Keras import here: the CLI prints the budget without loading TensorFlow, and the
tests check the numbers against Keras Tuner's own oracle.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class HyperbandBudget:
    """What one Hyperband configuration costs before early stopping."""

    brackets: int
    trials: int
    epochs: int


def hyperband_budget(max_epochs: int, factor: int, iterations: int = 1) -> HyperbandBudget:
    """Trials and epochs that Keras Tuner's Hyperband schedules, computed without running it.

    Mirrors ``keras_tuner.Hyperband``'s oracle (min_epochs 1): bracket ``b`` starts
    ``ceil(ceil(1 + log_factor(max_epochs)) / (b + 1) * factor**b)`` models; each later round
    keeps ``1/factor`` of them and continues training from the parent's checkpoint, so only
    the new epochs count. Example: max_epochs 9, factor 3 gives 23 trials and 75 epochs.
    """
    brackets, epochs_left = 0, float(max_epochs)
    while epochs_left >= 1:
        epochs_left /= factor
        brackets += 1
    end_size = math.ceil(1 + math.log(max_epochs, factor))
    trials = epochs = 0
    for bracket in range(brackets):
        previous_epochs = 0
        for round_number in range(bracket + 1):
            size = math.ceil(end_size / (bracket + 1) * factor ** (bracket - round_number))
            round_epochs = math.ceil(max_epochs / factor ** (bracket - round_number))
            trials += size
            epochs += size * (round_epochs - previous_epochs)
            previous_epochs = round_epochs
    return HyperbandBudget(brackets, trials * iterations, epochs * iterations)
