"""Tuning on a sample: the stratified, seeded sample of a split, and the tune step's record of it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from penguin_splits import penguin_splits

from tunepipe import artifacts, tune_step
from tunepipe.config import Placement, SearchSpace, TuningConfig
from tunepipe.data.sampling import (
    STRATA_CLASSES,
    STRATA_DECILES,
    sample_arrays,
    strata_of,
    stratified_indices,
)
from tunepipe.modelling.problem import sample_key, tuner_location, tuning_problem
from tunepipe.reports.modelcard import _tuning_sample_lines

pytestmark = pytest.mark.unit


def test_each_class_keeps_its_share_and_a_rare_class_is_not_lost() -> None:
    labels = np.array([0] * 900 + [1] * 97 + [2] * 3)
    kept = stratified_indices(labels, 100, seed=0)
    assert len(kept) == 100 and len(np.unique(kept)) == 100 and np.all(np.diff(kept) > 0)
    counts = np.bincount(labels[kept], minlength=3)
    assert abs(counts[0] - 90) <= 1 and abs(counts[1] - 9.7) <= 1 and counts[2] >= 1


def test_the_same_seed_draws_the_same_rows_and_another_seed_others() -> None:
    labels = np.repeat([0, 1], 500)
    first, again = stratified_indices(labels, 50, seed=3), stratified_indices(labels, 50, seed=3)
    np.testing.assert_array_equal(first, again)
    assert not np.array_equal(first, stratified_indices(labels, 50, seed=4))


def test_no_sample_when_the_split_is_small_enough_or_sampling_is_off() -> None:
    labels = np.arange(10) % 2
    np.testing.assert_array_equal(stratified_indices(labels, 0, seed=0), np.arange(10))
    np.testing.assert_array_equal(stratified_indices(labels, 10, seed=0), np.arange(10))
    np.testing.assert_array_equal(stratified_indices(labels, 50, seed=0), np.arange(10))


def test_a_regression_label_is_sampled_evenly_across_its_deciles() -> None:
    values = np.random.default_rng(0).lognormal(size=10_000)  # skewed: a plain sample could miss the tail
    strata = strata_of(values, classification=False)
    assert len(np.unique(strata)) == 10
    kept = stratified_indices(strata, 1000, seed=1)
    assert np.all(np.abs(np.bincount(strata[kept]) - 100) <= 1)
    assert values[kept].max() > np.quantile(values, 0.9)


def test_sample_arrays_cuts_every_input_alike_and_says_what_it_did() -> None:
    inputs = {"a": np.arange(1000, dtype="float32").reshape(-1, 1), "b": np.arange(1000).reshape(-1, 1) * 2}
    targets = np.arange(1000) % 3
    (sampled, kept_targets), described = sample_arrays((inputs, targets), 90, seed=0, classification=True)
    assert described.to_dict() == {"rows": 1000, "kept": 90, "strata": STRATA_CLASSES}
    np.testing.assert_array_equal(sampled["b"], sampled["a"].astype(int) * 2)
    np.testing.assert_array_equal(kept_targets, sampled["a"].reshape(-1).astype(int) % 3)
    assert sample_arrays((inputs, targets.astype(float)), 90, 0, False)[1].strata == STRATA_DECILES


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    return penguin_splits(tmp_path_factory.mktemp("penguins"))


def test_every_process_of_a_search_builds_the_same_sample(folders) -> None:
    args = (folders[artifacts.TRAIN], folders[artifacts.VALIDATION], folders["spec"], SearchSpace(), 60, 5)
    first, again = tuning_problem(*args), tuning_problem(*args)
    assert len(first.train[1]) == 60 and first.sample["train"]["kept"] == 60
    assert first.sample["validation"]["kept"] == first.sample["validation"]["rows"]  # under 60 rows: all kept
    np.testing.assert_array_equal(first.train[1], again.train[1])
    for name, values in first.train[0].items():
        np.testing.assert_array_equal(values, again.train[0][name])


def test_the_tune_step_searches_on_the_sample_and_records_both_sizes(folders, tmp_path) -> None:
    space = SearchSpace.model_validate({"hidden_layers": 1, "units": 16, "activation": ["relu"], "dropout": 0.0,
                                        "l1": 0.0, "optimizer": ["adam"], "batch_size": [16]})
    tuning = TuningConfig(max_epochs=2, factor=2, patience=1, placement=Placement(where="step"), sample_rows=80)
    inputs = tune_step.Inputs(folders[artifacts.TRAIN], folders[artifacts.VALIDATION], folders["spec"], tuning, space,
                              0, model_name="penguins", data_fingerprint=folders["fingerprint"])
    summary = tune_step.run(inputs, tune_step.Outputs(tmp_path / "best", tmp_path / "trials")).metadata["trials"]
    recorded = json.loads((tmp_path / "best" / artifacts.TUNING_SAMPLE_FILE).read_text())
    assert summary[artifacts.META_TUNED_ROWS] == recorded["train"]["kept"] == 80
    assert recorded["train"]["rows"] > 200 and recorded["train"]["strata"] == STRATA_CLASSES
    line = " ".join(_tuning_sample_lines(recorded))
    assert f"a sample of 80 of the {recorded['train']['rows']} training rows" in line
    assert f"final training on all {recorded['train']['rows']}" in line


def test_the_default_samples_only_tables_larger_than_its_size() -> None:
    assert TuningConfig().sample_rows > 0 and TuningConfig(sample_rows=0).sample_rows == 0


def test_another_sample_is_another_search_and_every_row_keeps_the_key_it_had() -> None:
    def sample(kept: int) -> dict:
        return {"train": {"rows": 900, "kept": kept, "strata": STRATA_CLASSES},
                "validation": {"rows": 200, "kept": min(kept, 200), "strata": STRATA_CLASSES}}

    def location(key: str = "") -> str:
        return tuner_location(TuningConfig(), SearchSpace(), 0, "m", "sha256:" + "0" * 64, "/t", "problem", key)

    before = location()
    assert location(sample_key(sample(900))) == before
    cuts = {location(sample_key(sample(kept))) for kept in (100, 300)}
    assert len(cuts) == 2 and before not in cuts
