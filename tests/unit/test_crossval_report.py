"""k-fold cross-validation, the HTML report and the Markdown model card, on tiny data."""

from __future__ import annotations

import json

import keras_tuner
import numpy as np
import pandas as pd
import pytest

from tunepipe.config import EvaluationConfig, FloatRange, IntRange, Placement, SearchSpace, validate_section
from tunepipe.data.features import CategoricalFeature, NumericFeature, PreprocessingSpec
from tunepipe.errors import ConfigError
from tunepipe.evaluation.crossval import cross_validate, fold_ids, one_after_another
from tunepipe.execution.folds import FoldProcesses, fold_runner
from tunepipe.execution.placement import CPU_FOLD_PROCESSES, fold_processes
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.reports.modelcard import render_markdown
from tunepipe.reports.report import build_report, table

pytestmark = pytest.mark.unit

SPEC = PreprocessingSpec(
    "classification", "y", [NumericFeature("x", "x", 0.0, 1.0)], [CategoricalFeature("c", "c", ["a", "b"])],
    classes=["no", "yes"],
)
SPACE = SearchSpace(hidden_layers=IntRange(min=1, max=1), units=IntRange(min=4, max=4), activation=["relu"],
                    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2),
                    batch_size=[16])


def frame(rows: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=rows)
    return pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], rows), "y": np.where(x > 0, "yes", "no")})


def test_folds_are_stratified_seeded_and_cover_every_row() -> None:
    data = frame(50)
    ids = fold_ids(data, SPEC, 5, seed=1)
    assert sorted(set(ids)) == [0, 1, 2, 3, 4]
    assert np.bincount(ids).tolist() == [10] * 5
    for name in SPEC.classes:  # each class spread over the folds within one row
        counts = np.bincount(ids[data["y"].to_numpy() == name], minlength=5)
        assert counts.max() - counts.min() <= 1
    assert (fold_ids(data, SPEC, 5, seed=1) == ids).all()
    assert not (fold_ids(data, SPEC, 5, seed=2) == ids).all()


def test_cross_validation_reports_mean_and_std_per_metric() -> None:
    hypermodel = TabularHyperModel(SPEC, SPACE)
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)  # registers the fixed values
    result = cross_validate(hypermodel, hp, frame(60), SPEC, folds=3, epochs=2, seed=0)
    assert (result["folds"], result["rows"], result["epochs"]) == (3, 60, 2)
    accuracy = result["metrics"]["accuracy"]
    assert len(accuracy["values"]) == 3
    assert accuracy["mean"] == pytest.approx(np.mean(accuracy["values"]))
    assert accuracy["std"] == pytest.approx(np.std(accuracy["values"]))
    assert set(result["metrics"]) >= {"accuracy", "f1", "log_loss", "roc_auc"}


def test_folds_in_two_spawned_processes_score_exactly_as_in_this_process() -> None:
    """The code path of a node with 2 GPUs (one process per GPU), here on the CPU: same seeds, same scores."""
    hypermodel = TabularHyperModel(SPEC, SPACE)
    hp = keras_tuner.HyperParameters()
    hypermodel.build(hp)
    here = cross_validate(hypermodel, hp, frame(60), SPEC, folds=3, epochs=2, seed=0)
    apart = cross_validate(hypermodel, hp, frame(60), SPEC, folds=3, epochs=2, seed=0,
                           runner=FoldProcesses([None, None]))
    assert json.dumps(apart, sort_keys=True) == json.dumps(here, sort_keys=True)


@pytest.mark.parametrize(("placement", "gpus", "processes"), [
    (Placement(), [], [None] * CPU_FOLD_PROCESSES if CPU_FOLD_PROCESSES >= 2 else []),  # auto on CPU: measured
    (Placement(), ["GPU-a"], [None] * CPU_FOLD_PROCESSES if CPU_FOLD_PROCESSES >= 2 else []),
    (Placement(), ["GPU-a", "GPU-b"], ["GPU-a", "GPU-b"]),  # auto: one process per GPU
    (Placement(where="node"), ["GPU-a", "GPU-b"], ["GPU-a", "GPU-b"]),  # node without a count: as auto
    (Placement(where="step"), ["GPU-a", "GPU-b"], []),  # the step's own process
    (Placement(where="node", workers=3), [], [None, None, None]),
    (Placement(where="node", workers=3), ["GPU-a", "GPU-b"], ["GPU-a", "GPU-b", "GPU-a"]),  # the GPUs in turn
])
def test_cv_placement_chooses_where_the_folds_run(placement: Placement, gpus: list[str],
                                                   processes: list[str | None]) -> None:
    assert fold_processes(placement, gpus) == processes
    runner = fold_runner(placement, gpus)  # what the train step asks for
    if processes:
        assert isinstance(runner, FoldProcesses) and runner.processes == processes
    else:
        assert runner is one_after_another


def test_cross_validation_is_never_placed_on_the_cluster() -> None:
    with pytest.raises(ValueError, match="where cluster is not offered for cross-validation"):
        EvaluationConfig(cv_placement=Placement(where="cluster", workers=2))


@pytest.mark.parametrize("folds", [1, -1, 21])
def test_cv_folds_must_be_off_or_at_least_two(folds: int) -> None:
    with pytest.raises(ConfigError, match="cv_folds"):
        validate_section(EvaluationConfig, {"cv_folds": folds}, "parameters")


def test_regression_report_has_its_plots_and_escapes_text() -> None:
    rng = np.random.default_rng(0)
    y_true = rng.normal(size=30)
    evaluation = {"task": "regression", "rows": 30, "metrics": {"rmse": 0.5}, "classes": [], "confusion_matrix": [],
                  "per_class": [], "roc_curve": None, "cross_validation": None, "intervals": {"rmse": [0.4, 0.61]},
                  "bootstrap": {"method": "percentile", "confidence": 0.95, "resamples": 1000, "seed": 42}}
    blessing = {"blessed": True, "forced": False, "reason": "no thresholds <configured>", "checks": [],
                "champion": None}
    page = build_report("price <b>", evaluation, {"loss": [2.0, 1.0], "val_loss": [2.5, 1.5],
                                                  "mae": [1.0, 0.8], "val_mae": [1.2, 0.9]},
                        blessing, y_true, y_true + 0.1)
    assert page.count("data:image/png;base64,") == 2  # training curves; predicted-vs-actual with residuals
    assert "price &lt;b&gt;" in page and "&lt;configured&gt;" in page and "<b>" not in page
    assert "Confusion matrix" not in page and "residuals" in page
    assert "<td>rmse</td><td>0.5000</td><td>[0.4000, 0.6100]</td>" in page
    assert "percentile bootstrap over 1000 resamples of the 30 test rows (seed 42)" in page


def test_table_formats_floats_and_escapes_cells() -> None:
    assert table(["a"], [[0.123456], ["<x>"]]) == (
        "<table><thead><tr><th>a</th></tr></thead><tbody><tr><td>0.1235</td></tr><tr><td>&lt;x&gt;</td></tr>"
        "</tbody></table>")


def test_markdown_card_records_the_decision_override_and_signature() -> None:
    card = {
        "model_name": "m", "version": 3, "task": "classification", "label": "y", "created": "2026-01-01T00:00:00",
        "pipeline_run": {"id": "abc", "name": "tunepipe-1"},
        "data": {"source": "data.csv", "fingerprint": "sha256:1", "rows": 10},
        "schema": {"numeric": ["x"], "categorical": ["c"]},
        "cleaning": {"rows_in": 12, "dropped_without_label": 1, "dropped_duplicates": 1,
                     "columns": {"x": {"imputed": 2}}},
        "classes": ["no", "yes"], "metrics": {"accuracy": 0.8}, "metric_intervals": {"accuracy": [0.7, 0.9]},
        "cross_validation": {"folds": 5, "rows": 8, "metrics": {"accuracy": {"mean": 0.7, "std": 0.1}}},
        "blessing": {"blessed": False, "forced": True, "reason": "worse than champion version 2", "checks": [],
                     "champion": {"version": 2, "metric": "accuracy", "candidate": 0.8, "champion": 0.9, "margin": 0.0,
                                  "passed": False, "rule": "not_worse", "difference": -0.1, "low": -0.2,
                                  "high": -0.03}},
        "hyperparameters": {"units": 8}, "epochs_trained": 4, "best_epoch": 3,
        "signature": {"inputs": {"x": {"column": "x", "dtype": "float32", "shape": [None, 1]}},
                      "output": {"dtype": "float32"}},
        "verification": {"rows": 5, "tolerance": 1e-5}, "packages": {"keras": "3.0"},
    }
    text = render_markdown(card)
    assert text.startswith("# Model card: m version 3")
    assert "pipeline run `abc`" in text and "sha256:1" in text and "| accuracy | 0.8000 | [0.7000, 0.9000] |" in text
    assert ("| accuracy vs champion v2 | 0.8000 | champion 0.9000; difference -0.1000 (95% CI -0.2000 to -0.0300); "
            "not worse with 95% confidence by more than margin 0 | FAIL |") in text
    assert "force_export" in text and "worse than champion version 2" in text
    assert "5-fold cross-validation" in text and "| x | x | float32 | [None, 1] |" in text
    assert "cleaning of `x`" in text and "| keras | 3.0 |" in text


def test_an_oversampled_row_never_lands_on_both_sides_of_a_fold() -> None:
    """augmentation.oversample repeats minority rows; each fold trains on none of the rows it scores."""
    from tunepipe.data.preprocess import oversample

    rng = np.random.default_rng(3)
    x = rng.normal(size=120)
    imbalanced = pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], 120), "y": np.where(x > 1.0, "yes", "no")})
    frame = oversample(imbalanced, "y", seed=0)
    assert frame.duplicated().sum() > 50  # the minority class was resampled with replacement
    ids = fold_ids(frame, SPEC, 5, seed=1)
    rows = frame.astype(str).agg("|".join, axis=1)
    for fold in range(5):
        assert not set(rows[ids == fold]) & set(rows[ids != fold])
    assert sorted(set(ids)) == [0, 1, 2, 3, 4]


def test_rows_without_repeats_keep_the_row_by_row_folds() -> None:
    """Grouping copies changes nothing for data without repeats (earlier reports stay comparable)."""
    data = frame(50)
    rng = np.random.default_rng(1)
    expected = np.empty(50, dtype=np.int64)
    offset = 0
    for name in SPEC.classes:
        shuffled = rng.permutation(np.flatnonzero(data["y"].to_numpy() == name))
        expected[shuffled] = (np.arange(len(shuffled)) + offset) % 5
        offset += len(shuffled)
    assert (fold_ids(data, SPEC, 5, seed=1) == expected).all()


def test_each_fold_trains_on_every_copy_and_scores_one_copy_of_each_held_out_row(monkeypatch) -> None:
    """The rows handed to fitting and to scoring, recorded on their way into the real model."""
    from tunepipe.data.preprocess import oversample
    from tunepipe.evaluation import crossval

    rng = np.random.default_rng(4)
    x = rng.normal(size=60)
    data = oversample(pd.DataFrame({"x": x, "c": rng.choice(["a", "b"], 60), "y": np.where(x > 0.8, "yes", "no")}),
                      "y", seed=0)
    seen: list[pd.DataFrame] = []
    real_inputs = crossval.model_inputs
    monkeypatch.setattr(crossval, "model_inputs", lambda rows, spec: seen.append(rows) or real_inputs(rows, spec))
    cross_validate(TabularHyperModel(SPEC, SPACE), keras_tuner.HyperParameters(), data, SPEC, folds=3, epochs=1, seed=0)
    assert len(seen) == 6  # per fold: the rows fitted on, then the rows scored
    ids = fold_ids(data, SPEC, 3, seed=0)
    for fold, (fitted, scored) in enumerate(zip(seen[::2], seen[1::2], strict=True)):
        assert len(fitted) == int((ids != fold).sum())  # repeats kept: an oversampled class keeps its weight
        assert not scored.duplicated().any()
        assert len(scored) == len(data[ids == fold].drop_duplicates())  # one copy of each held-out row
    assert sum(len(scored) for scored in seen[1::2]) == len(data.drop_duplicates()) < len(data)


def test_natural_duplicates_are_folded_row_by_row_while_oversampled_copies_stay_together() -> None:
    """Copies the data holds are observations, drawn into folds as the split draws them; the copies
    oversampling makes (marked by preprocess) never straddle a fold."""
    from tunepipe.data.preprocess import oversample
    from tunepipe.evaluation.crossval import first_copies

    rng = np.random.default_rng(8)
    x = rng.choice([0.0, 1.0, 2.0], 150)  # one column: most rows repeat another
    natural = pd.DataFrame({"x": x, "c": "a", "y": np.where(x > 1.5, "yes", "no")})
    assert natural.duplicated().sum() > 140
    ids = fold_ids(natural, SPEC, 5, seed=2)
    rows = natural.astype(str).agg("|".join, axis=1)
    assert any(set(rows[ids == fold]) & set(rows[ids != fold]) for fold in range(5))  # copies on both sides
    assert first_copies(natural).all()  # every natural copy is scored
    sizes = np.bincount(ids)
    assert sizes.max() - sizes.min() <= 2  # row-by-row folds, not one fold per distinct row

    resampled = oversample(natural, "y", seed=0)
    copy_of = resampled["__tunepipe_copy_of__"].to_numpy()
    ids = fold_ids(resampled, SPEC, 5, seed=2)
    for original in np.unique(copy_of):
        assert len(set(ids[copy_of == original])) == 1  # one row's oversampled copies share its fold
    scored = first_copies(resampled)
    assert scored.sum() == len(natural) and len(set(copy_of[scored])) == len(natural)
