"""Benchmark: ingest + clean of a 1,000,000 x 20 CSV against a plain pandas script, and
parallel against serial decoding of 10,000 PNG files.

    .venv/bin/python bench/ingest_bench.py [--rows 1000000] [--images 10000]

Both table runs happen in fresh subprocesses of this script (so each peak RSS is its own)
on the same seeded CSV in a temporary folder: numeric columns with missing values and
outliers, categorical columns with missing values, a numeric-looking text column with bad
cells, infinities and duplicate rows. "tunepipe" is ``read_table`` + ``clean`` with default
settings (which also computes before/after statistics, the schema and the label balance);
"pandas" is a hand-written script doing the same read and cleaning on columns it knows.
Results go in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

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


def plain_pandas(path: str) -> int:
    """The hand-written equivalent: read, coerce, infinities, label, duplicates, impute."""
    frame = pd.read_csv(path)
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
    from tunepipe.ingest import clean, read_table

    return len(clean(read_table(path), LABEL).frame)


def worker(kind: str, path: str) -> None:
    started = time.perf_counter()
    rows = (tunepipe_ingest if kind == "tunepipe" else plain_pandas)(path)
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"kind": kind, "rows": rows, "seconds": seconds, "peak_mib": peak_kib / 1024}))


def run_worker(kind: str, path: Path) -> dict:
    result = subprocess.run([sys.executable, __file__, "--worker", kind, str(path)], capture_output=True, text=True,
                            check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def image_bench(folder: Path, count: int) -> tuple[float, float, int]:
    """Decodes ``count`` generated PNGs serially, then with one process per core."""
    from PIL import Image

    from tunepipe.images import decode_all

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=2, help="runs of each, best time kept (default 2)")
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "PATH"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    with tempfile.TemporaryDirectory(prefix="tunepipe-bench-") as scratch:
        csv = Path(scratch) / "bench.csv"
        make_csv(csv, args.rows)
        size_mib = csv.stat().st_size / 2**20
        results = {}
        for kind in ("pandas", "tunepipe"):
            runs = [run_worker(kind, csv) for _ in range(args.repeat)]
            results[kind] = min(runs, key=lambda run: run["seconds"])
        serial, parallel, cores = image_bench(Path(scratch) / "images", args.images)
    plain, ours = results["pandas"], results["tunepipe"]
    print(f"table: {args.rows:,} rows + 1% duplicates x 20 columns, CSV {size_mib:.0f} MiB; best of {args.repeat}")
    print("| run | rows out | wall time (s) | peak RSS (MiB) |")
    print("|---|---|---|---|")
    for kind in ("pandas", "tunepipe"):
        run = results[kind]
        print(f"| {kind} | {run['rows']:,} | {run['seconds']:.2f} | {run['peak_mib']:.0f} |")
    print(f"time ratio tunepipe/pandas: {ours['seconds'] / plain['seconds']:.2f} (target <= 1.2)")
    print(f"memory ratio tunepipe/pandas: {ours['peak_mib'] / plain['peak_mib']:.2f} (limit 24 GiB)")
    print(f"images: {args.images:,} PNGs {IMAGE_SIZE}x{IMAGE_SIZE} RGB decoded and resized to 32x32: serial "
          f"{serial:.2f} s, parallel ({cores} processes) {parallel:.2f} s, speed-up {serial / parallel:.2f}x")
    print(f"machine: {cores} cores, load average over the last 5 minutes {os.getloadavg()[1]:.2f}")


if __name__ == "__main__":
    main()
