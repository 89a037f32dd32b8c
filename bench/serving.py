"""Serving latency and throughput: ``tunepipe serve`` over HTTP against the same SavedModel in-process.

One run trains a penguins classifier briefly and publishes it with the pipeline's own export (the
real serving graph: fill values, normalization, string lookups, the MLP, named outputs), starts
``tunepipe serve`` on loopback over it, and measures, in the same run, with rows of the shipped
penguins file (empty cells included):

- one-row requests sent one after another: p50 and p99 latency (HTTP: the whole round trip
  through KServe's server, request decoding and JSON encoding; in-process: the signature call);
- batches of 256 rows: rows per second.

The difference between the two rows is what the HTTP server costs on this machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import REPO, Section, table

import tunepipe
from tunepipe.execution.tuner_processes import LOOPBACK, free_port

BATCH = 256
PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"
ROWS: list[dict[str, object]] = []  # the shipped file's rows by input name (None: an empty cell), set by run()


def _publish_penguins(root: Path) -> Path:
    """Trains a small penguins model (5 epochs, default hyperparameters) and publishes it with export_model."""
    import keras
    import keras_tuner

    from tunepipe import artifacts
    from tunepipe.config import SearchSpace, SplitConfig
    from tunepipe.data.features import model_inputs, targets
    from tunepipe.data.ingest import run_ingest
    from tunepipe.data.preprocess import run_preprocess
    from tunepipe.data.split import Split
    from tunepipe.modelling.model import TabularHyperModel
    from tunepipe.publishing.export import export_model

    run_ingest(str(PENGUINS), "species", "auto", root / "cleaned")
    dirs = {name: root / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    spec = run_preprocess(root / "cleaned", SplitConfig(), 0, {**dirs, "spec": root / "spec"})
    train = Split.open(dirs[artifacts.TRAIN]).frame()
    keras.utils.set_random_seed(0)
    hypermodel, hp = TabularHyperModel(spec, SearchSpace()), keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=5, verbose=0)
    card = {"task": spec.task, "label": spec.label, "classes": spec.classes, "metrics": {}}
    test = Split.open(dirs[artifacts.TEST]).frame()
    return Path(export_model(model, spec, str(root / "models"), "penguins", card, test)
                .location)


def _load_rows(folder: Path) -> None:
    import json

    import pandas as pd

    from tunepipe.publishing import layout

    inputs = json.loads((folder / layout.MODEL_CARD).read_text())["signature"]["inputs"]
    frame = pd.read_csv(PENGUINS)
    ROWS[:] = [{name: (None if pd.isna(record[spec["column"]]) else record[spec["column"]])
                for name, spec in inputs.items()} for record in frame.to_dict("records")]


def _rows(count: int, seed: int) -> list[dict[str, object]]:
    picked = np.random.default_rng(seed).integers(0, len(ROWS), count)
    return [ROWS[index] for index in picked]


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    return float(np.percentile(seconds, 50) * 1000), float(np.percentile(seconds, 99) * 1000)


def _start(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    command = [sys.executable, "-m", "pipelines.cli", "serve", "--export-root", str(root), "--model-name", "penguins",
               "--host", LOOPBACK, "--port", str(port)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO)]), "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://{LOOPBACK}:{port}/v1/models/penguins"
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            if requests.get(url, timeout=5).status_code == 200:
                return process, url
        except requests.ConnectionError:
            pass
        time.sleep(0.3)
    process.kill()
    process.wait()
    raise RuntimeError("tunepipe serve did not become ready in 180 s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Ends the server before the section returns, so that it never runs into the next section."""
    process.terminate()
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def _http(url: str, singles: int, batches: int) -> tuple[float, float, float]:
    with requests.Session() as session:
        for row in _rows(20, 1):  # warm the connection and the server
            session.post(f"{url}:predict", json={"instances": [row]}, timeout=30).raise_for_status()
        latencies = []
        for row in _rows(singles, 2):
            started = time.perf_counter()
            session.post(f"{url}:predict", json={"instances": [row]}, timeout=30).raise_for_status()
            latencies.append(time.perf_counter() - started)
        bodies = [{"instances": _rows(BATCH, 3 + index)} for index in range(batches)]
        started = time.perf_counter()
        for body in bodies:
            session.post(f"{url}:predict", json=body, timeout=60).raise_for_status()
        rate = BATCH * batches / (time.perf_counter() - started)
    return (*_percentiles(latencies), rate)


def _value(value: Any, text: bool) -> object:
    """A row's cell as the signature takes it: empty cells are "" (text) or NaN (numbers)."""
    if value is None:
        return "" if text else float("nan")
    return str(value) if text else float(value)


def _in_process(folder: Path, singles: int, batches: int) -> tuple[float, float, float]:
    import tensorflow as tf

    function = tf.saved_model.load(str(folder)).signatures["serving_default"]

    dtypes = {name: spec.dtype for name, spec in function.structured_input_signature[1].items()}

    def call(rows: list[dict[str, object]]) -> None:
        function(**{name: tf.constant([_value(row[name], dtype == tf.string) for row in rows], dtype)
                    for name, dtype in dtypes.items()})

    for row in _rows(20, 1):
        call([row])
    latencies = []
    for row in _rows(singles, 2):
        started = time.perf_counter()
        call([row])
        latencies.append(time.perf_counter() - started)
    bodies = [_rows(BATCH, 3 + index) for index in range(batches)]
    started = time.perf_counter()
    for rows in bodies:
        call(rows)
    return (*_percentiles(latencies), BATCH * batches / (time.perf_counter() - started))


def run(quick: bool) -> Section:
    singles, batches = (200, 20) if quick else (1000, 100)
    with tempfile.TemporaryDirectory(prefix="bench-serving-") as temporary:
        root = Path(temporary)
        folder = _publish_penguins(root)
        _load_rows(folder)
        process, url = _start(root / "models")
        try:
            http = _http(url, singles, batches)
        finally:
            _stop(process)
        local = _in_process(folder, singles, batches)
    rows = [[path, f"{p50:.2f}", f"{p99:.2f}", f"{rate:,.0f}"] for path, (p50, p99, rate) in (
        ("HTTP (tunepipe serve, KServe v1)", http), ("in-process (SavedModel signature)", local))]
    body = (f"A penguins model published by the pipeline's export. {singles} one-row requests one after another, "
            f"then {batches} requests of {BATCH} rows (the shipped file's rows, empty cells included), on loopback "
            "with one client; the same SavedModel called in-process with the same rows.\n\n"
            + table(["path", "one row p50 (ms)", "one row p99 (ms)", f"rows/s at batch {BATCH}"], rows)
            + f"\n\nHTTP costs {http[0] - local[0]:.2f} ms per one-row request at the median; at batch {BATCH} "
            f"it serves {http[2] / local[2]:.0%} of the in-process rate.")
    return Section("Serving: tunepipe serve over HTTP against the SavedModel in-process",
                   f".venv/bin/python bench/run_all.py --only serving{' --quick' if quick else ''}", body)


if __name__ == "__main__":
    print(run("--quick" in sys.argv).body)
