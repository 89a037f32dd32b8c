"""Benchmark section: cross-validation folds in the train step's process against 2 processes.

Chooses ``evaluation.cv_placement``'s CPU default (``CPU_FOLD_PROCESSES`` in
``tunepipe.execution.placement``). Both sides run ``cross_validate`` (5 folds, 20 epochs, the
search space's default hyperparameters) on the same train + validation rows, each in a fresh
process with Keras already imported, as in the train step (which cross-validates small data):

- **in process**: the folds one after another in that process;
- **2 processes**: the folds spread over 2 spawned processes (what ``cv_placement: {where: node,
  workers: 2}`` runs, and what ``auto`` runs with one process per GPU on a node with 2 GPUs), each
  importing TensorFlow.

Datasets: the default run's penguins (292 rows of train + validation) and a synthetic
classification table just under ``cv_max_rows`` (1,900 rows of train + validation).

    .venv/bin/python bench/run_all.py --only crossval [--quick]
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

SEED = 42
FOLDS, EPOCHS = 5, 20
SIDES = {"in process": 0, "2 processes": 2}
SYNTHETIC_ROWS = 2300  # 1,900 train + validation rows after the default 70/15/15 split: under cv_max_rows


def _synthetic_csv(path: Path) -> str:
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(SYNTHETIC_ROWS, n_features=20, n_informative=10, n_classes=3, random_state=SEED)
    frame = pd.DataFrame(x, columns=[f"x{index}" for index in range(x.shape[1])]).assign(label=y.astype(str))
    frame.to_csv(path, index=False)
    return str(path)


def one_side(workers: int, folders: dict[str, str]) -> dict[str, float]:
    """Cross-validates in this process (``workers`` 0) or in ``workers`` processes; wall time and score."""
    import keras_tuner
    import pandas as pd

    from tunepipe import artifacts
    from tunepipe.config import Placement, SearchSpace
    from tunepipe.data.features import PreprocessingSpec
    from tunepipe.data.split import Split
    from tunepipe.evaluation.crossval import cross_validate
    from tunepipe.execution.folds import fold_runner
    from tunepipe.modelling.chooser import hypermodel_for

    spec = PreprocessingSpec.load(Path(folders["spec"]) / artifacts.PREPROCESSING_SPEC_FILE)
    frame = pd.concat([Split.open(folders[name]).frame() for name in ("train", "validation")], ignore_index=True)
    hypermodel, hyperparameters = hypermodel_for(spec, SearchSpace()), keras_tuner.HyperParameters()
    hypermodel.build(hyperparameters)  # registers the search space's defaults
    start = time.perf_counter()
    placement = Placement(where="node", workers=workers) if workers else Placement(where="step")
    result = cross_validate(hypermodel, hyperparameters, frame, spec, FOLDS, EPOCHS, SEED, fold_runner(placement, []))
    return {"seconds": time.perf_counter() - start, "rows": len(frame),
            "accuracy": result["metrics"]["accuracy"]["mean"]}


def _measure(datasets: dict[str, dict[str, str]], repetitions: int) -> dict[str, dict[str, list[dict[str, float]]]]:
    results: dict[str, dict[str, list[dict[str, float]]]] = {name: {side: [] for side in SIDES} for name in datasets}
    names = list(SIDES)
    for repetition in range(repetitions):
        for dataset, folders in datasets.items():
            for side in names[repetition % 2:] + names[:repetition % 2]:
                child = run_child([sys.executable, __file__, "--workers", str(SIDES[side]),
                                   "--folders", json.dumps(folders)])
                results[dataset][side].append(json.loads(child.stdout.strip().splitlines()[-1]))
    return results


def render(results: dict[str, dict[str, list[dict[str, float]]]], repetitions: int) -> Section:
    """One row per dataset and side; the ratio per dataset; the goal: the default is the faster side."""
    rows, ratios = [], {}
    for dataset, sides in results.items():
        for side, runs in sides.items():
            rows.append((dataset, f"{runs[0]['rows']:.0f}", side, f"{median([r['seconds'] for r in runs]):.1f}",
                         f"{median([r['accuracy'] for r in runs]):.4f}"))
        ratios[dataset] = ratio_of_medians([r["seconds"] for r in sides["2 processes"]],
                                           [r["seconds"] for r in sides["in process"]])
    body = (
        f"What ran: `cross_validate` ({FOLDS} folds, {EPOCHS} epochs each, the search space's default "
        "hyperparameters) in a fresh process with Keras imported before the clock starts, the folds either in "
        "that process or spread over 2 spawned processes (each importing TensorFlow, which the clock includes); "
        f"{repetitions} repetition(s), alternating which side runs first; medians.\n\n"
        + table(("dataset", "train + validation rows", "folds run", "wall s", "mean fold accuracy"), rows) + "\n\n"
        + "".join(f"- **{name}: 2 processes / in process {ratio:.2f}x**\n" for name, ratio in ratios.items())
    )
    slowest = min(ratios.values())
    goal = Goal("cross-validation on CPU: the default is the faster layout",
                "in process (the CPU default) no slower than 2 processes",
                ", ".join(f"{name} {ratio:.2f}x" for name, ratio in ratios.items()), slowest >= 1.0)
    return Section("Cross-validation folds: one process against two",
                   ".venv/bin/python bench/run_all.py --only crossval", body, [goal])


def run(quick: bool) -> Section:
    """Prepares both datasets once, then measures (1 repetition when ``quick``, else 3)."""
    from tunepipe.datasets import DEFAULT_SAMPLE_LABEL, DEFAULT_SAMPLE_URI

    repetitions = 1 if quick else 3
    with tempfile.TemporaryDirectory(prefix="tunepipe-bench-cv-") as scratch:
        work = Path(scratch)
        datasets = {
            "penguins": prepare_splits(work / "penguins", DEFAULT_SAMPLE_URI, DEFAULT_SAMPLE_LABEL, SEED),
            "synthetic": prepare_splits(work / "synthetic", _synthetic_csv(work / "synthetic.csv"), "label", SEED),
        }
        return render(_measure(datasets, repetitions), repetitions)


def main(argv: list[str] | None = None) -> int:
    """One side in this process (what :func:`_measure` starts); prints its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, required=True)
    parser.add_argument("--folders", required=True, help="JSON of the split folders (prepare_splits())")
    args = parser.parse_args(argv)
    import keras  # noqa: F401 - imported before the clock starts, as in the train step

    figures: dict[str, Any] = one_side(args.workers, json.loads(args.folders))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
