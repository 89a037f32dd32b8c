"""The early-stopping rule of final training, as a small decision apart from any callback.

Keras' ``EarlyStopping`` rule for a minimised ``val_loss``: an epoch improves when its value is
below the best so far by more than ``min_delta``; after ``patience`` epochs in a row without
improvement, training stops, and the best epoch's weights are the result. Two callbacks hold
the weights it decides about: :class:`tunepipe.modelling.train.DurableEarlyStopping` (one
process, its state written to the per-epoch backup so a resumed run stops where an uninterrupted
one would) and the multi-worker one in :mod:`tunepipe.execution.jax_worker` (every process sees
the same global ``val_loss``, so every process decides alike). Both ask this object.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

# What early stopping watches: defined for classification and regression alike.
MONITOR = "val_loss"


@dataclass
class EarlyStoppingRule:
    """The state and decision of early stopping on ``val_loss``.

    Attributes:
        patience: Epochs in a row without improvement that stop training (``training.patience``).
        min_delta: Smallest fall that counts as an improvement (``training.min_delta``, default
            0.0, Keras' own: any fall counts).
        best: The best ``val_loss`` so far (``inf`` before the first epoch).
        best_epoch: The 1-based epoch that reached it (0 before the first improvement).
        wait: Epochs since that one.
        history: Every epoch's logs so far, by name (what the train step reports).
    """

    patience: int
    min_delta: float = 0.0
    best: float = math.inf
    best_epoch: int = 0
    wait: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)

    def observe(self, epoch: int, logs: Mapping[str, float]) -> bool:
        """Records ``epoch`` (0-based, as Keras counts) and its logs; True when it is the new best.

        A missing or NaN ``val_loss`` never improves. :attr:`stop` says whether to stop after it.
        """
        for name, value in logs.items():
            self.history.setdefault(name, []).append(float(value))
        current = float(logs.get(MONITOR, math.nan))
        if current < self.best - self.min_delta:
            self.best, self.best_epoch, self.wait = current, epoch + 1, 0
            return True
        self.wait += 1
        return False

    @property
    def stop(self) -> bool:
        """Whether ``patience`` epochs in a row have passed without improvement."""
        return self.wait >= self.patience

    def state(self) -> dict[str, Any]:
        """What a resumed run needs to decide as an uninterrupted one would (JSON-ready)."""
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "history": self.history}

    def restore(self, state: Mapping[str, Any], epochs_done: int) -> None:
        """Takes back :meth:`state`, keeping the history of the first ``epochs_done`` epochs only
        (epochs after the last backup ran again)."""
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]
        self.history = {name: list(values[:epochs_done]) for name, values in state["history"].items()}
