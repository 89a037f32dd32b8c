"""The evaluate component on a binary task: the ROC curve goes to the Kubeflow UI too."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Metrics, Model

from components import step_functions
from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, SplitConfig
from tunepipe.data.features import model_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess
from tunepipe.data.split import Split
from tunepipe.modelling.model import TabularHyperModel

pytestmark = pytest.mark.component

SPACE = SearchSpace(hidden_layers=IntRange(min=1, max=1), units=IntRange(min=8, max=8), activation=["relu"],
                    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2),
                    batch_size=[16])



def test_binary_task_logs_a_roc_curve_and_draws_it(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=200)
    pd.DataFrame({"x": x, "z": rng.normal(size=200), "y": np.where(x + rng.normal(0, 0.5, 200) > 0, "yes", "no")}
                 ).to_csv(tmp_path / "binary.csv", index=False)
    run_ingest(str(tmp_path / "binary.csv"), "y", "auto", tmp_path / "cleaned")
    names = (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)
    spec = run_preprocess(tmp_path / "cleaned", SplitConfig(), 0,
                          {**{name: tmp_path / name for name in names}, "spec": tmp_path / "spec"})
    train = Split.open(tmp_path / artifacts.TRAIN).frame()
    keras.utils.set_random_seed(0)
    hypermodel, hp = TabularHyperModel(spec, SPACE), keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    fitted = hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=3, verbose=0,
                            validation_split=0.2)
    for folder in ("model", "best", "history"):
        (tmp_path / folder).mkdir()
    model.save(tmp_path / "model" / artifacts.MODEL_FILE)
    (tmp_path / "best" / artifacts.BEST_HYPERPARAMETERS_FILE).write_text(json.dumps(hp.get_config()))
    (tmp_path / "history" / artifacts.HISTORY_FILE).write_text(json.dumps(
        {artifacts.META_BEST_EPOCH: 3, "history": {k: [float(v) for v in vs] for k, vs in fitted.history.items()}}))

    def art(kind, name):
        return kind(name=name, uri=str(tmp_path / name))

    roc, report = art(ClassificationMetrics, "roc"), art(HTML, "report")
    evaluate = step_functions()["evaluate"]
    evaluate(model=art(Model, "model"), test_data=art(Dataset, artifacts.TEST),
             preprocessing=art(Artifact, "spec"), history=art(Artifact, "history"), thresholds={},
             evaluation_settings={"cv_folds": 0}, export_root="",
             model_name="binary", seed=0, metrics=art(Metrics, "m"), confusion_matrix=art(ClassificationMetrics, "c"),
             roc_curve=roc, evaluation=art(Artifact, "e"), blessing=art(Artifact, "b"), report=report)
    curve = roc.metadata["confidenceMetrics"]
    assert curve[0]["falsePositiveRate"] == 0.0 and curve[-1]["recall"] == 1.0  # KFP names the TPR recall
    assert all(np.isfinite(point["confidenceThreshold"]) for point in curve)
    evaluation = json.loads((tmp_path / "e" / artifacts.EVALUATION_FILE).read_text())
    fpr, tpr = np.array(evaluation["roc_curve"]["fpr"]), np.array(evaluation["roc_curve"]["tpr"])
    assert np.trapezoid(tpr, fpr) == pytest.approx(evaluation["metrics"]["roc_auc"])
    assert "ROC curve" in Path(report.path).read_text()
