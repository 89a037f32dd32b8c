"""The tuner's pipeline behaviour is a mixin over any Keras Tuner algorithm, and its state files are
written whole through methods of the classes it subclasses (the tuner's and the oracle's ``save``),
never by replacing a Keras Tuner function."""

from __future__ import annotations

import json
from pathlib import Path

import keras_tuner
import numpy as np
import pytest

from tunepipe.config import IntRange, SearchSpace, TuningConfig
from tunepipe.data.features import NumericFeature, PreprocessingSpec
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.modelling.tune import (
    TUNER_CLASSES,
    PipelineHyperband,
    PipelineTunerMixin,
    WholeFileOracleMixin,
    build_tuner,
    search_callbacks,
)
from tunepipe.storage import tuner_state

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


def test_pipeline_hyperband_is_built_as_keras_tuner_hyperband_is_but_with_its_own_oracle(tmp_path: Path) -> None:
    """Guards the one thing PipelineHyperband replaces, keras_tuner.Hyperband.__init__: if a Keras Tuner
    release makes that do more than build the oracle, the two tuners differ here."""
    arguments = {"hypermodel": TabularHyperModel(SPEC, DIVERGING),
                 "objective": keras_tuner.Objective("val_loss", "min"), "max_epochs": 9, "factor": 3,
                 "hyperband_iterations": 2, "seed": 4, "max_consecutive_failed_trials": 5,
                 "project_name": "hyperband"}
    stock = keras_tuner.Hyperband(directory=str(tmp_path / "stock"), **arguments)
    ours = PipelineHyperband(directory=str(tmp_path / "ours"), **arguments)
    assert set(vars(ours)) == set(vars(stock))
    assert type(ours.oracle).__mro__[1:3] == (WholeFileOracleMixin, keras_tuner.oracles.HyperbandOracle)
    assert vars(ours.oracle).keys() == vars(stock.oracle).keys()
    assert ours.oracle.get_state() == stock.oracle.get_state()


def test_tuning_replaces_no_keras_tuner_function_and_imports_no_private_module(tmp_path: Path) -> None:
    from keras_tuner.src import utils as kt_utils  # Keras Tuner's own writer, which the tuner once swapped out

    shipped = kt_utils.save_json
    tuner = build_tuner(TabularHyperModel(SPEC, DIVERGING), TuningConfig(max_epochs=2, factor=3), 0, tmp_path)
    tuner.search(*_data(32, 0), validation_data=_data(16, 1), verbose=0)
    assert kt_utils.save_json is shipped
    source = (ROOT / "src" / "tunepipe" / "modelling" / "tune.py").read_text()
    assert "keras_tuner.src" not in source


def test_every_state_file_of_a_search_is_written_whole(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """oracle.json, tuner0.json and each trial.json go through the whole-file writer; a write that fails
    midway (as a kill would) leaves the file before it whole, and the search reloads from it."""
    written: list[str] = []
    real_write = tuner_state.atomic.write_text
    monkeypatch.setattr(tuner_state.atomic, "write_text", lambda path, text: (written.append(str(path)),
                                                                                real_write(path, text))[1])
    tuner = build_tuner(TabularHyperModel(SPEC, DIVERGING), TuningConfig(max_epochs=2, factor=3), 0, tmp_path)
    tuner.search(*_data(32, 0), validation_data=_data(16, 1), verbose=0)
    project = Path(tuner.project_dir)
    names = {str(Path(path).relative_to(project)) for path in written}
    trials = {str(path.relative_to(project)) for path in project.glob("trial_*/trial.json")}
    assert trials and names == {"oracle.json", "tuner0.json", *trials}
    assert all(isinstance(json.loads((project / name).read_text()), dict) for name in names)

    before = (project / "oracle.json").read_text()
    monkeypatch.setattr(tuner_state.atomic, "write_text", real_write)

    def killed_before_the_rename(*args: object) -> None:
        raise OSError("killed")

    with monkeypatch.context() as patched, pytest.raises(OSError, match="killed"):
        patched.setattr(tuner_state.atomic.os, "replace", killed_before_the_rename)
        tuner.oracle.save()
    assert (project / "oracle.json").read_text() == before and not list(project.glob(".tmp-*"))
    reloaded = build_tuner(TabularHyperModel(SPEC, DIVERGING), TuningConfig(max_epochs=2, factor=3), 0, tmp_path)
    assert reloaded.oracle.trials.keys() == tuner.oracle.trials.keys()
