"""Benchmark section: the tune step against a bare Keras Tuner Hyperband search.

Both sides search the default search space of the default run (penguins, Hyperband
max_epochs 9, factor 3, seed 42) with the same hypermodel on the same splits, each in a fresh
process, imports excluded (the clock starts after ``import keras, keras_tuner``):

- **tunepipe**: ``tunepipe.tune_step.run`` as the tune component calls it (tuner state in a
  local tuner root, outputs, the trial table and the HTML report);
- **bare**: ``keras_tuner.Hyperband(...).search(x, y, validation_data=..., callbacks=[EarlyStopping])``
  in one plain process, the model built by the same hypermodel;
- **workers**: the tune step with ``placement: {where: node, workers: 2}`` (a chief and 2 worker
  processes), which ``where: auto`` chooses on a 2-CPU machine for this 23-trial schedule: this side
  checks that choice.

The **tunepipe** side runs ``placement: {where: step}``, the layout of the bare side, so that the overhead
ratio compares one process with one process.

A wrapper around the hypermodel's ``fit`` measures the time spent in ``model.fit`` (graph tracing
included) on both sides; the rest of each search, divided by its trials, is the time per trial
spent outside ``fit``: building and compiling models, Keras Tuner's checkpoints and state files,
our callbacks, the state mirror, the outputs.

    .venv/bin/python bench/run_all.py --only tune_overhead [--quick]
    .venv/bin/python bench/tune_overhead.py --side tunepipe|bare --folders JSON --work DIR   # one side
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Goal, Section, median, prepare_splits, ratio_of_medians, run_child, table

GOAL_RATIO = 1.1
SEED = 42
# "workers": the tune step with 2 worker processes on its node, against which auto's choice on CPU
# (tunepipe.execution.placement.resolve_tuning) is checked.
SIDES = ("tunepipe", "bare", "workers")


def prepare(work: Path) -> dict[str, str]:
    """The default run's ingest and preprocess on penguins: the split folders both sides read."""
    from tunepipe.datasets import DEFAULT_SAMPLE_LABEL, DEFAULT_SAMPLE_URI

    return prepare_splits(work, DEFAULT_SAMPLE_URI, DEFAULT_SAMPLE_LABEL, SEED)


def _time_fits() -> list[float]:
    """Wraps every hypermodel's ``fit`` to add its wall time to the returned list."""
    from tunepipe.modelling.hyperparameters import PipelineHyperModel

    spent: list[float] = []
    original = PipelineHyperModel.fit

    def timed(self: Any, *args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(self, *args, **kwargs)
        finally:
            spent.append(time.perf_counter() - start)

    PipelineHyperModel.fit = timed  # type: ignore[method-assign]
    return spent


def one_side(side: str, folders: dict[str, str], work: Path) -> dict[str, float]:
    """Runs one side's search in this process; returns its wall time, time in fit and trials."""
    import keras
    import keras_tuner

    from tunepipe.config import Placement, SearchSpace, TuningConfig

    fits = _time_fits()
    where = {"tunepipe": "step", "workers": "node"}.get(side, "step")
    placement = Placement(where=where, workers=2 if where == "node" else 0)
    tuning, space = TuningConfig(tuner_root=str(work / "tuner"), placement=placement), SearchSpace()
    start = time.perf_counter()
    if side in ("tunepipe", "workers"):
        from tunepipe import tune_step

        inputs = tune_step.Inputs(folders["train"], folders["validation"], folders["spec"], tuning, space, SEED,
                                  model_name="penguins", data_fingerprint="sha256:" + "0" * 64)
        summary = tune_step.run(inputs, tune_step.Outputs(work / "best", work / "trials", work / "report.html")
                                ).metadata["trials"]
        trials, best = summary["trials"], summary["best_score"]
    else:
        from tunepipe.modelling.problem import tuning_problem

        hypermodel, train, validation, _ = tuning_problem(folders["train"], folders["validation"], folders["spec"],
                                                          space, tuning.sample_rows, SEED)
        keras.utils.set_random_seed(SEED)
        tuner = keras_tuner.Hyperband(
            hypermodel, objective=keras_tuner.Objective(tuning.objective, "min"), max_epochs=tuning.max_epochs,
            factor=tuning.factor, hyperband_iterations=tuning.hyperband_iterations, seed=SEED,
            directory=str(work / "bare"), project_name="hyperband", overwrite=True)
        tuner.search(*train, validation_data=validation, verbose=0,
                     callbacks=[keras.callbacks.EarlyStopping(monitor=tuning.objective, patience=tuning.patience)])
        trials, best = len(tuner.oracle.trials), float(tuner.oracle.get_best_trials(1)[0].score)
    return {"seconds": time.perf_counter() - start, "fit_seconds": sum(fits), "trials": trials, "best": best}


def _measure(folders: dict[str, str], work: Path, repetitions: int) -> dict[str, list[dict[str, float]]]:
    """Each side in a fresh process, ``repetitions`` times, rotating which goes first."""
    results: dict[str, list[dict[str, float]]] = {side: [] for side in SIDES}
    for repetition in range(repetitions):
        for side in SIDES[repetition % len(SIDES):] + SIDES[:repetition % len(SIDES)]:
            folder = work / f"{side}-{repetition}"
            child = run_child([sys.executable, __file__, "--side", side, "--folders", json.dumps(folders),
                               "--work", str(folder)])
            results[side].append(json.loads(child.stdout.strip().splitlines()[-1]))
    return results


def render(results: dict[str, list[dict[str, float]]], repetitions: int) -> Section:
    """The table, the ratio of medians and the goal."""
    rows = []
    for side in SIDES:
        runs = results[side]
        wall, fit = median([r["seconds"] for r in runs]), median([r["fit_seconds"] for r in runs])
        trials = median([r["trials"] for r in runs])
        split = (("in the workers",) * 3 if side == "workers"  # their fits run in other processes
                 else (f"{fit:.1f}", f"{(wall - fit) / trials:.2f}", f"{fit / trials:.2f}"))
        rows.append((side, f"{wall:.1f}", split[0], f"{trials:.0f}", *split[1:],
                     f"{median([r['best'] for r in runs]):.4f}"))
    ratio = ratio_of_medians([r["seconds"] for r in results["tunepipe"]], [r["seconds"] for r in results["bare"]])
    body = (
        f"What ran: the default run's tune step (penguins, default search space, Hyperband max_epochs 9, factor 3, "
        f"seed {SEED}) against a bare `keras_tuner.Hyperband(...).search` with EarlyStopping only, same hypermodel, "
        f"same splits; each side in a fresh process, imports excluded, {repetitions} repetitions rotating which "
        "side runs first; medians.\n\n"
        + table(("side", "search wall s", "in fit s", "trials", "outside fit s/trial", "in fit s/trial",
                 "best val_loss"), rows)
        + f"\n\n- **tune step / bare search: {ratio:.2f}x** (ratio of the medians; goal <= {GOAL_RATIO}x).\n"
    )
    workers = ratio_of_medians([r["seconds"] for r in results["workers"]], [r["seconds"] for r in results["tunepipe"]])
    verdict = ("2 workers, what `placement: auto` runs here for this schedule, measured faster" if workers < 1.0
               else "one process measured faster here, so `placement: auto`'s CPU rule (2 workers from 20 trials) "
               "should change")
    body += f"- **2 worker processes (`placement: node`) / one process: {workers:.2f}x**: {verdict}.\n"
    goal = Goal("tuning overhead", f"<= {GOAL_RATIO}x a bare Keras Tuner search", f"{ratio:.2f}x (median of "
                f"{repetitions})", ratio <= GOAL_RATIO)
    choice = Goal("tuning on CPU: auto picks the faster layout",
                  "2 workers (auto's choice here) faster than one process",
                  f"2 workers / one process {workers:.2f}x", workers < 1.0)
    return Section("Tuning overhead: the tune step against a bare Keras Tuner search",
                   ".venv/bin/python bench/run_all.py --only tune_overhead", body, [goal, choice])


def run(quick: bool) -> Section:
    """Prepares the splits once, then measures both sides (1 repetition when ``quick``, else 3)."""
    repetitions = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="tunepipe-bench-tune-") as scratch:
        work = Path(scratch)
        return render(_measure(prepare(work / "data"), work, repetitions), repetitions)


def main(argv: list[str] | None = None) -> int:
    """One side in this process (what :func:`_measure` starts); prints its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--side", choices=SIDES, required=True)
    parser.add_argument("--folders", required=True, help="JSON of the split folders (prepare())")
    parser.add_argument("--work", required=True, type=Path)
    args = parser.parse_args(argv)
    import keras  # noqa: F401 - imported before the clock starts, on both sides
    import keras_tuner  # noqa: F401

    print(json.dumps(one_side(args.side, json.loads(args.folders), args.work)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
