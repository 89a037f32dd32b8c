"""Hyperband budget arithmetic, checked against Keras Tuner's own oracle."""

from __future__ import annotations

import keras_tuner
import numpy as np
import pytest
from keras_tuner.oracles import HyperbandOracle

from tunepipe.modelling.hyperband import HyperbandBudget, hyperband_budget

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("max_epochs", "factor", "trials", "epochs"),
    [(9, 3, 23, 75), (27, 3, 70, 375), (81, 3, 211, 1767)],
)
def test_documented_budgets(max_epochs: int, factor: int, trials: int, epochs: int) -> None:
    budget = hyperband_budget(max_epochs, factor)
    assert (budget.trials, budget.epochs) == (trials, epochs)


def test_brackets() -> None:
    assert hyperband_budget(9, 3).brackets == 3
    assert hyperband_budget(81, 3).brackets == 5
    assert hyperband_budget(2, 3) == HyperbandBudget(brackets=1, trials=2, epochs=4)


def test_iterations_multiply_trials_and_epochs() -> None:
    once = hyperband_budget(9, 3)
    thrice = hyperband_budget(9, 3, iterations=3)
    assert thrice.trials == 3 * once.trials
    assert thrice.epochs == 3 * once.epochs
    assert thrice.brackets == once.brackets


def _drive_oracle(tmp_path, max_epochs: int, factor: int, iterations: int) -> tuple[int, int]:
    """Runs Keras Tuner's HyperbandOracle to the end and counts its trials and new epochs.

    Each trial trains from ``tuner/initial_epoch`` (the parent's checkpoint) to ``tuner/epochs``.
    """
    hp = keras_tuner.HyperParameters()
    hp.Float("x", 0.0, 1.0)  # continuous, so random values never collide
    oracle = HyperbandOracle(
        objective=keras_tuner.Objective("score", "min"),
        max_epochs=max_epochs,
        factor=factor,
        hyperband_iterations=iterations,
        hyperparameters=hp,
        seed=0,
    )
    oracle._set_project_dir(str(tmp_path), f"hb_{max_epochs}_{factor}_{iterations}")
    rng = np.random.default_rng(0)
    trials = epochs = 0
    for _ in range(10_000):
        trial = oracle.create_trial("tuner0")
        if trial.status != "RUNNING":
            assert trial.status == "STOPPED"
            break
        values = trial.hyperparameters.values
        trials += 1
        epochs += values["tuner/epochs"] - values["tuner/initial_epoch"]
        oracle.update_trial(trial.trial_id, {"score": float(rng.random())})
        trial.status = "COMPLETED"
        oracle.end_trial(trial)
    else:
        pytest.fail("the oracle never stopped")
    return trials, epochs


@pytest.mark.parametrize(
    ("max_epochs", "factor", "iterations"),
    [(2, 3, 1), (3, 3, 1), (9, 3, 1), (10, 2, 1), (5, 4, 2), (27, 3, 1)],
)
def test_budget_matches_keras_tuner_oracle(tmp_path, max_epochs: int, factor: int, iterations: int) -> None:
    trials, epochs = _drive_oracle(tmp_path, max_epochs, factor, iterations)
    budget = hyperband_budget(max_epochs, factor, iterations)
    assert (budget.trials, budget.epochs) == (trials, epochs)


@pytest.mark.parametrize(("max_epochs", "factor"), [(9, 3), (81, 3), (100, 3), (16, 2), (50, 5)])
def test_budget_matches_oracle_schedule_methods(max_epochs: int, factor: int) -> None:
    """The closed form agrees with the oracle's per-bracket sizes and epochs for larger budgets."""
    oracle = HyperbandOracle(objective=keras_tuner.Objective("score", "min"), max_epochs=max_epochs, factor=factor)
    trials = epochs = 0
    for bracket in range(oracle._get_num_brackets()):
        previous = 0
        for round_number in range(oracle._get_num_rounds(bracket)):
            size = oracle._get_size(bracket, round_number)
            round_epochs = oracle._get_epochs(bracket, round_number)
            trials += size
            epochs += size * (round_epochs - previous)
            previous = round_epochs
    budget = hyperband_budget(max_epochs, factor)
    assert budget.brackets == oracle._get_num_brackets()
    assert (budget.trials, budget.epochs) == (trials, epochs)
