"""Serving latency and throughput: ``tunepipe serve`` over HTTP against the same SavedModel in-process.

One run publishes a tabular classifier with the serving contract's signature (tests/serving_models.py,
until the pipeline's export writes that contract: then this section serves a pipeline-published
version instead), starts ``tunepipe serve`` on loopback, and measures, in the same run:

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

import numpy as np
import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the contract-shaped test model

from common import REPO, Section, table
from serving_models import ISLANDS, publish

from tunepipe.modelling.distributed import LOOPBACK, free_port

BATCH = 256


def _rows(count: int, seed: int) -> list[dict[str, object]]:
    rng = np.random.default_rng(seed)
    return [{"bill_length_mm": float(rng.uniform(32, 60)), "island": str(rng.choice(ISLANDS))} for _ in range(count)]


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
    raise RuntimeError("tunepipe serve did not become ready in 180 s")


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


def _in_process(folder: Path, singles: int, batches: int) -> tuple[float, float, float]:
    import tensorflow as tf

    function = tf.saved_model.load(str(folder)).signatures["serving_default"]

    def call(rows: list[dict[str, object]]) -> None:
        function(bill_length_mm=tf.constant([row["bill_length_mm"] for row in rows], tf.float32),
                 island=tf.constant([row["island"] for row in rows]))

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
        (root / "penguins").mkdir()
        folder = publish(root / "penguins", 1)
        process, url = _start(root)
        try:
            http = _http(url, singles, batches)
        finally:
            process.terminate()
            process.wait(timeout=30)
        local = _in_process(folder, singles, batches)
    rows = [[path, f"{p50:.2f}", f"{p99:.2f}", f"{rate:,.0f}"] for path, (p50, p99, rate) in (
        ("HTTP (tunepipe serve, KServe v1)", http), ("in-process (SavedModel signature)", local))]
    body = (f"{singles} one-row requests one after another, then {batches} requests of {BATCH} rows, on loopback "
            "with one client; the same SavedModel called in-process with the same rows.\n\n"
            + table(["path", "one row p50 (ms)", "one row p99 (ms)", f"rows/s at batch {BATCH}"], rows)
            + f"\n\nHTTP costs {http[0] - local[0]:.2f} ms per one-row request at the median; at batch {BATCH} "
            f"it serves {http[2] / local[2]:.0%} of the in-process rate.")
    return Section("Serving: tunepipe serve over HTTP against the SavedModel in-process",
                   f".venv/bin/python bench/run_all.py --only serving{' --quick' if quick else ''}", body)


if __name__ == "__main__":
    print(run("--quick" in sys.argv).body)
