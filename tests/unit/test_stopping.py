"""The one early-stopping rule, and the two callbacks that ask it (one process, multi-worker)."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import pytest

from tunepipe import artifacts
from tunepipe.execution.jax_worker import _SyncedEarlyStopping
from tunepipe.modelling.stopping import EarlyStoppingRule
from tunepipe.modelling.train import DurableEarlyStopping

pytestmark = pytest.mark.unit
# val_loss per epoch: improves twice, then creeps down by less than 0.01 for four epochs
LOSSES = [1.0, 0.5, 0.495, 0.494, 0.493, 0.492, 0.2]


def run(rule: EarlyStoppingRule, losses: list[float]) -> tuple[list[bool], int | None]:
    """Each epoch's improvement verdict, and the 1-based epoch after which the rule stops (None: never)."""
    improved = []
    for epoch, loss in enumerate(losses):
        improved.append(rule.observe(epoch, {"val_loss": loss, "loss": 2 * loss}))
        if rule.stop:
            return improved, epoch + 1
    return improved, None


def test_any_fall_improves_by_default_and_min_delta_raises_the_bar() -> None:
    assert run(EarlyStoppingRule(patience=3), LOSSES) == ([True] * 6 + [True], None)
    strict = EarlyStoppingRule(patience=3, min_delta=0.01)
    assert run(strict, LOSSES) == ([True, True, False, False, False], 5)  # three epochs without a 0.01 fall
    assert (strict.best, strict.best_epoch, strict.wait) == (0.5, 2, 3)
    assert strict.history["val_loss"] == LOSSES[:5] and strict.history["loss"] == [2 * x for x in LOSSES[:5]]


def test_a_missing_or_nan_loss_never_improves() -> None:
    rule = EarlyStoppingRule(patience=2)
    assert run(rule, [math.nan, math.nan]) == ([False, False], 2)
    assert rule.observe(0, {"loss": 1.0}) is False and rule.best_epoch == 0


def test_restored_state_decides_as_the_uninterrupted_rule() -> None:
    whole = EarlyStoppingRule(patience=2, min_delta=0.01)
    whole_verdicts, whole_stop = run(whole, LOSSES)
    first = EarlyStoppingRule(patience=2, min_delta=0.01)
    run(first, LOSSES[:3])
    state = first.state()
    state["history"] = {name: [*values, 99.0] for name, values in state["history"].items()}  # an epoch past the backup
    resumed = EarlyStoppingRule(patience=2, min_delta=0.01)
    resumed.restore(state, 3)
    assert resumed.history["val_loss"] == LOSSES[:3]  # epochs after the backup are dropped
    verdicts, stop = [], None
    for epoch in range(3, len(LOSSES)):
        verdicts.append(resumed.observe(epoch, {"val_loss": LOSSES[epoch], "loss": 2 * LOSSES[epoch]}))
        if resumed.stop:
            stop = epoch + 1
            break
    assert whole_verdicts[3:] == verdicts and whole_stop == stop
    assert resumed.state() == whole.state()


def _model() -> keras.Model:
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="mse")
    model.optimizer.build(model.trainable_variables)
    return model


def test_single_process_and_multi_worker_training_stop_at_the_same_epoch(tmp_path: Path) -> None:
    """Both callbacks ask the one rule: the same losses stop both after the same epoch, with the same best."""
    durable, synced = DurableEarlyStopping(tmp_path, patience=2, min_delta=0.01), _SyncedEarlyStopping(2, 0.01)
    stopped = {}
    for name, callback in (("durable", durable), ("synced", synced)):
        model = _model()
        callback.set_model(model)
        callback.on_epoch_begin(0)
        for epoch, loss in enumerate(LOSSES):
            callback.on_epoch_end(epoch, {"val_loss": loss})
            if model.stop_training:
                stopped[name] = epoch + 1
                break
    _, rule_stops_after = run(EarlyStoppingRule(patience=2, min_delta=0.01), LOSSES)
    assert stopped == {"durable": rule_stops_after, "synced": rule_stops_after} and rule_stops_after == 4
    assert durable.rule.state() == synced.rule.state()  # the learning rate each logged included
    assert synced.best_weights and (tmp_path / artifacts.BACKUP_BEST_WEIGHTS_FILE).exists()
