"""Drill: the streamed steps run under a memory cap that the in-memory path exceeds (issue 18, item 2).

The same machinery as ``make bench``'s ``scale`` section (``bench/scale.py``, ``bench/memcap.py``), at
a small scale: a synthetic table of :data:`ROWS` rows as Parquet shards, each step in a process of
its own under a kernel-enforced cap (a memory cgroup here, as root; a watchdog elsewhere). The
in-memory ingest is killed by the cap; the streamed ingest, preprocess, tune and train finish under it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "bench"))

from inprocess import output_folder  # noqa: E402
from scale import FIT_CONFIG, _config, run_steps, write_table  # noqa: E402

pytestmark = pytest.mark.drills

ROWS = 1_000_000
CAP_MIB = 1280
STREAMED = ("fingerprint", "ingest", "preprocess", "tune", "train")


def test_streamed_steps_fit_under_a_cap_the_in_memory_ingest_exceeds(tmp_path: Path) -> None:
    sizes = write_table(tmp_path / "data", ROWS)
    assert sizes["memory_gib"] * 1024 < 2 * CAP_MIB  # small: it is the in-memory path's copies that exceed

    in_memory = run_steps(_config(tmp_path / "never.yaml", tmp_path / "data", FIT_CONFIG, "never"),
                          tmp_path / "never", ("fingerprint", "ingest"), CAP_MIB)
    assert in_memory["ingest"].returncode != 0 and in_memory["ingest"].killed_by_cap, in_memory["ingest"].output[-2000:]
    assert not (tmp_path / "never" / "ingest" / "cleaned_data").exists()  # nothing half-written

    streamed = run_steps(_config(tmp_path / "always.yaml", tmp_path / "data", FIT_CONFIG, "always"),
                         tmp_path / "always", STREAMED, CAP_MIB)
    for step in STREAMED:
        run = streamed[step]
        assert run.returncode == 0, f"{step} under {CAP_MIB} MiB ({run.enforcement}): {run.output[-2000:]}"
    shards = list((output_folder(tmp_path / "always", "preprocess", "train_data") / "shards").glob("*.parquet"))
    assert len(shards) > 1  # streamed, not one file
    assert (output_folder(tmp_path / "always", "train", "model") / "model.keras").exists()
