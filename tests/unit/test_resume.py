"""Preemption: a killed tune or train step, run again, finishes without repeating finished work.

Each test runs the step's core in a subprocess, kills it with SIGKILL (what a preempted spot
node amounts to) at a known point, runs it again to completion and counts what ran.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tunepipe.modelling.hyperband import hyperband_budget

pytestmark = pytest.mark.local  # subprocesses that import TensorFlow twice each: tens of seconds

MAX_EPOCHS, FACTOR = 3, 3  # 6 trials, 11 epochs
KILL_AFTER_COMPLETED = 2

TUNE_SCRIPT = """
import logging, sys
import numpy as np
from pathlib import Path
from tunepipe.config import FloatRange, IntRange, SearchSpace, TuningConfig
from tunepipe.data.features import NumericFeature, PreprocessingSpec
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.modelling.tune import run_tuning
from tunepipe.storage.tuner_state import FolderSync

logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stdout, force=True)
work_dir, remote = sys.argv[1], sys.argv[2]
def data(rows, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(size=(2, rows, 1)).astype(np.float32)
    return {"a": a, "b": b}, ((a + b)[:, 0] > 0).astype(np.int32)
spec = PreprocessingSpec("classification", "y", [NumericFeature(n, n, 0.0, 1.0) for n in "ab"], classes=["0", "1"])
space = SearchSpace(hidden_layers=1, units=IntRange(min=4, max=32, step=4), activation=["relu", "tanh"],
                    dropout=0.0, learning_rate=FloatRange(min=1e-3, max=3e-2, sampling="log"), batch_size=[16, 32])
config = TuningConfig(max_epochs=int(sys.argv[3]), factor=int(sys.argv[4]), patience=2)
result = run_tuning(TabularHyperModel(spec, space), data(96, 0), data(48, 1), config, 0, work_dir, FolderSync(remote))
print("BEST", result.best_score, flush=True)
"""


def _completed(remote: Path) -> dict[str, str]:
    """trial id -> trial.json text, for every completed trial in the mirror."""
    found = {}
    for path in remote.glob("hyperband/trial_*/trial.json"):
        try:
            trial = json.loads(path.read_text())
        except (OSError, ValueError):
            continue  # never half-written in the mirror, but be safe while the writer runs
        if trial["status"] == "COMPLETED":
            found[trial["trial_id"]] = path.read_text()
    return found


def _started(output: str) -> list[str]:
    return [line.split()[2] for line in output.splitlines() if line.startswith("tune: trial ") and "started" in line]


def test_killed_tuning_resumes_without_repeating_completed_trials(tmp_path: Path) -> None:
    remote = tmp_path / "object_store"
    first = subprocess.Popen(
        [sys.executable, "-c", TUNE_SCRIPT, str(tmp_path / "pod1"), str(remote), str(MAX_EPOCHS), str(FACTOR)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    deadline = time.monotonic() + 240
    while len(_completed(remote)) < KILL_AFTER_COMPLETED:
        assert first.poll() is None, "the first run ended before it could be killed"
        assert time.monotonic() < deadline, "no trials completed in time"
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first_output = first.communicate()[0]
    before_kill = _completed(remote)
    assert first.returncode == -signal.SIGKILL
    assert len(before_kill) < hyperband_budget(MAX_EPOCHS, FACTOR).trials

    # a fresh "pod": empty working folder, state only in the mirror
    second = subprocess.run(
        [sys.executable, "-c", TUNE_SCRIPT, str(tmp_path / "pod2"), str(remote), str(MAX_EPOCHS), str(FACTOR)],
        capture_output=True, text=True, timeout=300,
    )
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "BEST" in second.stdout
    rerun = _started(second.stdout)
    assert not set(rerun) & set(before_kill), f"completed trials ran again: {set(rerun) & set(before_kill)}"
    assert len(rerun) == len(set(rerun)), "a trial started twice in the second run"
    after = _completed(remote)
    assert len(after) == hyperband_budget(MAX_EPOCHS, FACTOR).trials  # the whole schedule, once
    assert {trial_id: after[trial_id] for trial_id in before_kill} == before_kill  # untouched
    assert set(_started(first_output)) | set(rerun) == set(after)
    print(f"resume: killed after {len(before_kill)} completed trials; the re-run started {len(rerun)} "
          f"({sorted(rerun)}); {len(after)} distinct trials in all")


TRAIN_SCRIPT = """
import sys, time
import keras, keras_tuner
import numpy as np
from tunepipe.config import SearchSpace, TrainingConfig
from tunepipe.data.features import NumericFeature, PreprocessingSpec
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.modelling.train import train_final

class Announce(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        print("EPOCH", epoch + 1, flush=True)
        time.sleep(0.5)  # time for the test to kill us after this epoch's backup

class SlowHyperModel(TabularHyperModel):
    def fit(self, hp, model, *args, callbacks=(), **kwargs):
        return super().fit(hp, model, *args, callbacks=[*callbacks, Announce()], **kwargs)

rng = np.random.default_rng(0)
x = {"a": rng.normal(size=(64, 1)).astype(np.float32)}
y = (x["a"][:, 0] > 0).astype(np.int32)
spec = PreprocessingSpec("classification", "y", [NumericFeature("a", "a", 0.0, 1.0)], classes=["0", "1"])
space = SearchSpace(hidden_layers=1, units=8, activation=["relu"], dropout=0.0, l1=0.0, l2=1e-6,
                    optimizer=["adam"], learning_rate=1e-3, batch_size=[16])
hp = keras_tuner.HyperParameters()
hypermodel = SlowHyperModel(spec, space)
hypermodel.build(hp)
config = TrainingConfig(max_epochs=%d, patience=50, lr_schedule="none")
result = train_final(hypermodel, hp, (x, y), (x, y), config, 0, sys.argv[1])
print("RESULT", result.resumed_from_epoch, len(result.history["loss"]), result.best_epoch, flush=True)
"""
TRAIN_EPOCHS, KILL_AT_EPOCH = 6, 3


def test_killed_training_resumes_from_its_last_finished_epoch(tmp_path: Path) -> None:
    script = TRAIN_SCRIPT % TRAIN_EPOCHS
    first = subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    assert first.stdout is not None
    seen = []
    for line in first.stdout:
        if line.startswith("EPOCH"):
            seen.append(int(line.split()[1]))
            if seen[-1] == KILL_AT_EPOCH:
                first.send_signal(signal.SIGKILL)
                break
    first.wait(timeout=60)
    assert seen == list(range(1, KILL_AT_EPOCH + 1)) and first.returncode == -signal.SIGKILL

    second = subprocess.run([sys.executable, "-c", script, str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    epochs = [int(line.split()[1]) for line in second.stdout.splitlines() if line.startswith("EPOCH")]
    assert epochs == list(range(KILL_AT_EPOCH + 1, TRAIN_EPOCHS + 1))  # nothing finished is trained again
    result_line = next(line for line in second.stdout.splitlines() if line.startswith("RESULT"))
    resumed, history_length, best_epoch = (int(value) for value in result_line.split()[1:])
    assert resumed == KILL_AT_EPOCH
    assert history_length == TRAIN_EPOCHS  # the history covers the epochs before the kill too
    assert 1 <= best_epoch <= TRAIN_EPOCHS
