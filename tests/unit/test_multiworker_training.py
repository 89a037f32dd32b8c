"""Two JAX worker processes on loopback train the penguins model as well as one process does.

The very module the TrainJob's pods run (``python -m tunepipe.execution.jax_worker``) is started
as 2 processes joined by ``jax.distributed`` (CPU, gloo), given the arguments the TrainJob expands
from Kubeflow Trainer's JAX variables, and as 1 process; both read the same staged folders. Needs
JAX (the ``dev`` extra installs it); skipped without it only outside CI.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest
from penguin_splits import penguin_splits, write_best

from tunepipe import artifacts
from tunepipe.config import SearchSpace, TrainingConfig
from tunepipe.config.training import FloatRange, IntRange
from tunepipe.data.features import model_inputs, targets
from tunepipe.data.preprocess import read_spec
from tunepipe.data.split import Split
from tunepipe.evaluation.blessing import compare_with_champion
from tunepipe.evaluation.bootstrap import paired_difference
from tunepipe.evaluation.metrics import ClassificationScores
from tunepipe.execution import jax_worker

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(importlib.util.find_spec("jax") is None and not os.environ.get("CI"),
                       reason="JAX is not installed (pip install -e '.[dev]' brings it); CI runs this"),
]
SPACE = SearchSpace(
    hidden_layers=IntRange(min=1, max=1), units=IntRange(min=16, max=16), activation=["relu"],
    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2), batch_size=[16],
    optimizer=["adam"],
)
TRAINING = TrainingConfig(max_epochs=30, patience=5, lr_patience=3)
TIMEOUT_S = 240


@pytest.fixture(scope="module")
def staged(tmp_path_factory) -> Path:
    """The penguins split and SPACE's one configuration, staged as the train step stages them."""
    root = tmp_path_factory.mktemp("multiworker")
    penguin_splits(root)
    write_best(root, SPACE)
    inputs = root / "stage" / jax_worker.INPUTS
    for source, name in (("train", artifacts.TRAIN), ("validation", artifacts.VALIDATION),
                         ("spec", artifacts.INPUTS_SPEC_DIR), ("best", jax_worker.BEST)):
        shutil.copytree(root / source, inputs / name)
    return root


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _run_workers(location: Path, processes: int) -> list[subprocess.CompletedProcess]:
    """Starts ``processes`` workers with the JAX runtime's environment; waits for all of them."""
    shutil.copytree(location.parent / "stage" / jax_worker.INPUTS, location / jax_worker.INPUTS)
    coordinator = f"127.0.0.1:{_free_port()}"
    command = [sys.executable, "-m", jax_worker.MODULE, "--location", str(location), "--training",
               TRAINING.model_dump_json(), "--search-space", SPACE.model_dump_json(), "--seed", "0"]
    children = []
    for index in range(processes):  # the arguments Kubernetes expands from the JAX runtime's variables
        engine = ["--coordinator", coordinator, "--processes", str(processes), "--process-id", str(index)]
        children.append(subprocess.Popen([*command, *engine], env={**os.environ, "KERAS_BACKEND": "jax"},
                                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True))
    try:
        return [subprocess.CompletedProcess(c.args, c.wait(TIMEOUT_S), c.communicate()[0], "") for c in children]
    finally:
        for child in children:
            child.kill()


def _scores(location: Path, staged: Path) -> tuple[ClassificationScores, dict]:
    output = location / jax_worker.OUTPUT
    spec, test = read_spec(staged / "spec"), Split.open(staged / artifacts.TEST).frame()
    model = keras.models.load_model(output / artifacts.MODEL_FILE)  # loads on the TensorFlow backend too
    probabilities = np.asarray(model.predict(model_inputs(test, spec), verbose=0))
    return (ClassificationScores(targets(test, spec), probabilities),
            json.loads((output / artifacts.WORKERS_RESULT_FILE).read_text()))


def test_two_worker_processes_train_in_sync_and_as_well_as_one(staged) -> None:
    two_runs = _run_workers(staged / "two", 2)
    one_runs = _run_workers(staged / "one", 1)
    for run in (*two_runs, *one_runs):
        assert run.returncode == 0, run.stdout[-3000:]
    stops = {line for run in two_runs for line in run.stdout.splitlines() if "epochs, best epoch" in line}
    assert len({line.split(": ", 1)[-1].split(" of ")[-1] for line in stops}) == 1, stops  # same epochs, same best
    two, two_result = _scores(staged / "two", staged)
    one, one_result = _scores(staged / "one", staged)
    assert (two_result["processes"], two_result["devices"], two_result["global_batch"]) == (2, 2, 32)
    assert two_result["learning_rate"] == pytest.approx(1e-2 * np.sqrt(2))
    assert (one_result["processes"], one_result["global_batch"]) == (1, 16)
    assert two_result["train_rows_per_process"] == one_result["train_rows_per_process"] // 2
    one_metrics, two_metrics = one.metrics(), two.metrics()
    assert one_metrics["accuracy"] >= 0.9 and two_metrics["accuracy"] >= 0.9, (one_metrics, two_metrics)
    pairs = {"two vs one": (two, one), "one vs two": (one, two)}  # within noise: neither would refuse the other
    decisions = {name: compare_with_champion(a.metrics(), b.metrics(), paired_difference(a, b, "accuracy", seed=0),
                                             1, 0.0) for name, (a, b) in pairs.items()}
    assert all(decision.passed for decision in decisions.values()), decisions
    print(f"\ntwo processes: accuracy {two_metrics['accuracy']:.4f}; one process: {one_metrics['accuracy']:.4f}; "
          f"{paired_difference(two, one, 'accuracy', seed=0)}")
