"""The tune step over folders: Hyperband wherever ``tuning.placement`` says, resumable.

Called by the tune component. Reads the preprocess step's folders, has the runner
:func:`~tunepipe.execution.tuning.tuning_runner` gives it (this process, processes of its node,
or pods) run or resume the search in the tuner directory
:func:`~tunepipe.modelling.problem.tuner_location` names, and writes the best hyperparameters,
the trial table and the HTML report.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import SearchSpace, TuningConfig
from tunepipe.execution.devices import use_mixed_precision_on_gpu
from tunepipe.execution.tuning import TuningWork, tuning_runner
from tunepipe.modelling.hyperband import hyperband_budget
from tunepipe.modelling.preference import choose
from tunepipe.modelling.problem import problem_hash, sample_key, tuner_location, tuning_problem
from tunepipe.modelling.tune import save_tuning
from tunepipe.reports.tuning_report import tuning_report_html
from tunepipe.step_folders import one_run_at_a_time, output_folder
from tunepipe.storage import atomic
from tunepipe.storage.tuner_state import state_sync_for

log = logging.getLogger(__name__)


def tune_step(
    train_dir: PathLike, validation_dir: PathLike, spec_dir: PathLike,
    search_space: SearchSpace, tuning: TuningConfig, seed: int,
    best_dir: PathLike, trials_dir: PathLike, report_path: PathLike | None = None,
    model_name: str = "model", fingerprint: str = "sha256:unknown", gpus: int = 0,
) -> dict[str, Any]:
    """Runs (or resumes) Hyperband; writes the chosen hyperparameters (``tuning.prefer``: the best
    trial's, or the smallest or fastest within the noise of the best), the choice with its cost,
    the trial table with every trial's size and latency, and the report.

    The tuner state goes to :func:`tuner_location`; without ``tuning.tuner_root`` that is a
    ``tuner`` folder inside ``trials_dir``, which a retried step does not see again.
    """
    log.info("tune: precision policy %s", use_mixed_precision_on_gpu())
    runner = tuning_runner(tuning)
    log.info("tune: placement %s -> %s", tuning.placement.where, runner.layout.describe())
    problem = tuning_problem(train_dir, validation_dir, spec_dir, search_space, tuning.sample_rows, seed)
    _say_sample(problem.sample, tuning.sample_rows)
    default_root = Path(trials_dir) / artifacts.TUNER_DIR
    location = tuner_location(tuning, search_space, seed, model_name, fingerprint, default_root,
                              problem_hash(spec_dir), sample_key(problem.sample))
    sync = state_sync_for(location)
    log.info("tune: tuner state in %s (placement %s)", location, runner.layout.describe())
    folders = (str(train_dir), str(validation_dir), str(spec_dir))
    with tempfile.TemporaryDirectory(prefix="tunepipe-tuner-") as scratch, one_run_at_a_time(location, sync, "tune"):
        work_dir = Path(scratch) if sync is not None else Path(location)
        result = runner.tune(TuningWork(problem, folders, search_space, tuning, seed, location, work_dir, sync, gpus))
        result, choice = choose(result, problem.hypermodel, problem.validation, tuning, seed, work_dir, tuning.prefer)
    save_tuning(
        result, output_folder(best_dir) / artifacts.BEST_HYPERPARAMETERS_FILE,
        output_folder(trials_dir) / artifacts.TRIALS_FILE,
    )
    choice.save(Path(best_dir) / artifacts.TUNING_CHOICE_FILE)
    atomic.write_text(Path(best_dir) / artifacts.TUNING_SAMPLE_FILE, json.dumps(problem.sample, indent=2))
    if report_path is not None:
        budget = hyperband_budget(tuning.max_epochs, tuning.factor, tuning.hyperband_iterations)
        line = (f"Hyperband max_epochs={tuning.max_epochs} factor={tuning.factor} iterations="
                f"{tuning.hyperband_iterations}: {budget.trials} trials, {budget.epochs} epochs scheduled.")
        output_folder(Path(report_path).parent)
        atomic.write_text(report_path, tuning_report_html(result.trials, tuning.objective, result.direction, line,
                                                          choice))
    statuses = result.trials["status"]
    return {
        artifacts.META_TRIALS: len(result.trials), artifacts.META_BEST_SCORE: result.best_score,
        artifacts.META_FAILED_TRIALS: int((statuses == "FAILED").sum()), artifacts.META_TUNER_DIRECTORY: location,
        artifacts.META_RESUMED_TRIALS: result.resumed_trials, artifacts.META_PREFER: choice.prefer,
        artifacts.META_CHOSEN_TRIAL: choice.chosen_trial, artifacts.META_CHOSEN_SCORE: choice.chosen_score,
        artifacts.META_PARAMETERS: choice.parameters, artifacts.META_TUNED_ROWS: problem.sample["train"]["kept"],
    }


def _say_sample(sample: dict[str, dict[str, Any]], sample_rows: int) -> None:
    train, validation = sample["train"], sample["validation"]
    if train["kept"] == train["rows"] and validation["kept"] == validation["rows"]:
        log.info("tune: searching on every row (%d train, %d validation; tuning.sample_rows %d)",
                 train["rows"], validation["rows"], sample_rows)
        return
    log.info("tune: searching on a sample stratified by %s (tuning.sample_rows %d): %d of %d train rows, "
             "%d of %d validation rows; the final training uses every row", train["strata"], sample_rows,
             train["kept"], train["rows"], validation["kept"], validation["rows"])
