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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import SearchSpace, TuningConfig
from tunepipe.contract import StepResult
from tunepipe.execution.devices import use_mixed_precision_on_gpu
from tunepipe.execution.tuning import TuningWork, tuning_runner
from tunepipe.modelling.hyperband import hyperband_budget
from tunepipe.modelling.preference import Choice, choose
from tunepipe.modelling.problem import problem_hash, sample_key, tuner_location, tuning_problem
from tunepipe.modelling.tune import TuningResult, save_tuning
from tunepipe.reports.tuning_report import tuning_report_html
from tunepipe.step_folders import one_run_at_a_time, output_folder
from tunepipe.storage import atomic
from tunepipe.storage.tuner_state import state_sync_for

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Inputs:
    """What tune reads.

    Attributes:
        train_data, validation_data, preprocessing: The preprocess step's folders.
        tuning: The tuning section, its UI parameters (budget, tuner root) folded in.
        search_space: The search space.
        seed: Seeds the tuner and the sample.
        model_name: Names the tuner state's folder under the tuner root.
        data_fingerprint: Keys the tuner state to the data (default: not known).
        gpu_count: GPUs per worker pod of tuning on the cluster (0: the step's own limit).
    """

    train_data: PathLike
    validation_data: PathLike
    preprocessing: PathLike
    tuning: TuningConfig
    search_space: SearchSpace
    seed: int
    model_name: str = "model"
    data_fingerprint: str = "sha256:unknown"
    gpu_count: int = 0


@dataclass(frozen=True)
class Outputs:
    """Folders for the chosen hyperparameters and the trial table, and the HTML report's file (None: no report)."""

    best_hyperparameters: PathLike
    trials: PathLike
    tuning_report: PathLike | None = None


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """Runs (or resumes) Hyperband; writes the chosen hyperparameters (``tuning.prefer``: the best
    trial's, or the smallest or fastest within the noise of the best), the choice with its cost,
    the trial table with every trial's size and latency, and the report.

    The tuner state goes to :func:`tuner_location`; without ``tuning.tuner_root`` that is a
    ``tuner`` folder inside the trials folder, which a retried step does not see again.

    Returns:
        The search's summary (:func:`_summary`) as the metadata of the hyperparameters and the trials,
        the best score on the report, and the trials run, failed and resumed and the best score as metrics.
    """
    tuning, spec_dir = inputs.tuning, inputs.preprocessing
    log.info("tune: precision policy %s", use_mixed_precision_on_gpu())
    runner = tuning_runner(tuning)
    log.info("tune: placement %s -> %s", tuning.placement.where, runner.layout.describe())
    problem = tuning_problem(inputs.train_data, inputs.validation_data, spec_dir, inputs.search_space,
                             tuning.sample_rows, inputs.seed)
    _say_sample(problem.sample, tuning.sample_rows)
    default_root = Path(outputs.trials) / artifacts.TUNER_DIR
    location = tuner_location(tuning, inputs.search_space, inputs.seed, inputs.model_name, inputs.data_fingerprint,
                              default_root, problem_hash(spec_dir), sample_key(problem.sample))
    sync = state_sync_for(location)
    log.info("tune: tuner state in %s (placement %s)", location, runner.layout.describe())
    folders = (str(inputs.train_data), str(inputs.validation_data), str(spec_dir))
    with tempfile.TemporaryDirectory(prefix="tunepipe-tuner-") as scratch, one_run_at_a_time(location, sync, "tune"):
        work_dir = Path(scratch) if sync is not None else Path(location)
        result = runner.tune(TuningWork(problem, folders, inputs.search_space, tuning, inputs.seed, location, work_dir,
                                        sync, inputs.gpu_count))
        result, choice = choose(result, problem.hypermodel, problem.validation, tuning, inputs.seed, work_dir,
                                tuning.prefer)
    best_dir = output_folder(outputs.best_hyperparameters)
    save_tuning(result, best_dir / artifacts.BEST_HYPERPARAMETERS_FILE,
                output_folder(outputs.trials) / artifacts.TRIALS_FILE)
    choice.save(best_dir / artifacts.TUNING_CHOICE_FILE)
    atomic.write_text(best_dir / artifacts.TUNING_SAMPLE_FILE, json.dumps(problem.sample, indent=2))
    if outputs.tuning_report is not None:
        _write_report(outputs.tuning_report, result, choice, tuning)
    summary = _summary(result, choice, location, problem.sample)
    logged = {key: summary[key] for key in (artifacts.META_TRIALS, artifacts.META_FAILED_TRIALS,
                                            artifacts.META_RESUMED_TRIALS, artifacts.META_BEST_SCORE)
              if summary.get(key) is not None}
    return StepResult(
        metadata={"best_hyperparameters": summary, "trials": summary,
                  "tuning_report": {artifacts.META_BEST_SCORE: summary[artifacts.META_BEST_SCORE]}},
        metrics={"metrics": logged},
    )


def _write_report(path: PathLike, result: TuningResult, choice: Choice, tuning: TuningConfig) -> None:
    """The HTML report: the schedule's budget, every trial, the choice."""
    budget = hyperband_budget(tuning.max_epochs, tuning.factor, tuning.hyperband_iterations)
    line = (f"Hyperband max_epochs={tuning.max_epochs} factor={tuning.factor} iterations="
            f"{tuning.hyperband_iterations}: {budget.trials} trials, {budget.epochs} epochs scheduled.")
    output_folder(Path(path).parent)
    atomic.write_text(path, tuning_report_html(result.trials, tuning.objective, result.direction, line, choice))


def _summary(result: TuningResult, choice: Choice, location: str, sample: dict[str, Any]) -> dict[str, Any]:
    """Trials run, best score, failed and resumed trials, where the state is, the choice and the rows searched."""
    statuses = result.trials["status"]
    return {
        artifacts.META_TRIALS: len(result.trials), artifacts.META_BEST_SCORE: result.best_score,
        artifacts.META_FAILED_TRIALS: int((statuses == "FAILED").sum()), artifacts.META_TUNER_DIRECTORY: location,
        artifacts.META_RESUMED_TRIALS: result.resumed_trials, artifacts.META_PREFER: choice.prefer,
        artifacts.META_CHOSEN_TRIAL: choice.chosen_trial, artifacts.META_CHOSEN_SCORE: choice.chosen_score,
        artifacts.META_PARAMETERS: choice.parameters, artifacts.META_TUNED_ROWS: sample["train"]["kept"],
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
