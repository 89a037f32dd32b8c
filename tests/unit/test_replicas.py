"""Final training on every device of a node: MirroredStrategy, the batch and learning-rate rules.

The two-device runs split this machine's CPU into two logical devices (``training.placement``
``{where: node, workers: 2}``),
in a fresh process per run (``tests/replicas_child.py``): the same strategy, scaling and train step a
node with two GPUs runs, on CPU. Only :func:`choose_replicas`' reading of the GPU list is faked
(no GPU here).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
from penguin_splits import penguin_splits, write_best

import tunepipe
from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, TrainingConfig
from tunepipe.data.features import model_inputs, targets
from tunepipe.data.split import Split
from tunepipe.errors import TunepipeError
from tunepipe.evaluation.blessing import compare_with_champion
from tunepipe.evaluation.bootstrap import paired_difference
from tunepipe.evaluation.metrics import ClassificationScores
from tunepipe.execution import replicas as replicas_module
from tunepipe.execution.replicas import Replicas, choose_replicas
from tunepipe.modelling.scaling import learning_rate_factor, scaled_for_replicas
from tunepipe.reports.modelcard import _trained_model_lines

pytestmark = pytest.mark.unit

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"
CHILD = Path(__file__).parents[1] / "replicas_child.py"
SPACE = SearchSpace(
    hidden_layers=IntRange(min=1, max=1), units=IntRange(min=16, max=16), activation=["relu"],
    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2), batch_size=[16],
    optimizer=["adam"],
)
TRAINING = TrainingConfig(max_epochs=30, patience=5, lr_patience=3)


def _tuned(batch_size: int = 16, learning_rate: float = 1e-2, optimizer: str = "adam") -> keras_tuner.HyperParameters:
    hp = keras_tuner.HyperParameters()
    hp.Fixed("batch_size", batch_size)
    hp.Fixed("learning_rate", learning_rate)
    hp.Fixed("optimizer", optimizer)
    hp.Fixed("units", 32)
    return hp


def test_the_learning_rate_grows_by_the_square_root_rule_for_adaptive_optimizers_and_linearly_for_sgd() -> None:
    assert learning_rate_factor("adam", 4) == pytest.approx(2.0)
    assert learning_rate_factor("rmsprop", 2) == pytest.approx(math.sqrt(2))
    assert learning_rate_factor("sgd", 4) == pytest.approx(4.0)


def test_scaling_multiplies_the_batch_and_keeps_the_architecture() -> None:
    tuned = _tuned()
    scaled = scaled_for_replicas(tuned, 4)
    assert scaled.get("batch_size") == 64 and scaled.get("learning_rate") == pytest.approx(2e-2)
    assert scaled.get("units") == 32 and scaled.get("optimizer") == "adam"
    assert tuned.get("batch_size") == 16 and tuned.get("learning_rate") == 1e-2  # the tuned values untouched
    sgd = scaled_for_replicas(_tuned(optimizer="sgd"), 2)
    assert sgd.get("batch_size") == 32 and sgd.get("learning_rate") == pytest.approx(2e-2)
    assert scaled_for_replicas(tuned, 1) is tuned


def test_auto_takes_every_gpu_and_refuses_more_than_the_step_sees(monkeypatch) -> None:
    import tensorflow as tf

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["gpu0", "gpu1"] if kind == "GPU" else [])
    assert choose_replicas(0) == Replicas(("/gpu:0", "/gpu:1"), "gpu")
    assert choose_replicas(1) == Replicas()
    with pytest.raises(TunepipeError, match="sees only 2 GPU"):
        choose_replicas(3)


def test_one_device_without_gpus_unless_replicas_are_asked_for() -> None:
    assert choose_replicas(0) == Replicas() and choose_replicas(1).count == 1


def test_a_cpu_split_is_refused_once_tensorflow_runs_with_another(monkeypatch) -> None:
    import tensorflow as tf

    tf.constant(1.0)  # the runtime has started in this process
    have = len(tf.config.list_logical_devices("CPU"))
    with pytest.raises(TunepipeError, match="already started"):
        choose_replicas(have + 1)


def test_replicas_need_the_tensorflow_backend(monkeypatch) -> None:
    monkeypatch.setattr(replicas_module.keras.config, "backend", lambda: "jax")
    with pytest.raises(TunepipeError, match="TensorFlow backend, not jax"):
        choose_replicas(2)
    assert choose_replicas(0) == Replicas()


def test_the_model_card_says_how_final_training_was_spread() -> None:
    trained = {"kind": "single", "members": 1, "epochs": 12, "rows": 300, "training_devices": {
        "replicas": 2, "devices": "gpu", "global_batch": 64, "batch_per_replica": 32,
        "learning_rate": 1.41e-3, "tuned_learning_rate": 1e-3}}
    text = " ".join(_trained_model_lines(trained))
    assert "2 GPU replicas" in text and "global batch 64 (32 per replica)" in text and "tuned 0.001" in text
    one = {**trained, "training_devices": {**trained["training_devices"], "replicas": 1}}
    assert "replicas" not in " ".join(_trained_model_lines(one))


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """Penguins ingested and split, SPACE's one configuration as the best hyperparameters."""
    root = tmp_path_factory.mktemp("replicas")
    penguin_splits(root)
    write_best(root, SPACE)
    (root / "space.json").write_text(SPACE.model_dump_json())
    (root / "training.json").write_text(TRAINING.model_dump_json())
    return root


def _train_in_child(prepared: Path, out: Path, replicas: int, seed: int = 0) -> tuple[ClassificationScores, dict]:
    """Runs the train step in a fresh process; the test split's scores and the history's model record."""
    done = subprocess.run([sys.executable, str(CHILD), str(prepared), str(out), str(replicas), str(seed)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    from tunepipe.data.preprocess import read_spec

    spec, test = read_spec(prepared / "spec"), Split.open(prepared / artifacts.TEST).frame()
    model = keras.models.load_model(out / "model" / artifacts.MODEL_FILE)
    probabilities = np.asarray(model.predict(model_inputs(test, spec), verbose=0))
    history = json.loads((out / "history" / artifacts.HISTORY_FILE).read_text())
    return ClassificationScores(targets(test, spec), probabilities), history[artifacts.HISTORY_MODEL]


def test_two_replicas_train_as_well_as_one_device(prepared, tmp_path) -> None:
    one, one_record = _train_in_child(prepared, tmp_path / "one", 1)
    two, two_record = _train_in_child(prepared, tmp_path / "two", 2)
    assert one_record["training_devices"]["replicas"] == 1
    assert two_record["training_devices"] == {  # what the trained model's own strategy reported
        "replicas": 2, "devices": "cpu", "global_batch": 32, "batch_per_replica": 16,
        "learning_rate": pytest.approx(1e-2 * math.sqrt(2)), "tuned_learning_rate": pytest.approx(1e-2)}
    one_metrics, two_metrics = one.metrics(), two.metrics()
    assert one_metrics["accuracy"] >= 0.9 and two_metrics["accuracy"] >= 0.9, (one_metrics, two_metrics)
    for candidate, champion in ((two, one), (one, two)):  # within noise: neither would refuse the other
        paired = paired_difference(candidate, champion, "accuracy", seed=0)
        decision = compare_with_champion(candidate.metrics(), champion.metrics(), paired, 1, 0.0)
        assert decision.passed, paired


def test_the_train_step_gets_its_devices_from_the_placement(monkeypatch) -> None:
    """auto and node without a count: every GPU (two here); step: one device; node N: N of them."""
    import tensorflow as tf

    from tunepipe.config import Placement
    from tunepipe.execution.placement import training_devices
    from tunepipe.execution.training import OnDevices, training_runner

    monkeypatch.setattr(tf.config, "list_physical_devices", lambda kind=None: ["gpu0", "gpu1"] if kind == "GPU" else [])
    two = Replicas(("/gpu:0", "/gpu:1"), "gpu")
    for placement, requested, devices in [(Placement(), 0, two), (Placement(where="node"), 0, two),
                                          (Placement(where="step"), 1, Replicas()),
                                          (Placement(where="node", workers=2), 2, two)]:
        assert training_devices(placement) == requested
        assert training_runner(TrainingConfig(placement=placement)) == OnDevices(devices)
