"""The tuner's pipeline behaviour is a mixin over any Keras Tuner algorithm, and Keras Tuner's
state writer is replaced only when a tuner is built, never by an import."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import keras_tuner
import numpy as np
import pytest
from keras_tuner.src import utils as kt_utils

from tunepipe.config import IntRange, SearchSpace, TuningConfig
from tunepipe.data.features import NumericFeature, PreprocessingSpec
from tunepipe.modelling import tune
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.modelling.tune import (
    TUNER_CLASSES,
    PipelineHyperband,
    PipelineTunerMixin,
    build_tuner,
    install_state_writer,
    save_state_json,
    search_callbacks,
)

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
SPEC = PreprocessingSpec("classification", "y", [NumericFeature("a", "a", 0.0, 1.0)], classes=["neg", "pos"])
# A learning rate of 10^12 makes every fit's loss NaN at once; units vary so that the trials differ.
DIVERGING = SearchSpace(
    hidden_layers=1, units=IntRange(min=4, max=16, step=4), activation=["relu"], dropout=0.0, optimizer=["sgd"],
    learning_rate=1e12, batch_size=[16],
)


class PipelineRandomSearch(PipelineTunerMixin, keras_tuner.RandomSearch):
    """A second algorithm: one class, as a new entry of TUNER_CLASSES would be."""


def _data(rows: int, seed: int) -> tuple[dict[str, np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(rows, 1)).astype(np.float32)
    return {"a": a}, (a[:, 0] > 0).astype(np.int32)


def test_hyperband_is_the_mixin_over_keras_tuner_hyperband_in_the_table() -> None:
    assert TUNER_CLASSES["hyperband"] is PipelineHyperband
    assert PipelineHyperband.__mro__[1:3] == (PipelineTunerMixin, keras_tuner.Hyperband)


def test_a_second_algorithm_built_from_the_mixin_fails_diverging_trials_alone(tmp_path: Path) -> None:
    tuner = PipelineRandomSearch(
        hypermodel=TabularHyperModel(SPEC, DIVERGING), objective=keras_tuner.Objective("val_loss", "min"),
        max_trials=2, max_consecutive_failed_trials=3, seed=0, directory=str(tmp_path), project_name="random",
    )
    config = TuningConfig(max_epochs=2, factor=3, patience=1)
    tuner.search(*_data(64, 0), validation_data=_data(32, 1), epochs=2, callbacks=search_callbacks(config), verbose=0)
    trials = list(tuner.oracle.trials.values())
    assert [trial.status for trial in trials] == ["FAILED"] * len(trials) and trials
    assert len(tuner.failure_causes) == len(trials)
    assert all("loss at epoch 1 (learning_rate 1000000000000.0)" in cause for cause in tuner.failure_causes)


def test_importing_the_tuning_module_leaves_keras_tuner_writer_untouched() -> None:
    code = """
        from keras_tuner.src import utils
        original = utils.save_json
        import tunepipe.modelling.tune
        print(utils.save_json is original)
    """
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                            cwd=ROOT, timeout=300, check=True)
    assert result.stdout.strip().splitlines()[-1] == "True"


def test_building_a_tuner_installs_the_whole_file_writer_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(kt_utils, "save_json", tune._keras_tuner_save_json)  # as Keras Tuner ships it
    build_tuner(TabularHyperModel(SPEC, DIVERGING), TuningConfig(max_epochs=2, factor=3), 0, tmp_path)
    assert kt_utils.save_json is save_state_json
    install_state_writer()  # again: still one layer over Keras Tuner's own writer
    assert kt_utils.save_json is save_state_json
    assert tune._keras_tuner_save_json is not save_state_json
    save_state_json(str(tmp_path / "state.json"), {"a": 1})
    assert (tmp_path / "state.json").read_text() == '{"a": 1}'
