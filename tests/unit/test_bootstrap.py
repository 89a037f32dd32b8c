"""Bootstrap intervals of test metrics and the paired comparison the blessing decides from."""

from __future__ import annotations

from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest

from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, SplitConfig
from tunepipe.data.features import model_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess
from tunepipe.data.split import Split
from tunepipe.evaluation.blessing import compare_with_champion
from tunepipe.evaluation.bootstrap import (
    MIN_RESAMPLES,
    RESAMPLES,
    metric_intervals,
    paired_difference,
    resamples_for,
)
from tunepipe.evaluation.evaluate import evaluate_model
from tunepipe.evaluation.metrics import ClassificationScores, RegressionScores
from tunepipe.modelling.model import TabularHyperModel

pytestmark = pytest.mark.unit


def classification_case(rows: int, classes: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.integers(0, classes, rows), np.round(rng.dirichlet(np.ones(classes), rows), 2)


@pytest.mark.parametrize("classes", [2, 3])
def test_row_weights_score_exactly_like_the_rows_repeated(classes) -> None:
    """A bootstrap resample is scored through weights; they must mean "this row, this many times"."""
    y_true, probabilities = classification_case(60, classes, seed=classes)
    counts = np.random.default_rng(0).integers(0, 4, 60)
    repeated = np.repeat(np.arange(60), counts)
    weighted = ClassificationScores(y_true, probabilities).metrics(counts.astype(float))
    explicit = ClassificationScores(y_true[repeated], probabilities[repeated]).metrics()
    assert weighted == pytest.approx(explicit, abs=1e-12)
    values = np.random.default_rng(1).normal(3, 2, 60)
    values[:5] = 0.0  # MAPE leaves these out, weighted or not
    predictions = values + np.random.default_rng(2).normal(0, 1, 60)
    weighted = RegressionScores(values, predictions).metrics(counts.astype(float))
    assert weighted == pytest.approx(RegressionScores(values[repeated], predictions[repeated]).metrics(), abs=1e-12)


def test_intervals_hold_the_estimate_repeat_with_the_seed_and_narrow_with_more_rows() -> None:
    small, large = ClassificationScores(*classification_case(100, 3, 0)), ClassificationScores(
        *classification_case(2500, 3, 0))
    intervals = metric_intervals(small, seed=7)
    assert intervals == metric_intervals(small, seed=7)
    assert intervals != metric_intervals(small, seed=8)
    for name, value in small.metrics().items():
        low, high = intervals[name]
        assert low <= value <= high, name
    width = {name: high - low for name, (low, high) in intervals.items()}
    wide = {name: high - low for name, (low, high) in metric_intervals(large, seed=7).items()}
    # 25x the rows: about a fifth of the width
    assert wide["accuracy"] == pytest.approx(width["accuracy"] / 5, rel=0.35)
    assert all(wide[name] < width[name] for name in width)


def test_ninety_five_percent_intervals_cover_the_true_accuracy_about_95_percent_of_the_time() -> None:
    """200 test splits of 150 rows from a model that is right with probability 0.8."""
    rng = np.random.default_rng(3)
    covered = 0
    for trial in range(200):
        right = rng.random(150) < 0.8
        probabilities = np.where(right[:, None], [[0.1, 0.9]], [[0.9, 0.1]])
        low, high = metric_intervals(ClassificationScores(np.ones(150, int), probabilities), seed=trial)["accuracy"]
        covered += low <= 0.8 <= high
    assert 0.90 <= covered / 200 <= 0.99


def test_large_test_sets_get_fewer_resamples_within_bounds() -> None:
    assert resamples_for(52) == RESAMPLES and resamples_for(30_000) == RESAMPLES
    assert resamples_for(100_000) == 300
    assert resamples_for(10_000_000) == MIN_RESAMPLES


def test_a_paired_difference_is_zero_for_identical_predictions_and_flips_with_the_order() -> None:
    first, second = ClassificationScores(*classification_case(80, 2, 0)), ClassificationScores(
        *classification_case(80, 2, 1))
    assert paired_difference(first, first, "accuracy", 0) == paired_difference(first, first, "accuracy", 0)
    same = paired_difference(first, first, "accuracy", 0)
    assert (same.difference, same.low, same.high) == (0.0, 0.0, 0.0)
    forward, backward = paired_difference(first, second, "accuracy", 0), paired_difference(second, first, "accuracy", 0)
    assert forward.difference == -backward.difference
    assert forward.low == pytest.approx(-backward.high) and forward.high == pytest.approx(-backward.low)
    with pytest.raises(ValueError, match="same rows"):
        paired_difference(first, ClassificationScores(*classification_case(81, 2, 0)), "accuracy", 0)


SPACE = SearchSpace(
    hidden_layers=IntRange(min=1, max=1), units=IntRange(min=16, max=16), activation=["relu"],
    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2), batch_size=[32],
)


def noisy_table(path: Path, rows: int = 1000) -> Path:
    """Two overlapping classes: models of different seeds disagree on the borderline rows."""
    rng = np.random.default_rng(7)
    x = rng.normal(size=(rows, 3))
    logit = 1.5 * x[:, 0] - x[:, 1] + 0.5 * x[:, 0] * x[:, 2]
    label = np.where(rng.random(rows) < 1 / (1 + np.exp(-logit)), "yes", "no")
    pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "label": label}).to_csv(path, index=False)
    return path


def test_models_that_differ_only_by_seed_never_refuse_each_other(tmp_path) -> None:
    """Six trainings of one configuration on one split, every ordered pair compared as challenger
    and champion: the default rule refuses none, though their accuracies differ by a few rows;
    the stricter rule refuses a candidate against itself."""
    run_ingest(str(noisy_table(tmp_path / "noisy.csv")), "label", "auto", tmp_path / "cleaned")
    dirs = {name: tmp_path / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    spec = run_preprocess(tmp_path / "cleaned", SplitConfig(), 0, {**dirs, "spec": tmp_path / "spec"})
    train, test = Split.open(dirs[artifacts.TRAIN]).frame(), Split.open(dirs[artifacts.TEST])
    hypermodel, hp = TabularHyperModel(spec, SPACE), keras_tuner.HyperParameters()
    scores = []
    for seed in range(6):
        keras.utils.set_random_seed(seed)
        model = hypermodel.build(hp)
        hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=20, verbose=0)
        scores.append(evaluate_model(model, test, spec).scores)
    point_rule_refusals = 0
    for candidate in scores:
        for champion in scores:
            mine, theirs = candidate.metrics(), champion.metrics()
            paired = paired_difference(candidate, champion, "accuracy", seed=42)
            comparison = compare_with_champion(mine, theirs, paired, 1, 0.0, "not_worse")
            assert comparison.passed, comparison.describe()
            point_rule_refusals += mine["accuracy"] < theirs["accuracy"]  # what comparing the two figures did
            if candidate is champion:
                assert not compare_with_champion(mine, theirs, paired, 1, 0.0, "better").passed
    assert point_rule_refusals >= 5  # the seeds do give different accuracies: the test is not vacuous
