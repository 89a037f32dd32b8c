"""Ingest and clean: a 1,000,000 x 20 CSV against a plain pandas script (with pandas' default
engine and with its pyarrow engine), and parallel against serial decoding of 10,000 PNG files.

    .venv/bin/python bench/ingest.py [--quick] [--rows N] [--images N] [--repeat N]   # prints the section

Every table run happens in a fresh subprocess of this script (so each peak RSS is its own) on
the same seeded CSV in a temporary folder: numeric columns with missing values and outliers,
categorical columns with missing values, a numeric-looking text column with bad cells,
infinities and duplicate rows. "tunepipe" is ``read_table`` + ``clean`` with default settings
(which also computes before/after statistics, the schema and the label balance); "pandas" is
a hand-written script doing the same read and cleaning on columns it knows, once with
``pd.read_csv``'s default (C) engine and once with ``engine="pyarrow"``. The three sides take
turns (the order rotates between repetitions), each figure is the median of the repetitions,
and each ratio is a ratio of those medians. The time goal is decided against the faster of
the two pandas scripts.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Goal, Section, median, ratio_of_medians, run_child, table

from tunepipe.step_logging import peak_memory_mib

NUMERIC = [f"num_{i}" for i in range(14)]
CATEGORICAL = ["cat_0", "cat_1", "cat_2"]
TEXT_NUMBER = "amount_text"
LABEL = "label"
# Source images are 128x128 RGB noise (incompressible, so decoding dominates, as for photos).
IMAGE_SIZE = 128


def make_csv(path: Path, rows: int, seed: int = 0) -> None:
    """Writes the seeded benchmark table: 14 numeric, 3 categorical, 1 numeric text, 1 label, 1 id-like int."""
    rng = np.random.default_rng(seed)
    data: dict[str, object] = {}
    for index, name in enumerate(NUMERIC):
        values = rng.normal(index, 1 + index, rows)
        values[rng.random(rows) < 0.02] = np.nan
        values[rng.random(rows) < 0.001] *= 100  # outliers
        data[name] = values
    data["num_0"][rng.random(rows) < 0.0005] = np.inf  # type: ignore[index]
    for index, name in enumerate(CATEGORICAL):
        values = rng.choice([f"v{k}" for k in range(5 + 10 * index)], rows).astype(object)
        values[rng.random(rows) < 0.02] = None
        data[name] = values
    text = rng.integers(0, 10_000, rows).astype(str).astype(object)
    text[rng.random(rows) < 0.01] = "n/a"
    data[TEXT_NUMBER] = text
    data["count"] = rng.integers(0, 100, rows)
    labels = rng.choice(["a", "b", "c"], rows, p=[0.6, 0.3, 0.1]).astype(object)
    labels[rng.random(rows) < 0.001] = None
    data[LABEL] = labels
    frame = pd.DataFrame(data)
    duplicates = frame.sample(frac=0.01, random_state=seed)
    pd.concat([frame, duplicates], ignore_index=True).to_csv(path, index=False)


# The sides of the table benchmark: the hand-written script with each pandas CSV engine, and tunepipe.
SIDES = ("pandas", "pandas-pyarrow", "tunepipe")
Engine = Literal["c", "pyarrow"]
ENGINES: dict[str, Engine] = {"pandas": "c", "pandas-pyarrow": "pyarrow"}
SHOWN = {"pandas": "pandas (default engine)", "pandas-pyarrow": "pandas (pyarrow engine)", "tunepipe": "tunepipe"}


def plain_pandas(path: str, engine: Engine = "c") -> int:
    """The hand-written equivalent: read (with ``engine``), coerce, infinities, label, duplicates, impute."""
    frame = pd.read_csv(path, engine=engine)
    frame[TEXT_NUMBER] = pd.to_numeric(frame[TEXT_NUMBER], errors="coerce")
    numeric = [*NUMERIC, TEXT_NUMBER, "count"]
    frame[numeric] = frame[numeric].replace([np.inf, -np.inf], np.nan)
    frame = frame[frame[LABEL].notna()]
    frame = frame.drop_duplicates().reset_index(drop=True)
    frame[numeric] = frame[numeric].fillna(frame[numeric].median())
    for name in CATEGORICAL:
        frame[name] = frame[name].fillna(frame[name].mode().iloc[0])
    return len(frame)


def tunepipe_ingest(path: str) -> int:
    """What the ingest step does before writing: read (sniffed) and clean with default rules."""
    from tunepipe.data.ingest import clean, read_table

    return len(clean(read_table(path), LABEL).frame)


def worker(kind: str, path: str) -> None:
    """Runs one side on ``path``; prints its rows out, seconds (imports excluded) and peak RSS as JSON."""
    started = time.perf_counter()
    rows = tunepipe_ingest(path) if kind == "tunepipe" else plain_pandas(path, ENGINES[kind])
    seconds = time.perf_counter() - started
    peak = peak_memory_mib()  # VmHWM: ru_maxrss would carry the high-water mark of the bench that forked it
    print(json.dumps({"kind": kind, "rows": rows, "seconds": seconds, "peak_mib": peak}))


def table_runs(path: Path, repeat: int) -> dict[str, list[dict]]:
    """``repeat`` runs of each side, taking turns in a rotating order, each in a fresh process."""
    runs: dict[str, list[dict]] = {kind: [] for kind in SIDES}
    for index in range(repeat):
        for kind in SIDES[index % len(SIDES):] + SIDES[:index % len(SIDES)]:
            child = run_child([sys.executable, __file__, "--worker", kind, str(path)])
            runs[kind].append(json.loads(child.stdout.strip().splitlines()[-1]))
    return runs


def image_bench(folder: Path, count: int) -> tuple[float, float, int]:
    """Decodes ``count`` generated PNGs serially, then with one process per core."""
    from PIL import Image

    from tunepipe.data.images import decode_all

    rng = np.random.default_rng(0)
    paths = []
    for index in range(count):
        target = folder / f"class_{index % 10}"
        target.mkdir(parents=True, exist_ok=True)
        pixels = rng.integers(0, 255, (IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)
        path = target / f"{index:05d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(str(path))
    timings = []
    for workers in (1, None):
        started = time.perf_counter()
        decoded = decode_all(paths, 32, 32, workers=workers)
        timings.append(time.perf_counter() - started)
        assert all(not isinstance(item, str) for item in decoded)
    return timings[0], timings[1], os.cpu_count() or 1




TIME_GOAL = 1.2  # ingest + clean at most 1.2x the faster hand-written pandas script (default or pyarrow engine)
FULL = {"rows": 1_000_000, "images": 10_000, "repeat": 3}
QUICK = {"rows": 200_000, "images": 2_000, "repeat": 1}


def run(quick: bool, rows: int | None = None, images: int | None = None, repeat: int | None = None) -> Section:
    """The ingest section: 1,000,000 rows, 10,000 images, median of 3 (quick: 200,000, 2,000, one run)."""
    size = QUICK if quick else FULL
    rows, images, repeat = rows or size["rows"], images or size["images"], repeat or size["repeat"]
    with tempfile.TemporaryDirectory(prefix="tunepipe-bench-") as scratch:
        csv = Path(scratch) / "bench.csv"
        make_csv(csv, rows)
        size_mib = csv.stat().st_size / 2**20
        runs = table_runs(csv, repeat)
        serial, parallel, cores = image_bench(Path(scratch) / "images", images)
    label = f"median of {repeat}" if repeat > 1 else "one run"
    ratios, baseline = time_ratios(runs)
    body = "\n".join([
        _setup(rows, size_mib, images, label),
        "",
        _table(runs, ratios),
        "",
        _ratio_line(ratios, baseline),
        _memory_line(runs),
        f"- images: {images:,} PNGs {IMAGE_SIZE}x{IMAGE_SIZE} RGB decoded and resized to 32x32: serial {serial:.2f} s,"
        f" parallel ({cores} processes) {parallel:.2f} s, **{serial / parallel:.2f}x** (one run each). Decoding a "
        "small PNG costs about as much as handing it between processes, so the pool is only used from 256 files on; "
        "it pays off for photo-sized images.",
        "",
        HOW_MET,
    ])
    return Section("Ingest and clean against plain pandas; parallel image decoding",
                   f".venv/bin/python bench/run_all.py --only ingest{' --quick' if quick else ''}", body,
                   [_goal(ratios, baseline, label, rows)])


def time_ratios(runs: dict[str, list[dict]]) -> tuple[dict[str, float], str]:
    """tunepipe's median time over each pandas script's, and the faster script (the one the goal is set against)."""
    seconds = {kind: [run["seconds"] for run in runs[kind]] for kind in runs}
    ratios = {kind: ratio_of_medians(seconds["tunepipe"], seconds[kind]) for kind in ENGINES}
    return ratios, min(ENGINES, key=lambda kind: _median(runs, kind, "seconds"))


def _median(runs: dict[str, list[dict]], kind: str, key: str) -> float:
    return median([run[key] for run in runs[kind]])


def _table(runs: dict[str, list[dict]], ratios: dict[str, float]) -> str:
    header = ["run", "rows out", "wall time (s)", "peak RSS (MiB)", "tunepipe time / this"]
    return table(header, [[SHOWN[kind], f"{runs[kind][0]['rows']:,}", f"{_median(runs, kind, 'seconds'):.2f}",
                           f"{_median(runs, kind, 'peak_mib'):.0f}", f"{ratios[kind]:.2f}x" if kind in ratios else "-"]
                          for kind in runs])


def _ratio_line(ratios: dict[str, float], baseline: str) -> str:
    other = next(kind for kind in ENGINES if kind != baseline)
    return (f"- **time ratio tunepipe / {SHOWN[baseline]}: {ratios[baseline]:.2f}x** (the faster pandas script, "
            f"against which the goal <= {TIME_GOAL}x is decided); tunepipe / {SHOWN[other]}: {ratios[other]:.2f}x. "
            "Each ratio is tunepipe's median time over that script's median time.")


def _memory_line(runs: dict[str, list[dict]]) -> str:
    peaks = [f"{_median(runs, kind, 'peak_mib') / 1024:.2f} GiB for {SHOWN[kind]}" for kind in runs]
    return f"- peak memory (median): {', '.join(peaks)}."


def _goal(ratios: dict[str, float], baseline: str, label: str, rows: int) -> Goal:
    other = next(kind for kind in ENGINES if kind != baseline)
    met = ratios[baseline] <= TIME_GOAL
    return Goal("ingest + clean time", f"<= {TIME_GOAL}x the faster plain pandas script (default or pyarrow engine)",
                f"{ratios[baseline]:.2f}x {SHOWN[baseline]}; {ratios[other]:.2f}x {SHOWN[other]} ({label}, {rows:,} "
                "rows)", met, "" if met else _miss_note(rows, baseline))


def _miss_note(rows: int, baseline: str) -> str:
    if rows < FULL["rows"]:
        return (f"the goal is set for {FULL['rows']:,} rows; at {rows:,} rows (quick mode) the costs that do not grow "
                "with the table (sniffing, the report) weigh more, and one run on a shared machine is noisy.")
    if baseline == "pandas-pyarrow":
        return ("the faster pandas script reads with the same multi-threaded pyarrow parser as tunepipe, so nothing "
                "pays for what tunepipe adds: encoding and delimiter sniffing, checking every column for "
                "numeric-looking text, and the report's before/after statistics, schema and label balance; see the "
                "ingest section.")
    return "tunepipe also sniffs the file and computes the report's statistics; see the ingest section."


def _setup(rows: int, size_mib: float, images: int, label: str) -> str:
    return (
        f"What ran: a seeded CSV of {rows:,} rows plus 1% exact duplicates ({size_mib:.0f} MiB) with 14 numeric "
        "columns (2% missing values, 0.1% outliers, some infinities), 3 categorical columns (2% missing), a "
        "numeric-looking text column with 1% `n/a` cells, an integer column and a 3-class label (0.1% missing); "
        "each side in a fresh process, taking turns in an order that rotates between repetitions, "
        f"{label}: **pandas**, a hand-written script that knows the columns (`pd.read_csv`, `to_numeric` on the text "
        "column, infinities to NaN, rows without label dropped, `drop_duplicates`, median and mode imputation), run "
        "twice over: with `pd.read_csv`'s default (C) engine and with `engine=\"pyarrow\"` (multi-threaded, the "
        "parser tunepipe itself tries first); "
        "**tunepipe**, `read_table` + `clean` with the default rules, what the ingest step does before writing its "
        "files (encoding and delimiter sniffing, every column checked for numeric-looking text, infinities, labels, "
        "all-empty and constant columns, duplicates, imputation, plus the report's before/after statistics, schema "
        f"and label balance). The time goal is decided against the faster of the two pandas scripts, and both "
        f"ratios are shown. Wall time excludes interpreter start and imports. Then {images:,} generated PNGs (10 "
        "class folders) decoded serially and with one process per core (`tunepipe.data.images.decode_all`)."
    )


HOW_MET = (
    "How the time goal was first met (against the default-engine script): the first version took 3.6x that "
    "script's time on 100,000 rows. Profiling showed three "
    "costs the hand-written script does not pay, all removed: a per-cell Python check for booleans over whole text "
    "columns (now only over a 2,000-cell sample, and skipped for string dtypes); `nunique` to find constant columns "
    "(now a min/max or first-value comparison); and `DataFrame.duplicated()` plus three successive row filters (now "
    "rows are hashed with `pd.util.hash_pandas_object` and only rows whose hash repeats are compared exactly, about "
    "10x faster and still exact, and all row drops are applied with one mask). Reading UTF-8 CSVs with pandas' "
    "multi-threaded pyarrow engine pays for the sniffing and the report statistics against the default engine; "
    "the pyarrow-engine script reads the same way, so its ratio shows what the sniffing, checks and report cost."
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200,000 rows, 2,000 images, one run")
    parser.add_argument("--rows", type=int, help="table rows (default 1,000,000)")
    parser.add_argument("--images", type=int, help="images to decode (default 10,000)")
    parser.add_argument("--repeat", type=int, help="runs of each side; the median is kept (default 3)")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    print(run(args.quick, args.rows, args.images, args.repeat).body)


if __name__ == "__main__":
    main()
