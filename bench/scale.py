"""Benchmark section: data larger than memory, every step under a memory cap (issue 18, item 2).

Two measurements, each step in a process of its own (``bench/inprocess.py --step``) under a
kernel-enforced memory cap (``bench/memcap.py``: a memory cgroup; a watchdog where none can be made):

1. **Larger than the cap.** A synthetic table (:func:`write_table`: 40 numeric features, 2
   categorical, a 5-class label learnable from them, 1 % missing cells in two columns) whose
   in-memory size as pandas holds it is at least :data:`SIZE_FACTOR` times :data:`CAP_MIB`, written
   as Parquet shards. The default pipeline runs on it (``data.streaming: auto`` streams it), with
   the row and byte limits raised, and a bounded training budget (:data:`LARGE_CONFIG`). Reported
   per step: wall seconds, peak RSS, and whether it finished under the cap.
2. **Throughput where the data fits.** A :data:`FIT_ROWS`-row table of the same kind prepared and
   tuned once, then the train step twice on the same splits: reading them whole and streamed
   (``inprocess.py --split-read``: in a real run the split's size alone decides, see
   :mod:`tunepipe.data.split`), with the same hyperparameters and exactly :data:`FIT_EPOCHS`
   epochs. Goal: the streamed train step's rows per second at least :data:`THROUGHPUT_GOAL` of
   the whole one.

Quick mode: 1 M rows against a 1 GiB cap (no size goal), 100,000 rows for the throughput.

    .venv/bin/python bench/run_all.py --only scale [--quick]
"""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Goal, Section, table
from inprocess import SPLIT_READS
from memcap import ChildRun, run_measured

REPO = Path(__file__).resolve().parents[1]
CAP_MIB = 1536
SIZE_FACTOR = 8
ROWS, QUICK_ROWS = 26_000_000, 1_000_000
QUICK_CAP_MIB = 1024
SHARD_ROWS = 1_000_000
# 131,072 rows of this table are about 45 MB of Parquet: row groups of the size Spark and pyarrow
# writers aim at (64-128 MB); a reader decodes one row group at a time.
ROW_GROUP_ROWS = 131_072
NUMERIC, CLASSES = 40, 5
FIT_ROWS, QUICK_FIT_ROWS = 400_000, 100_000
FIT_EPOCHS = 3
THROUGHPUT_GOAL = 0.9
STEPS = ("fingerprint", "ingest", "preprocess", "tune", "train", "evaluate", "export")
# The pipeline's defaults but for: limits raised to the table's size, a short search (Hyperband
# on the default 20,000-row sample, max_epochs 3) and a bounded final training (2 epochs of
# batches of 256): the section measures memory, not the best model.
LARGE_CONFIG = {
    "tuning": {"max_epochs": 3},
    "training": {"max_epochs": 2, "patience": 5},
    "search_space": {"batch_size": [256]},
}
FIT_CONFIG = {"tuning": {"max_epochs": 2}, "training": {"max_epochs": FIT_EPOCHS, "patience": FIT_EPOCHS + 1},
              "search_space": {"batch_size": [256]}, "evaluation": {"cv_folds": 0}}


def _shard(rng: np.random.Generator, rows: int, weights: np.ndarray) -> pd.DataFrame:
    features = rng.normal(size=(rows, NUMERIC))
    frame = pd.DataFrame(features, columns=[f"x{index:02d}" for index in range(NUMERIC)])
    colour = rng.integers(0, 5, rows)
    region = rng.integers(0, 50, rows)
    frame["colour"] = np.array(["red", "green", "blue", "amber", "violet"])[colour]
    frame["region"] = np.char.add("r", region.astype(str))
    logits = features[:, :10] @ weights + 0.5 * (colour[:, None] == np.arange(CLASSES))
    frame["label"] = np.char.add("class_", logits.argmax(axis=1).astype(str))
    for column in ("x00", "x01"):
        frame.loc[rng.random(rows) < 0.01, column] = np.nan
    return frame


def write_table(folder: Path, rows: int, seed: int = 7) -> dict[str, float]:
    """Writes ``rows`` rows as Parquet shards of :data:`SHARD_ROWS`; returns their sizes (pandas and disk)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(10, CLASSES))
    memory = disk = 0
    for index, start in enumerate(range(0, rows, SHARD_ROWS)):
        shard = _shard(rng, min(SHARD_ROWS, rows - start), weights)
        memory += int(shard.memory_usage(deep=True).sum())
        path = folder / f"part-{index:04d}.parquet"
        shard.to_parquet(path, index=False, row_group_size=ROW_GROUP_ROWS)
        disk += path.stat().st_size
    return {"rows": rows, "memory_gib": memory / 2**30, "disk_gib": disk / 2**30}


def _config(path: Path, data: Path, overrides: dict[str, Any], streaming: str) -> Path:
    import yaml

    config = {"data": {"uri": str(data), "label": "label", "max_rows": 10**10, "max_bytes": 2**50,
                       "streaming": streaming}, **overrides}
    path.write_text(yaml.safe_dump(config))
    return path


def run_steps(config: Path, work: Path, steps: tuple[str, ...], cap_mib: int,
              extra: tuple[str, ...] = ()) -> dict[str, ChildRun]:
    """Each step in its own capped process (``extra``: more ``inprocess.py`` arguments); stops at the
    first that fails."""
    runs: dict[str, ChildRun] = {}
    for step in steps:
        command = [sys.executable, str(REPO / "bench" / "inprocess.py"), str(config), "--work", str(work),
                   "--step", step, *extra]
        run = run_measured(command, cap_mib * 2**20, cwd=REPO, merge_output=True)
        runs[step] = run
        state = "killed by the cap" if run.killed_by_cap else f"exit {run.returncode}"
        print(f"scale: {step}: {run.seconds:.0f} s, peak {run.peak_rss_mib:.0f} MiB, {state}", file=sys.stderr,
              flush=True)
        if run.returncode != 0:
            print(run.output[-3000:], file=sys.stderr)
            break
    return runs


def _train_throughput(work: Path, run: ChildRun) -> float:
    from tunepipe.data.split import Split

    rows = Split.open(work / "preprocess" / "train_data").rows
    history = json.loads((work / "train" / "history" / "history.json").read_text())
    epochs = len(history["history"]["loss"])
    return rows * epochs / run.seconds


def throughput(folder: Path, rows: int, cap_mib: int) -> dict[str, Any]:
    """Train-step rows per second reading the same splits whole and streamed, same hyperparameters
    and epochs (the steps before train run once, under a generous cap: speed is measured here)."""
    data = folder / "fit-data"
    write_table(data, rows, seed=11)
    config = _config(folder / "fit.yaml", data, FIT_CONFIG, "auto")
    prepared_work = folder / "fit-prepared"
    prepared = run_steps(config, prepared_work, ("fingerprint", "ingest", "preprocess", "tune"), cap_mib * 4)
    figures: dict[str, Any] = {}
    for how in SPLIT_READS:
        work = folder / f"fit-{how}"
        shutil.copytree(prepared_work, work)
        train = run_steps(config, work, ("train",), cap_mib * 4, ("--split-read", how))["train"]
        figures[how] = {"seconds": train.seconds, "peak": train.peak_rss_mib,
                        "ingest": prepared["ingest"].seconds, "preprocess": prepared["preprocess"].seconds,
                        "rows_per_s": _train_throughput(work, train) if train.returncode == 0 else float("nan")}
    figures["ratio"] = figures["streamed"]["rows_per_s"] / figures["whole"]["rows_per_s"]
    return figures


PEAKS_NOTE = (
    "\n\nHow to read the peaks: the cap is the cgroup's, which charges the pages a step itself brought "
    "into memory; peak RSS also counts shared-library pages that were already in memory (charged to "
    "whoever loaded them first), so a step can show a peak RSS somewhat above the cap and still have "
    "finished under it. TensorFlow, Keras and Keras Tuner take about 800 MiB before a row is read, "
    "hence the TF steps' floor. Every step's memory is bounded by its batch, bucket or chunk except "
    "evaluate's, which holds the test split's labels, the model's outputs (and the champion's) and one "
    "bootstrap resample at a time: a few numbers per test row."
)


def _outcome(run: ChildRun) -> str:
    if run.returncode == 0:
        return "yes"
    return "no: killed by the cap" if run.killed_by_cap else f"no: exit {run.returncode}"


def render(sizes: dict[str, float], runs: dict[str, ChildRun], cap_mib: int, fit: dict[str, Any],
           fit_rows: int, quick: bool) -> Section:
    factor = sizes["memory_gib"] * 1024 / cap_mib
    rows = [(step, f"{run.seconds:.0f}", f"{run.peak_rss_mib:,.0f}", f"{cap_mib:,}", _outcome(run))
            for step, run in runs.items()]
    enforcement = next(iter(runs.values())).enforcement if runs else "none"
    body = (
        f"A synthetic table of {sizes['rows']:,} rows ({NUMERIC} numeric features, 2 categorical, a {CLASSES}-class "
        f"label): {sizes['memory_gib']:.1f} GiB as pandas holds it ({factor:.1f}x the cap), {sizes['disk_gib']:.1f} "
        f"GiB of Parquet in {-(-sizes['rows'] // SHARD_ROWS)} shards. Each step ran in its own process under a "
        f"{cap_mib:,} MiB cap enforced by {enforcement}; `data.streaming: auto` streamed it.\n\n"
        + table(["step", "seconds", "peak RSS MiB", "cap MiB", "finished under the cap"], rows)
        + PEAKS_NOTE
        + f"\n\nTrain step throughput where the data fits ({fit_rows:,} rows, {FIT_EPOCHS} epochs, same "
        "hyperparameters, batch 256):\n\n"
        + table(["path", "ingest s", "preprocess s", "train step s", "train peak RSS MiB", "train rows x epochs / s"],
                [(mode, f"{fit[key]['ingest']:.1f}", f"{fit[key]['preprocess']:.1f}", f"{fit[key]['seconds']:.0f}",
                  f"{fit[key]['peak']:,.0f}", f"{fit[key]['rows_per_s']:,.0f}")
                 for mode, key in (("whole (in memory)", "whole"), ("streamed (tf.data)", "streamed"))])
    )
    every = bool(runs) and all(run.returncode == 0 for run in runs.values()) and len(runs) == len(STEPS)
    goals = [
        Goal("every step under the memory cap", f"all {len(STEPS)} steps finish under {cap_mib:,} MiB",
             f"{sum(run.returncode == 0 for run in runs.values())} of {len(STEPS)}", every,
             "" if every else "see the table: the first step that failed stops the run"),
        Goal("streamed train step throughput", f">= {THROUGHPUT_GOAL}x whole", f"{fit['ratio']:.2f}x",
             fit["ratio"] >= THROUGHPUT_GOAL, "" if fit["ratio"] >= THROUGHPUT_GOAL else "the tf.data input is slower"),
    ]
    if not quick:
        goals.insert(0, Goal("data larger than the cap", f">= {SIZE_FACTOR}x the per-step cap in memory",
                             f"{factor:.1f}x", factor >= SIZE_FACTOR, ""))
    return Section("Data larger than memory", ".venv/bin/python bench/run_all.py --only scale", body, goals)


def run(quick: bool) -> Section:
    rows, cap_mib, fit_rows = (QUICK_ROWS, QUICK_CAP_MIB, QUICK_FIT_ROWS) if quick else (ROWS, CAP_MIB, FIT_ROWS)
    (REPO / "runs").mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tunepipe-bench-scale-", dir=REPO / "runs") as scratch:
        folder = Path(scratch)
        sizes = write_table(folder / "data", rows)
        print(f"scale: {rows:,} rows written: {sizes['memory_gib']:.1f} GiB in pandas, "
              f"{sizes['disk_gib']:.1f} GiB on disk", file=sys.stderr, flush=True)
        config = _config(folder / "large.yaml", folder / "data", LARGE_CONFIG, "auto")
        runs = run_steps(config, folder / "work", STEPS, cap_mib)
        shutil.rmtree(folder / "work", ignore_errors=True)
        shutil.rmtree(folder / "data", ignore_errors=True)
        fit = throughput(folder, fit_rows, cap_mib)
    return render(sizes, runs, cap_mib, fit, fit_rows, quick)
