"""The quality benchmark's scikit-learn baselines include gradient-boosted trees, searched on a small
grid like the others and scored on the run's test split, for classification and regression."""

import sys
from pathlib import Path

import pandas as pd
import pytest

import tunepipe
from tunepipe.config import SplitConfig
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess

pytestmark = pytest.mark.unit
ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import baselines  # noqa: E402

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"


def _work(tmp_path: Path, label: str) -> Path:
    """A run folder as bench/inprocess.py leaves it (only preprocess's splits and spec), from 58 penguins."""
    data = tmp_path / "penguins.csv"
    pd.read_csv(PENGUINS).iloc[::6].to_csv(data, index=False)  # every species, not just the first rows
    work = tmp_path / "work"
    run_ingest(str(data), label, "auto", work / "ingest")
    dirs = {name: work / "preprocess" / f"{name}_data" for name in ("train", "validation", "test")}
    dirs["spec"] = work / "preprocess" / "preprocessing"
    run_preprocess(work / "ingest", SplitConfig(), 0, dirs)
    return work


@pytest.mark.parametrize(("label", "grids"), [("species", "CLASSIFIER_GRIDS"), ("body_mass_g", "REGRESSOR_GRIDS")])
def test_gradient_boosted_trees_baseline_runs_on_a_tiny_split(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, label: str, grids: str) -> None:
    boosting = getattr(baselines, grids)["gradient-boosted trees"]
    assert boosting[0] == "boosting" and 2 <= len(boosting[1]) <= 3  # a small grid, like the others'
    monkeypatch.setattr(baselines, grids, {"gradient-boosted trees": boosting})  # the others: covered by the bench

    scores = baselines.score_baselines(_work(tmp_path, label), seed=0, folds=3)

    assert list(scores) == ["gradient-boosted trees"]
    lowest = 0.5 if label == "species" else 0.0  # accuracy of 3 classes, R² on ~9 test rows
    assert lowest < scores["gradient-boosted trees"] <= 1.0


def test_every_task_has_four_baselines_gradient_boosting_among_them() -> None:
    assert list(baselines.CLASSIFIER_GRIDS) == ["logistic regression", "RBF SVM", "random forest",
                                                "gradient-boosted trees"]
    assert list(baselines.REGRESSOR_GRIDS) == ["ridge regression", "RBF SVM", "random forest",
                                               "gradient-boosted trees"]


def test_gradient_boosting_is_in_the_quality_table_and_can_be_the_best_baseline() -> None:
    quality = pytest.importorskip("quality")
    from synthetic import Dataset

    result = quality.Result(Dataset("toy", "toy.csv", "y", "classification", "a toy"), tunepipe=[0.90, 0.92, 0.91],
                            baselines={"logistic regression": [0.85, 0.86, 0.84], "RBF SVM": [0.90, 0.91, 0.89],
                                       "random forest": [0.91, 0.90, 0.92],
                                       "gradient-boosted trees": [0.93, 0.99, 0.925]},
                            seconds=[1.0] * 3, cpu_seconds=[1.0] * 3, baseline_seconds=[1.0] * 3,
                            epochs=[5] * 3, best_epochs=[3] * 3, test_rows=100)

    goal = quality.goal_for(result)
    body = quality.render([result], False, 60.0).body

    assert goal.measured == "accuracy 0.910 vs gradient-boosted trees 0.948 (gap +3.8 points)"  # means
    assert "| toy | 0.910 ± 0.010 | — | — |" in body  # no bagged or refit model above cv_max_rows
    assert ("| dataset | single | bagged | refit | logistic regression | RBF SVM | random forest | "
            "gradient-boosted trees |") in body
    assert "gradient-boosted trees: `{'model__learning_rate'" in body


def test_on_small_data_the_goal_is_measured_on_the_bagged_model_the_pipeline_exports() -> None:
    quality = pytest.importorskip("quality")
    from synthetic import Dataset

    result = quality.Result(Dataset("toy", "toy.csv", "y", "classification", "a toy"), tunepipe=[0.90, 0.92],
                            bagged=[0.95, 0.97], refit=[0.91, 0.93],
                            baselines={"logistic regression": [0.96, 0.96], "RBF SVM": [0.9, 0.9],
                                       "random forest": [0.9, 0.9], "gradient-boosted trees": [0.9, 0.9]},
                            seconds=[1.0] * 2, cpu_seconds=[1.0] * 2, baseline_seconds=[1.0] * 2,
                            epochs=[5] * 2, best_epochs=[3] * 2, test_rows=100)

    assert quality.goal_for(result).measured == "accuracy 0.960 vs logistic regression 0.960 (gap +0.0 points)"
    assert "| toy | 0.910 ± 0.014 | 0.960 ± 0.014 | 0.920 ± 0.014 | 0.960 ± 0.000 |" in quality.render(
        [result], False, 60.0).body


def test_the_bundled_public_sets_are_written_with_text_classes_and_their_task(tmp_path) -> None:
    synthetic = pytest.importorskip("synthetic")
    quality = pytest.importorskip("quality")
    import pandas as pd

    for name, (_, task, _) in synthetic.BUNDLED.items():
        dataset = synthetic.write_bundled(tmp_path, name)
        frame = pd.read_csv(dataset.uri)
        assert dataset.task == task and dataset.label in frame.columns and len(frame) >= 150
        if task == "classification":
            assert frame[dataset.label].dtype == object  # class names, never numbers that read as a regression
    full = [dataset.name for dataset in quality.datasets(False, tmp_path)]
    assert len(full) >= 8 and "digits" in full and len(quality.SEEDS) >= 5
    assert quality.FULL_SYNTHETIC_ROWS["regression"] >= 20000


def test_kept_seed_scores_are_reused_so_an_interrupted_quality_run_resumes(tmp_path, monkeypatch) -> None:
    quality = pytest.importorskip("quality")
    from synthetic import Dataset

    calls = []

    def fake_run(dataset, seed, work, quick=False):
        calls.append(seed)
        baselines = {name: 0.93 for name in quality.CLASSIFIER_GRIDS}
        return quality.SeedScores(0.9 + seed / 1000, {"bagged": 0.95}, baselines, 10.0, 12.0, 3.0, 20, 8, 52,
                                  quality.now())

    monkeypatch.setattr(quality, "run_once", fake_run)
    monkeypatch.setenv("TUNEPIPE_QUALITY_SEEDS", str(tmp_path / "kept"))
    dataset = Dataset("toy", "toy.csv", "y", "classification", "a toy")
    first, reused = quality.seed_scores(dataset, 7, tmp_path / "a", False, quality.kept_seeds())
    again, reused_again = quality.seed_scores(dataset, 7, tmp_path / "b", False, quality.kept_seeds())
    assert calls == [7] and (reused, reused_again) == (False, True) and again == first
    assert [p.name for p in (tmp_path / "kept").iterdir()] == ["toy-7.json"]  # no partial file left behind
    result = quality.Result(dataset)
    result.add(again)
    result.reused.append(f"seed 7 (recorded {again.recorded})")
    assert result.bagged == [0.95] and result.refit == [] and result.baselines["random forest"] == [0.93]
    assert "**Seeds reused**" in quality.render([result], False, 60.0).body


def test_on_the_images_the_goal_is_to_match_or_beat_the_best_baseline() -> None:
    quality = pytest.importorskip("quality")
    from synthetic import Dataset

    def result(images: bool, ours: float) -> object:
        scores = {name: [0.98, 0.98] for name in quality.CLASSIFIER_GRIDS}
        return quality.Result(Dataset("d", "d", "label", "classification", "d", images=images), tunepipe=[ours] * 2,
                              bagged=[ours] * 2, baselines=scores)

    assert quality.goal_for(result(False, 0.975)).met is True  # half a point below: within the table's 1 point
    missed = quality.goal_for(result(True, 0.975))
    assert missed.met is False and missed.target == "at or above the best baseline's accuracy"
    assert quality.goal_for(result(True, 0.985)).met is True
