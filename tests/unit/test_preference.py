"""Cost-aware choice among tuned trials: size and latency measured, the choice made within the noise."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import tunepipe
from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, Placement, SearchSpace, SplitConfig, TuningConfig
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess
from tunepipe.modelling.preference import choose, pick, standard_error
from tunepipe.modelling.problem import tuning_problem
from tunepipe.modelling.tune import run_tuning
from tunepipe.reports.tuning_report import frontier, tuning_report_html

pytestmark = pytest.mark.unit

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"


def table() -> pd.DataFrame:
    return pd.DataFrame({
        "trial_id": ["a", "b", "c", "d", "e"],
        "status": ["COMPLETED", "COMPLETED", "COMPLETED", "FAILED", "COMPLETED"],
        "score": [0.10, 0.12, 0.14, None, 0.30],
        "parameters": [900.0, 300.0, 100.0, np.nan, 50.0],
        "latency_b1_us": [800.0, 900.0, 700.0, np.nan, 600.0],
    })


@pytest.mark.parametrize(
    ("prefer", "noise", "chosen", "inside"),
    [
        ("best", 0.05, "a", 3),
        ("smallest", 0.0, "a", 1),  # no noise: only the best is inside the band
        ("smallest", 0.03, "b", 2),
        ("smallest", 0.05, "c", 3),  # e is smaller still, but far outside the band
        ("fastest", 0.03, "a", 2),
        ("fastest", 0.05, "c", 3),
    ],
)
def test_the_choice_is_the_cheapest_trial_within_the_noise_of_the_best(prefer, noise, chosen, inside) -> None:
    assert pick(table(), prefer, "min", noise, best_id="a") == (chosen, inside)


def test_a_maximised_objective_reads_the_band_downwards() -> None:
    accuracy = table().assign(score=[0.90, 0.88, 0.86, None, 0.70])
    assert pick(accuracy, "smallest", "max", 0.03, best_id="a") == ("b", 2)


def test_the_frontier_keeps_each_point_better_than_every_cheaper_one() -> None:
    done = table().dropna(subset=["score"]).reset_index(drop=True)
    kept = frontier(done["parameters"], done["score"], "min")
    assert list(done["trial_id"].iloc[kept]) == ["e", "c", "b", "a"]
    assert frontier(pd.Series([1.0, 2.0, 3.0]), pd.Series([0.5, 0.6, 0.4]), "min") == [0, 2]


def test_standard_error_of_a_mean() -> None:
    assert standard_error(np.array([1.0, 3.0])) == pytest.approx(np.std([1.0, 3.0], ddof=1) / np.sqrt(2))
    assert standard_error(np.array([2.0])) == 0.0


def penguin_search(root: Path, objective: str, seed: int = 0):
    """A 6-trial Hyperband search (seeded by ``seed``) on penguins over 1-3 layers of 8-128 units."""
    run_ingest(str(PENGUINS), "species", "auto", root / "cleaned")
    dirs = {name: root / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    run_preprocess(root / "cleaned", SplitConfig(), 0, {**dirs, "spec": root / "spec"})
    space = SearchSpace(hidden_layers=IntRange(min=1, max=3), units=IntRange(min=8, max=128, step=8),
                        batch_size=[32], learning_rate=FloatRange(min=1e-2, max=3e-2, sampling="log"))
    problem = tuning_problem(dirs[artifacts.TRAIN], dirs[artifacts.VALIDATION], root / "spec", space)
    tuning = TuningConfig(max_epochs=3, factor=3, patience=1, placement=Placement(where="step"), objective=objective)
    result = run_tuning(problem.hypermodel, problem.train, problem.validation, tuning, seed, root / "tuner")
    return root, problem, tuning, result


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    return penguin_search(tmp_path_factory.mktemp("loss"), "val_loss")


@pytest.fixture(scope="module")
def accuracy_search(tmp_path_factory):
    """Scored by validation accuracy, where several trials tie at the best score (1.0 on 52 rows); with
    tuner seed 1 the oracle's best of them is not the smallest."""
    return penguin_search(tmp_path_factory.mktemp("accuracy"), "val_accuracy", seed=1)


def test_every_trial_gets_its_size_and_latency_and_prefer_best_keeps_the_best(search) -> None:
    root, problem, tuning, result = search
    chosen, choice = choose(result, problem.hypermodel, problem.validation, tuning, 0, root / "tuner", "best")
    assert chosen.best_hyperparameters == result.best_hyperparameters and choice.noise == 0.0
    _, band = choose(result, problem.hypermodel, problem.validation, tuning, 0, root / "tuner", "smallest")
    assert band.noise > 0  # one standard error of the best trial's per-row validation loss
    done = chosen.trials[chosen.trials["status"] == "COMPLETED"]
    assert (done["parameters"] > 0).all() and (done["latency_b1_us"] > 0).all()
    assert (done["latency_b256_us"] < done["latency_b1_us"]).all()  # per row: a batch amortises the call
    units = done["units"] * done["hidden_layers"]
    assert done.loc[units.idxmax(), "parameters"] > done.loc[units.idxmin(), "parameters"]
    assert choice.chosen_trial == choice.best_trial and choice.chosen_score == result.best_score


def test_prefer_smallest_picks_fewer_parameters_within_one_standard_error(accuracy_search, tmp_path) -> None:
    root, problem, tuning, result = accuracy_search
    chosen, choice = choose(result, problem.hypermodel, problem.validation, tuning, 0, root / "tuner", "smallest")
    table = chosen.trials.set_index("trial_id")
    assert choice.chosen_score >= choice.best_score - choice.noise
    assert choice.candidates >= 2 and choice.chosen_trial != choice.best_trial  # a real choice was made
    assert choice.parameters == table.at[choice.chosen_trial, "parameters"] < table.at[choice.best_trial, "parameters"]
    inside = table[(table["status"] == "COMPLETED") & (table["score"] >= choice.best_score - choice.noise)]
    assert choice.parameters == inside["parameters"].min() and choice.candidates == len(inside)
    assert chosen.best_hyperparameters["values"]["units"] == table.at[choice.chosen_trial, "units"]
    choice.save(tmp_path / artifacts.TUNING_CHOICE_FILE)
    assert json.loads((tmp_path / artifacts.TUNING_CHOICE_FILE).read_text())["prefer"] == "smallest"
    page = tuning_report_html(chosen.trials, tuning.objective, chosen.direction, "budget", choice)
    assert page.count("data:image/png;base64,") == 2 and "tuning.prefer smallest" in page
    assert "<th>parameters</th><th>latency_b1_us</th>" in page


def test_prefer_best_trains_the_oracles_best_trial_even_among_tied_scores(accuracy_search) -> None:
    """Four trials tie at validation accuracy 1.0: the one trained is the one Keras Tuner calls best."""
    root, problem, tuning, result = accuracy_search
    tied = result.trials[result.trials["score"] == result.best_score]
    assert len(tied) >= 2
    chosen, choice = choose(result, problem.hypermodel, problem.validation, tuning, 1, root / "tuner", "best")
    assert choice.chosen_trial == choice.best_trial == result.best_trial
    assert chosen.best_hyperparameters == result.best_hyperparameters
