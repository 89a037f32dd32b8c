"""Benchmark section: Hyperband on a sample of the training split, the final training on all of it.

Chooses ``tuning.sample_rows``' default (``TUNING_SAMPLE_ROWS`` in ``tunepipe.config.training``).
The synthetic 5-class classification table (``bench/synthetic.py``) of 60,000 rows (42,000
training rows after the default split) runs the default pipeline in process
(``bench/inprocess.py``, export off) once per sample size in :data:`SIZES` (0: every row) and
seed; only ``tuning.sample_rows`` changes between runs. Reported: the tune step's wall time,
the final training's, and the final model's test accuracy (trained on every training row
whatever the sample).

The goal: the shipped default loses nothing measurable, its test accuracy averaged over the seeds
within :data:`TOLERANCE` of tuning on every row. The table also gives the smallest size that meets
the same bound, and whether each size's search picked the same hyperparameters as the search on
every row (docs/tuning.md says why the default is not that smallest size). Quick mode: 6,000 rows,
sizes 1,000 and all, one seed.

    .venv/bin/python bench/run_all.py --only tune_sample [--quick]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Goal, Section, table
from inprocess import default_arguments, output_folder, run_in_process
from synthetic import write_classification

from tunepipe import artifacts
from tunepipe.config import TuningConfig, load_config

ROWS, QUICK_ROWS = 60_000, 6_000
SIZES, QUICK_SIZES = (2_000, 5_000, 20_000, 0), (1_000, 0)
SEEDS = (42, 7)
METRIC = "accuracy"
TOLERANCE = 0.005  # half a point of accuracy: below the seed-to-seed spread of these runs


def one_run(uri: str, size: int, seed: int, work: Path) -> dict[str, float]:
    """The default pipeline on ``uri`` with ``tuning.sample_rows`` = ``size``; its times and test score."""
    config = load_config(None, {"seed": seed, "data": {"uri": uri, "label": "label"},
                                "tuning": {"sample_rows": size}, "evaluation": {"cv_folds": 0}})
    started = time.perf_counter()
    run = run_in_process(default_arguments(config), work, export=False)
    best_file = output_folder(work, "tune", "best_hyperparameters") / artifacts.BEST_HYPERPARAMETERS_FILE
    best = json.loads(best_file.read_text())["values"]
    return {"tune": run.seconds["tune"], "train": run.seconds["train"], "total": time.perf_counter() - started,
            METRIC: run.metrics[METRIC], "best": {k: v for k, v in best.items() if not k.startswith("tuner/")}}


def _label(size: int) -> str:
    return "every row" if size == 0 else f"{size:,}"


def render(results: dict[int, list[dict[str, float]]], rows: int, seeds: tuple[int, ...]) -> Section:
    """One row per size (means over seeds); the default the rule picks, against the one shipped."""
    def mean(size: int, key: str) -> float:
        return sum(run[key] for run in results[size]) / len(results[size])

    full, shipped = mean(0, METRIC), TuningConfig().sample_rows
    same = {size: sum(run["best"] == every["best"] for run, every in zip(results[size], results[0], strict=True))
            for size in results}
    table_rows = [(_label(size), f"{mean(size, 'tune'):.0f}", f"{mean(0, 'tune') / mean(size, 'tune'):.2f}x",
                   f"{mean(size, 'train'):.0f}", f"{mean(size, METRIC):.4f}",
                   " / ".join(f"{run[METRIC]:.4f}" for run in results[size]), f"{mean(size, METRIC) - full:+.4f}",
                   f"{same[size]} of {len(seeds)}") for size in results]
    good = sorted(size for size in results if size and mean(size, METRIC) >= full - TOLERANCE)
    body = (
        f"What ran: the default pipeline in process on the synthetic classification table ({rows:,} rows, "
        f"{int(rows * 0.7):,} training rows), seeds {', '.join(map(str, seeds))}, once per `tuning.sample_rows`; "
        "the final training always used every training row. Means over the seeds.\n\n"
        + table(("tuning.sample_rows", "tune s", "tune speed-up", "train s", f"test {METRIC}",
                 "per seed", "vs every row", "same hyperparameters as every row"), table_rows)
        + f"\n\nSmallest size within {TOLERANCE} {METRIC} of tuning on every row: "
        f"**{_label(good[0]) if good else 'none'}**; shipped default `tuning.sample_rows: {shipped}`.\n"
    )
    measured = [size for size in results if size == shipped]
    if measured:
        gap = mean(shipped, METRIC) - full
        goal = Goal("tuning.sample_rows default loses nothing", f"test {METRIC} within {TOLERANCE} of tuning on "
                    "every row", f"{shipped:,}: {gap:+.4f} (mean of {len(seeds)} seeds)", gap >= -TOLERANCE)
    else:
        goal = Goal("tuning.sample_rows default loses nothing", f"test {METRIC} within {TOLERANCE} of every row",
                    f"the default ({shipped:,}) was not among the sizes run", None)
    return Section("Tuning on a sample, training on every row", ".venv/bin/python bench/run_all.py --only tune_sample",
                   body, [goal])


def run(quick: bool) -> Section:
    rows, sizes, seeds = (QUICK_ROWS, QUICK_SIZES, SEEDS[:1]) if quick else (ROWS, SIZES, SEEDS)
    results: dict[int, list[dict[str, float]]] = {size: [] for size in sizes}
    with tempfile.TemporaryDirectory(prefix="tunepipe-bench-sample-") as scratch:
        folder = Path(scratch)
        uri = write_classification(folder, rows).uri
        for seed in seeds:
            for size in sizes:
                figures = one_run(uri, size, seed, folder / f"run-{seed}-{size}")
                results[size].append(figures)
                print(f"tune_sample: seed {seed}, sample_rows {_label(size)}: tune {figures['tune']:.0f} s, "
                      f"train {figures['train']:.0f} s, test {METRIC} {figures[METRIC]:.4f}", file=sys.stderr,
                      flush=True)
    return render(results, rows, seeds)
