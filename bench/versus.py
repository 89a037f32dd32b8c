"""Benchmark section: the whole `tunepipe run` against an earlier commit, side by side.

Both trees run in the same Python environment (this checkout's virtualenv) with their own
source first on ``PYTHONPATH``: the earlier commit is checked out into a temporary git worktree.
For each dataset, each repetition runs a fresh ``tunepipe run`` of both trees into new output
folders, alternating which goes first, then a cached re-run of this tree; medians of the
repetitions; every ratio is a ratio of medians. The test metrics of both sides' published
models are compared.

Datasets: the default run (penguins, every setting at its default) and a synthetic table of
100,000 rows (``bench/synthetic.py``'s 20-feature, 5-class classification set).

    .venv/bin/python bench/run_all.py --only versus [--quick]       # against commit 5da83d9
    .venv/bin/python bench/versus.py --baseline COMMIT [--quick]     # this section alone
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Goal, Section, median, ratio_of_medians, run_child, table
from steplog import step_records
from synthetic import write_classification

# The main of the day issue 15 was filed: the run every speed goal of that issue is measured against.
BASELINE_COMMIT = "5da83d9"
GOAL_RATIO = 0.5
CACHED_GOAL = 0.05
PEAK_GOAL_MIB = 700
SPEED_NOTE = (
    "tune, train, evaluate and export each start a new process that imports TensorFlow (the overhead section's "
    "import accounting measures it), and every tuning trial traces its new model's functions before its first "
    "epoch: most of a trial's time on these small tables (the tune_overhead section's time per trial in fit); "
    "running the fits eagerly to avoid the tracing measured slower (about 0.4 s an epoch against 0.08 s). Closing "
    "the gap needs fewer TensorFlow processes per run or a lighter backend, not a faster step."
)
MEMORY_NOTE = (
    "a step that imports Keras holds TensorFlow 2.21, whose import alone peaks at about 660 MiB RSS on this machine "
    "(661 MiB in a fresh `python -c 'import keras'`, 2026-12-03; about 310 MiB of it the pages of "
    "libtensorflow_cc.so touched while its kernels register), which leaves a step some 40 MiB for its data, model "
    "and work; the default run's TensorFlow steps use 60-150 MiB more. Meeting the goal needs a lighter backend "
    "for those steps."
)
SIDES = ("baseline", "current")


@dataclass
class Runs:
    """Wall seconds and test metrics of one dataset's runs, one entry per repetition."""

    seconds: dict[str, list[float]] = field(default_factory=lambda: {side: [] for side in SIDES})
    metrics: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {side: [] for side in SIDES})
    cached: list[float] = field(default_factory=list)
    peaks: dict[str, list[dict[str, float]]] = field(default_factory=lambda: {side: [] for side in SIDES})


@contextmanager
def baseline_tree(commit: str) -> Iterator[Path]:
    """``commit`` checked out into a temporary worktree of this repository, removed afterwards."""
    with tempfile.TemporaryDirectory(prefix="tunepipe-baseline-") as scratch:
        tree = Path(scratch) / "tree"
        subprocess.run(["git", "worktree", "add", "--detach", "--quiet", str(tree), commit], cwd=REPO, check=True)
        try:
            yield tree
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=REPO, check=False)


def published_metrics(output: Path) -> dict[str, float]:
    """The test metrics of the model a run published (either layout of the version folder)."""
    cards = sorted(output.glob("models/*/*/**/model_card.json"))
    return json.loads(cards[-1].read_text())["metrics"] if cards else {}


def run_tree(tree: Path, output: Path, data: list[str]) -> tuple[float, dict[str, float]]:
    """One ``tunepipe run`` of ``tree``'s source into ``output``: its wall seconds, each step's peak RSS in MiB.

    The peaks are the lines every step prints when it ends, read from the run's step logs
    (``<output>/logs/``) where the tree writes them, else from its console (kfp.local's output).
    """
    env = {"PYTHONPATH": f"{tree / 'src'}{os.pathsep}{tree}", "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = run_child([sys.executable, "-m", "pipelines.cli", "run", "--output", str(output), *data],
                      env=env, cwd=tree)
    logs = [path.read_text() for path in sorted(output.glob("logs/*/*.log")) if path.name != "run.log"]
    records = {name: record for log in (logs or [child.stdout]) for name, record in step_records(log).items()}
    return child.seconds, {name: record.peak_mib for name, record in records.items() if record.peak_mib is not None}


def measure(trees: dict[str, Path], data: list[str], work: Path, repetitions: int) -> Runs:
    """Fresh runs of both trees (alternating order), then this tree's cached re-run, per repetition."""
    runs = Runs()
    for repetition in range(repetitions):
        for side in SIDES if repetition % 2 == 0 else SIDES[::-1]:
            output = work / f"{side}-{repetition}"
            seconds, peaks = run_tree(trees[side], output, data)
            runs.seconds[side].append(seconds)
            runs.peaks[side].append(peaks)
            runs.metrics[side].append(published_metrics(output))
        runs.cached.append(run_tree(trees["current"], work / f"current-{repetition}", data)[0])
    return runs


def _metric_line(runs: Runs) -> str:
    names = [name for name in ("accuracy", "log_loss", "r2", "rmse") if name in runs.metrics["current"][0]]
    parts = []
    for name in names:
        values = {side: median([m.get(name, float("nan")) for m in runs.metrics[side]]) for side in SIDES}
        parts.append(f"{name} {values['current']:.4f} (baseline {values['baseline']:.4f})")
    return ", ".join(parts) or "no published model"


def _median_peaks(runs: Runs, side: str) -> dict[str, float]:
    """Each step's peak RSS on ``side``, the median over the repetitions that ran the step."""
    steps = dict.fromkeys(step for peaks in runs.peaks[side] for step in peaks)
    return {step: median([peaks[step] for peaks in runs.peaks[side] if step in peaks]) for step in steps}


def _peak_table(results: dict[str, Runs], commit: str) -> str:
    """Each step's peak RSS (median over repetitions), both trees, per dataset."""
    rows = []
    for name, runs in results.items():
        medians = {side: _median_peaks(runs, side) for side in SIDES}
        for step in dict.fromkeys([*medians["current"], *medians["baseline"]]):
            cells = [medians[side].get(step, float("nan")) for side in SIDES]
            rows.append((name, f"`{step}`", *(f"{value:.0f}" for value in cells)))
    return table(("dataset", "step", f"{commit} peak RSS (MiB)", "this tree peak RSS (MiB)"), rows)


def render(results: dict[str, Runs], commit: str, repetitions: int, about: dict[str, str]) -> Section:
    """One row per dataset: both sides' medians, the ratios, the metrics; one goal per dataset."""
    rows, goals = [], []
    for name, runs in results.items():
        baseline, current = median(runs.seconds["baseline"]), median(runs.seconds["current"])
        cached = median(runs.cached)
        ratio = ratio_of_medians(runs.seconds["current"], runs.seconds["baseline"])
        cached_share = ratio_of_medians(runs.cached, runs.seconds["current"])
        rows.append((name, f"{baseline:.1f}", f"{current:.1f}", f"**{ratio:.2f}x**", f"{cached:.1f}",
                     f"{100 * cached_share:.1f}%", _metric_line(runs)))
        goals.append(Goal(f"whole run vs {commit}: {name}", f"<= {GOAL_RATIO}x the baseline's fresh run",
                          f"{ratio:.2f}x (median of {repetitions})", ratio <= GOAL_RATIO,
                          "" if ratio <= GOAL_RATIO else SPEED_NOTE))
        goals.append(Goal(f"cached re-run: {name}", f"< {CACHED_GOAL:.0%} of a fresh run",
                          f"{100 * cached_share:.1f}%", cached_share < CACHED_GOAL))
        peaks = _median_peaks(runs, "current")
        if peaks:
            largest = max(peaks, key=lambda step: peaks[step])
            goals.append(Goal(f"peak memory per step: {name}", f"every step <= {PEAK_GOAL_MIB} MiB",
                              f"largest {largest} {peaks[largest]:.0f} MiB", peaks[largest] <= PEAK_GOAL_MIB,
                              "" if peaks[largest] <= PEAK_GOAL_MIB else MEMORY_NOTE))
    body = (
        f"What ran: `tunepipe run` of commit {commit} (a git worktree) and of this tree, each fresh into a new "
        f"output folder, {repetitions} repetitions alternating which goes first, then this tree's cached re-run; "
        "the same virtualenv for both. Wall time of the whole command; medians; ratios of medians.\n\n"
        + "\n".join(f"- **{name}**: {text}" for name, text in about.items()) + "\n\n"
        + table(("dataset", f"{commit} fresh s", "this tree fresh s", "ratio", "cached re-run s", "of fresh",
                 "test metrics (this tree, baseline)"), rows) + "\n\n"
        + "Peak resident memory of each step's process (the line each step prints when it ends; where the tune "
        "step runs Keras Tuner's chief and workers as processes beside it, theirs are not included):\n\n"
        + _peak_table(results, commit) + "\n"
    )
    return Section(f"Whole run against commit {commit}", ".venv/bin/python bench/run_all.py --only versus", body,
                   goals)


def run(quick: bool, commit: str = BASELINE_COMMIT) -> Section:
    """Penguins and the synthetic table (10,000 rows and 1 repetition when ``quick``, else 100,000 and 3)."""
    repetitions, rows = (1, 10_000) if quick else (3, 100_000)
    with tempfile.TemporaryDirectory(prefix="tunepipe-bench-versus-") as scratch, baseline_tree(commit) as old:
        work = Path(scratch)
        table_data = write_classification(work, rows)
        datasets = {"penguins (default run)": [],
                    f"synthetic, {rows:,} rows": ["--data", table_data.uri, "--label", table_data.label]}
        about = {"penguins (default run)": "the shipped sample, every setting at its default",
                 f"synthetic, {rows:,} rows": table_data.about}
        trees = {"baseline": old, "current": REPO}
        results = {name: measure(trees, data, work / str(index), repetitions)
                   for index, (name, data) in enumerate(datasets.items())}
        return render(results, commit, repetitions, about)


def main(argv: list[str] | None = None) -> int:
    """This section alone, printed as Markdown."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default=BASELINE_COMMIT, help=f"the earlier commit (default {BASELINE_COMMIT})")
    parser.add_argument("--quick", action="store_true", help="10,000 rows and one repetition")
    args = parser.parse_args(argv)
    section = run(args.quick, args.baseline)
    print(f"## {section.title}\n\n{section.body}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
