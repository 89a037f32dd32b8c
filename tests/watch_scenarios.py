"""The watcher's exactly-once drill, shared by the cluster tier (local records) and the gcs tier
(records in the GCS emulator): snapshots uploaded file by file in a random order, watcher
processes started between the uploads and SIGKILLed at random points of the submit path, then
watchers until every claim is settled. Every complete snapshot must have exactly one run on the
(recording) fake Kubeflow Pipelines server, and no run may start before its snapshot's marker."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from watch_child import POINTS
from watch_helpers import penguin_rows

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
PARTS = 2


@dataclass
class Drill:
    """One randomized drill; ``write(relative name, text)`` puts a file under the watched location."""

    location: str
    write: Callable[[str, str], None]
    kfp: object  # the FakeKfp server
    config: Path
    env: dict[str, str]
    lease: float = 2.0
    kills: Counter = field(default_factory=Counter)
    polls: int = 0

    def watch(self, point: str = "none", *extra: str, wait: bool = True) -> subprocess.Popen:
        command = [sys.executable, str(TESTS / "watch_child.py"), point, "watch", self.location, "--once",
                   "--host", self.kfp.url, "--config", str(self.config), "--lease", str(self.lease), *extra]
        process = subprocess.Popen(command, cwd=ROOT, env=self.env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True)
        if wait:
            output, _ = process.communicate(timeout=120)
            self.polls += 1
            if process.returncode == -9:
                self.kills[point] += 1
            else:
                assert process.returncode == 0, output
        return process

    def runs_by_snapshot(self) -> Counter:
        return Counter(run["runtime_config"]["parameters"]["data_uri"] for run in self.kfp.runs.values())


def environment(**extra: str) -> dict[str, str]:
    """The child's environment: this one, the repository on the path, no KFP settings of the machine."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("KF_PIPELINES")}
    return {**env, "PYTHONPATH": f"{ROOT}{os.pathsep}{TESTS}", **extra}


def run_drill(drill: Drill, seed: int, snapshots: int = 3) -> None:
    """Uploads ``snapshots`` snapshots in a random interleaving with watcher polls (random kill
    points), checks after each poll that only marked snapshots have runs, then settles."""
    rng = random.Random(seed)
    pending = {f"snap-{index}": [f"part-{part}.csv" for part in range(PARTS)] + ["_SUCCESS"]
               for index in range(snapshots)}
    marked: set[str] = set()
    while pending:
        name = rng.choice(sorted(pending))
        file = pending[name].pop(0)
        drill.write(f"{name}/{file}", "" if file == "_SUCCESS" else penguin_rows(rng.randrange(15)))
        if file == "_SUCCESS":
            marked.add(f"{drill.location}/{name}")
        if not pending[name]:
            del pending[name]
        if rng.random() < 0.7:
            drill.watch(rng.choice([*POINTS, "none"]))
            started = set(drill.runs_by_snapshot())
            assert started <= marked, f"a run started before its snapshot was complete: {started - marked}"
    settle(drill, marked)


def settle(drill: Drill, marked: set[str]) -> None:
    """Clean watchers (after the lease, so dead claims can be taken over) until every marked snapshot has its run."""
    for _ in range(6):
        drill.watch()
        if set(drill.runs_by_snapshot()) == marked:
            break
        time.sleep(drill.lease + 0.2)
    counts = drill.runs_by_snapshot()
    assert set(counts) == marked and set(counts.values()) == {1}, f"runs per snapshot: {dict(counts)}"


def two_at_once(drill: Drill, snapshots: int = 4) -> None:
    """Two watchers polling the same location at the same time, several rounds: one run per snapshot."""
    marked = set()
    for index in range(snapshots):
        for part in range(PARTS):
            drill.write(f"two-{index}/part-{part}.csv", penguin_rows(index * 3 + part))
        drill.write(f"two-{index}/_SUCCESS", "")
        marked.add(f"{drill.location}/two-{index}")
        pair = [drill.watch("none", "--id", name, wait=False) for name in ("left", "right")]
        for process in pair:
            output, _ = process.communicate(timeout=120)
            assert process.returncode == 0, output
    settle(drill, marked)


def every_point(drill: Drill) -> None:
    """One snapshot per kill point: a watcher killed there, then clean watchers; one run each, none lost."""
    marked = set()
    for index, point in enumerate(POINTS):
        drill.write(f"point-{index}/part-0.csv", penguin_rows(index))
        drill.write(f"point-{index}/_SUCCESS", "")
        marked.add(f"{drill.location}/point-{index}")
        drill.watch(point)
        assert drill.kills[point] == 1, f"the watcher was not killed at {point}"
        assert set(drill.runs_by_snapshot()) <= marked
    settle(drill, marked)
