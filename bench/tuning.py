"""Benchmark section: Hyperband against RandomSearch and BayesianOptimization at an equal epoch budget.

All three Keras Tuner tuners search the default search space with the same hypermodel
(``tunepipe.modelling.chooser.hypermodel_for``), on the same splits (the pipeline's ingest and preprocess
steps on the synthetic 5-class imbalanced data set), with the same in-trial callbacks (early
stopping with the default patience, the stop on a non-finite loss) and objective (``val_loss``). Hyperband
runs exactly as the tune step runs it (``tunepipe.modelling.tune.run_tuning``) with the default budget;
RandomSearch and BayesianOptimization get as many full-length trials as fit in Hyperband's
scheduled epochs. A callback counts the epochs each search actually trained.

    .venv/bin/python bench/run_all.py --only tuning [--quick]
"""

from __future__ import annotations

import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import keras
import keras_tuner
import numpy as np
from common import Goal, Section, median, prepare_splits, ratio_of_medians, table
from synthetic import write_classification

from tunepipe import artifacts
from tunepipe.config import SearchSpace, TuningConfig
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.split import Split
from tunepipe.modelling.hyperband import hyperband_budget
from tunepipe.modelling.problem import tuning_problem
from tunepipe.modelling.tune import build_tuner, run_tuning, search_callbacks

SEEDS = (42, 7, 2026)
TUNERS = ("Hyperband", "RandomSearch", "BayesianOptimization")


class EpochCounter(keras.callbacks.Callback):
    """Counts the epochs trained across every trial of a search (the tuner never copies it)."""

    def __init__(self) -> None:
        super().__init__()
        self.epochs = 0

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.epochs += 1


@dataclass
class Outcome:
    """What each tuner reached, one entry per seed."""

    val_loss: list[float] = field(default_factory=list)
    test_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    cpu_seconds: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    trials: list[int] = field(default_factory=list)


@dataclass(frozen=True)
class Problem:
    """The split folders of one seed and the test data."""

    folders: dict[str, str]
    test: tuple[dict[str, np.ndarray], np.ndarray]


def prepare(csv: str, seed: int, work: Path) -> Problem:
    """Ingest and preprocess (default settings) as the pipeline runs them, for ``seed``'s split."""
    out = prepare_splits(work, csv, "label", seed)
    spec = PreprocessingSpec.load(Path(out["spec"]) / artifacts.PREPROCESSING_SPEC_FILE)
    return Problem(out, Split.open(out["test"]).arrays(spec))


def _search(problem: Problem, kind: str, config: TuningConfig, seed: int, folder: Path) -> tuple[Any, int]:
    """Runs one search with a fresh hypermodel; returns its tuner (reloaded for Hyperband) and the epochs trained."""
    hypermodel, train, validation, _ = tuning_problem(
        problem.folders["train"], problem.folders["validation"], problem.folders["spec"], SearchSpace())
    counter = EpochCounter()
    hypermodel.extra_callbacks = [counter]
    if kind == "Hyperband":  # the tune step's own code path
        run_tuning(hypermodel, train, validation, config, seed, folder)
        tuner = build_tuner(hypermodel, config, seed, folder)
    else:
        keras.utils.set_random_seed(seed)
        trials = hyperband_budget(config.max_epochs, config.factor).epochs // config.max_epochs
        common: dict[str, Any] = {"objective": keras_tuner.Objective("val_loss", "min"), "max_trials": trials,
                                  "seed": seed, "directory": str(folder), "project_name": kind.lower()}
        if kind == "RandomSearch":
            tuner = keras_tuner.RandomSearch(hypermodel, **common)
        else:  # Keras Tuner's default (3 x dimensions random points) would spend every trial at random
            tuner = keras_tuner.BayesianOptimization(hypermodel, num_initial_points=max(2, trials // 3), **common)
        tuner.search(*train, validation_data=validation, epochs=config.max_epochs,
                     callbacks=search_callbacks(config), verbose=0)
    return tuner, counter.epochs


def warm_up(problem: Problem, folder: Path) -> None:
    """One untimed one-epoch trial, so that no timed search pays the process's first-trial costs
    (TensorFlow's first graph tracing, Keras Tuner's imports)."""
    hypermodel, train, validation, _ = tuning_problem(
        problem.folders["train"], problem.folders["validation"], problem.folders["spec"], SearchSpace())
    tuner = keras_tuner.RandomSearch(hypermodel, objective="val_loss", max_trials=1, seed=0,
                                     directory=str(folder), project_name="warm-up")
    tuner.search(*train, validation_data=validation, epochs=1, verbose=0)


def measure(problem: Problem, config: TuningConfig, seed: int, folder: Path, outcomes: dict[str, Outcome]) -> None:
    """Runs the three searches of one seed and records each one's figures.

    The order rotates with the seed (each tuner goes first once in three seeds), so the load
    of a shared machine and any warm cache do not favour one tuner.
    """
    inputs, labels = problem.test
    shift = SEEDS.index(seed) if seed in SEEDS else 0
    for kind in TUNERS[shift:] + TUNERS[:shift]:
        started, cpu = time.perf_counter(), time.process_time()
        tuner, epochs = _search(problem, kind, config, seed, folder / kind)
        seconds = time.perf_counter() - started
        outcomes[kind].cpu_seconds.append(time.process_time() - cpu)
        best_trial = tuner.oracle.get_best_trials(1)[0]
        model = tuner.get_best_models(1)[0]
        accuracy = float((model.predict(inputs, verbose=0).argmax(axis=1) == labels).mean())
        outcome = outcomes[kind]
        outcome.val_loss.append(float(best_trial.score))
        outcome.test_accuracy.append(accuracy)
        outcome.seconds.append(seconds)
        outcome.epochs.append(epochs)
        outcome.trials.append(len(tuner.oracle.trials))
        print(f"tuning: seed {seed} {kind}: val_loss {best_trial.score:.4f}, test accuracy {accuracy:.4f}, "
              f"{epochs} epochs, {seconds:.0f} s", file=sys.stderr, flush=True)


def render(outcomes: dict[str, Outcome], config: TuningConfig, about: str, seeds: tuple[int, ...],
           quick: bool, seconds: float) -> Section:
    """The section's tables and the budget comparison."""
    budget = hyperband_budget(config.max_epochs, config.factor)
    trials = budget.epochs // config.max_epochs
    rows = [[kind, f"{median(o.trials):.0f}", f"{median(o.epochs):.0f}", f"{median(o.val_loss):.4f}",
             f"{median(o.test_accuracy):.3f} ({min(o.test_accuracy):.3f}-{max(o.test_accuracy):.3f})",
             f"{median(o.seconds):.0f}", f"{median(o.cpu_seconds):.0f}",
             f"{ratio_of_medians(o.seconds, o.trials):.1f}"]
            for kind, o in outcomes.items()]
    hyperband = outcomes["Hyperband"]
    used = median(hyperband.epochs)
    parts = [
        f"Data: the synthetic classification set of the quality section ({about}), split by the pipeline's "
        f"ingest and preprocess steps with each seed (seeds {', '.join(map(str, seeds))}). Search space: "
        f"the default one. Budget: Hyperband with {'' if quick else 'the default '}max_epochs "
        f"{config.max_epochs} and factor {config.factor} schedules {budget.trials} trials and {budget.epochs} "
        f"epochs; RandomSearch and BayesianOptimization get {budget.epochs} // {config.max_epochs} = {trials} "
        f"trials of {config.max_epochs} epochs ({trials * config.max_epochs} epochs). All three use in-trial "
        f"early stopping with patience {config.patience} (the tune step's callbacks), so each may train fewer "
        f"epochs than it was given. BayesianOptimization starts from {max(2, trials // 3)} random trials "
        "(Keras Tuner's default, 3 per hyperparameter, would exceed the whole budget and make it a random "
        "search). Test accuracy is that of each search's best model as the tuner kept it "
        "(`get_best_models`, no retraining), on the seed's test split. Cells: median over the seeds "
        "(test accuracy: min-max in brackets); wall s per trial is the median wall s over the median trials, "
        "and every ratio below is likewise one median over another.",
        "",
        table(["tuner", "trials", "epochs trained", "best val_loss", "test accuracy", "wall s", "CPU s",
               "wall s per trial"], rows),
        "",
        f"Hyperband's epochs: {budget.epochs} scheduled, {used:.0f} trained (median; "
        f"{', '.join(map(str, hyperband.epochs))} per seed): early stopping saved "
        f"{(1 - used / budget.epochs) * 100:.0f}% of the schedule: with trials of at most {config.max_epochs} "
        f"epochs, a patience of {config.patience} rarely fires.",
        "",
        f"Wall time: Hyperband took {ratio_of_medians(hyperband.seconds, outcomes['RandomSearch'].seconds):.1f}x "
        f"RandomSearch's for {ratio_of_medians(hyperband.epochs, outcomes['RandomSearch'].epochs):.2f}x its epochs. "
        "It runs "
        f"{budget.trials} trials instead of {trials}, and every trial has a fixed cost (building and compiling a "
        "model, writing checkpoints; a promoted trial also loads its parent's) that outweighs an epoch on data "
        "this small; the per-trial column shows it. Equal epochs are not equal time here.",
    ]
    if quick:
        parts += ["", "**Quick mode** (a smoke check): one seed, 600 rows, Hyperband max_epochs 3 instead of the "
                  "default 9."]
    parts += ["", f"Wall time of the section: {seconds / 60:.1f} min."]
    goals = [_goal(hyperband, config)]
    return Section("Tuning efficiency", ".venv/bin/python bench/run_all.py --only tuning", "\n".join(parts), goals)


def _goal(hyperband: Outcome, config: TuningConfig) -> Goal:
    """The budget ``tunepipe.modelling.hyperband`` predicts (and the CLI prints) against what Hyperband ran."""
    budget = hyperband_budget(config.max_epochs, config.factor)
    exact = all(trials == budget.trials for trials in hyperband.trials)
    bounded = all(epochs <= budget.epochs for epochs in hyperband.epochs)
    return Goal("tuning: Hyperband budget as predicted",
                f"{budget.trials} trials, at most {budget.epochs} epochs (max_epochs {config.max_epochs})",
                f"trials {', '.join(map(str, hyperband.trials))}; epochs {', '.join(map(str, hyperband.epochs))} "
                "(per seed)", exact and bounded,
                "" if exact and bounded else "hyperband_budget disagrees with Keras Tuner's oracle")


def run(quick: bool) -> Section:
    """Three searches per seed; quick mode: one seed, 600 rows and max_epochs 3."""
    started = time.perf_counter()
    seeds = SEEDS[:1] if quick else SEEDS
    config = TuningConfig(max_epochs=3) if quick else TuningConfig()
    outcomes = {kind: Outcome() for kind in TUNERS}
    with tempfile.TemporaryDirectory(prefix="tunepipe-tuning-") as scratch:
        folder = Path(scratch)
        dataset = write_classification(folder, 600 if quick else 3000)
        for seed in seeds:
            problem = prepare(dataset.uri, seed, folder / f"data-{seed}")
            if seed == seeds[0]:
                warm_up(problem, folder / "warm-up")
            measure(problem, config, seed, folder / f"search-{seed}", outcomes)
    return render(outcomes, config, dataset.about, seeds, quick, time.perf_counter() - started)
