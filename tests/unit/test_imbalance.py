"""Rare classes: balanced class weights in the loss, and a binary threshold chosen on validation rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
import tensorflow as tf

from tunepipe import artifacts
from tunepipe.config import AugmentationConfig, FloatRange, IntRange, PreprocessingConfig, SearchSpace, SplitConfig
from tunepipe.data.features import model_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess
from tunepipe.data.split import Split
from tunepipe.evaluation.metrics import ClassificationScores
from tunepipe.modelling.imbalance import (
    MIN_POSITIVES,
    best_threshold,
    choose_decision,
    class_weights,
    class_weights_for,
    predicted_ids,
)
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.publishing.export import export_model
from tunepipe.reports.modelcard import render_markdown

pytestmark = pytest.mark.unit

SPACE = SearchSpace(
    hidden_layers=IntRange(min=1, max=1), units=IntRange(min=8, max=8), activation=["relu"],
    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2), batch_size=[32],
)


def test_balanced_weights_only_where_the_label_is_flagged_and_not_oversampled() -> None:
    assert class_weights_for([970, 30], imbalanced=True) == pytest.approx([1000 / (2 * 970), 1000 / (2 * 30)])
    assert class_weights_for([970, 30], imbalanced=False) == []
    assert class_weights_for([970, 30], imbalanced=True, enabled=False) == []
    assert class_weights_for([970, 30], imbalanced=True, oversampled=True) == []


def test_the_threshold_maximises_the_metric_over_every_cut() -> None:
    rng = np.random.default_rng(0)
    positive = rng.random(2_000) < 0.04
    probability = np.clip(rng.normal(np.where(positive, 0.35, 0.1), 0.12), 0, 1)  # the rare class rarely wins argmax
    threshold, score = best_threshold(positive, probability, "f1")
    cuts = np.unique(probability)
    brute = max(2 * np.sum(positive & (probability >= cut)) / (positive.sum() + (probability >= cut).sum())
                for cut in cuts)
    assert score == pytest.approx(brute) and threshold < 0.5
    assert score > 2 * np.sum(positive & (probability >= 0.5)) / (positive.sum() + (probability >= 0.5).sum())


def test_a_decision_is_the_threshold_rule_and_only_for_a_rare_binary_label() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(600) < 0.05).astype(int)  # class 1 is rare
    p1 = np.clip(rng.normal(np.where(y == 1, 0.4, 0.15), 0.1), 0.001, 0.999)
    probabilities = np.stack([1 - p1, p1], axis=1)
    decision = choose_decision(y, probabilities, [570, 30], True, "f1", ["no", "yes"])
    assert decision is not None and decision["positive_class"] == "yes" and decision["metric"] == "f1"
    np.testing.assert_array_equal(predicted_ids(probabilities, decision), (p1 >= decision["threshold"]).astype(int))
    assert decision["validation_score"] >= decision["validation_score_argmax"]
    assert ClassificationScores(y, probabilities, decision).metrics()["f1"] > ClassificationScores(
        y, probabilities).metrics()["f1"]
    assert choose_decision(y, probabilities, [570, 30], False, "f1", ["no", "yes"]) is None  # balanced by the report
    assert choose_decision(y, probabilities, [570, 30], True, "argmax", ["no", "yes"]) is None
    few = y.copy()
    few[np.flatnonzero(y == 1)[MIN_POSITIVES - 1:]] = 0  # one rare row fewer than a threshold needs
    assert choose_decision(few, probabilities, [570, 30], True, "f1", ["no", "yes"]) is None
    three = np.stack([1 - p1, p1 / 2, p1 / 2], axis=1)
    assert choose_decision(y, three, [570, 15, 15], True, "f1", ["a", "b", "c"]) is None


def _rare_table(path: Path, rows: int = 3_000) -> str:
    rng = np.random.default_rng(2)
    x = rng.normal(size=(rows, 3))
    rare = x[:, 0] + 0.5 * x[:, 1] + rng.normal(0, 0.5, rows) > 2.2  # about 3% of the rows
    frame = pd.DataFrame({"a": x[:, 0], "b": x[:, 1], "c": x[:, 2], "y": np.where(rare, "fraud", "ok")})
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def rare(tmp_path_factory):
    root = tmp_path_factory.mktemp("rare")
    cleaned = run_ingest(_rare_table(root / "rare.csv"), "y", "auto", root / "cleaned")
    dirs = {name: root / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    spec = run_preprocess(root / "cleaned", SplitConfig(), 0, {**dirs, "spec": root / "spec"})
    return cleaned, spec, dirs, root / "cleaned"


def test_preprocess_records_what_the_weights_are_decided_from(rare, tmp_path) -> None:
    cleaned, spec, _, cleaned_dir = rare
    assert cleaned.report["label_balance"]["imbalanced"] and cleaned.schema["label_imbalanced"] is True
    assert "the training loss weighs the classes (preprocessing.class_weights)" in " ".join(cleaned.report["notes"])
    assert spec.imbalanced and spec.classes == ["fraud", "ok"] and spec.class_counts[0] < spec.class_counts[1] / 10
    weights = class_weights(spec)
    assert weights[0] / weights[1] == pytest.approx(spec.class_counts[1] / spec.class_counts[0])
    off = run_preprocess(cleaned_dir, SplitConfig(), 0, {
        **{name: tmp_path / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)},
        "spec": tmp_path / "spec"}, PreprocessingConfig(class_weights=False))
    assert off.imbalanced and class_weights(off) == []
    oversampled = run_preprocess(cleaned_dir, SplitConfig(), 0, {
        **{name: tmp_path / f"o-{name}" for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)},
        "spec": tmp_path / "o-spec"}, augmentation=AugmentationConfig(oversample=True))
    assert class_weights(oversampled) == []


def test_the_fit_weighs_the_loss_by_the_class_weights(rare) -> None:
    _, spec, dirs, _ = rare
    train = Split.open(dirs[artifacts.TRAIN]).frame()
    losses = []
    for weighed in (spec, dataclasses.replace(spec, weigh_classes=False)):
        keras.utils.set_random_seed(0)
        hypermodel, hp = TabularHyperModel(weighed, SPACE), keras_tuner.HyperParameters()
        model = hypermodel.build(hp)
        history = hypermodel.fit(hp, model, model_inputs(train, weighed), targets(train, weighed), epochs=1,
                                 verbose=0, shuffle=False)
        losses.append(history.history["loss"][0])
    assert losses[0] > 1.5 * losses[1]  # the rare rows, badly predicted at first, weigh ~15x more


def test_the_served_predicted_class_uses_the_decision_and_the_card_records_it(rare, tmp_path) -> None:
    _, spec, dirs, _ = rare
    train, test = Split.open(dirs[artifacts.TRAIN]).frame(), Split.open(dirs[artifacts.TEST]).frame()
    keras.utils.set_random_seed(0)
    hypermodel, hp = TabularHyperModel(spec, SPACE), keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=3, verbose=0)
    probabilities = np.asarray(model.predict(model_inputs(test, spec), verbose=0))
    threshold = float(np.quantile(probabilities[:, 0], 0.9))  # a cut argmax would not make
    decision = {"metric": "f1", "positive_class": "fraud", "threshold": threshold,
                "weights": [1 - threshold, threshold], "validation_score": 0.5, "validation_score_argmax": 0.4,
                "validation_positives": 12}
    decided = dataclasses.replace(spec, decision=decision)
    card = {"task": "classification", "metrics": {}, "trained_model": {
        "kind": "single", "members": 1, "rows": 10, "epochs": 3, "class_weights": {"fraud": 16.0, "ok": 0.5},
        "decision": decision}}
    version = Path(export_model(model, decided, str(tmp_path), "rare", card, test).location)
    served = tf.saved_model.load(str(version)).signatures["serving_default"](
        **{f.input_name: tf.constant(test[f.column].to_numpy(np.float32)) for f in spec.numeric})
    names = [value.decode() for value in served["predicted_class"].numpy()]
    assert names == ["fraud" if p >= threshold else "ok" for p in served["probabilities"].numpy()[:, 0]]
    assert names != [spec.classes[i] for i in probabilities.argmax(axis=1)]
    text = render_markdown(card)
    assert f"`fraud` is predicted when its probability is at least {threshold:.4f}" in text
    assert "Class weights in the training loss" in text


def test_train_records_the_weights_and_a_threshold_chosen_on_validation(rare) -> None:
    from tunepipe.train_step import _rare_class_handling

    _, spec, dirs, _ = rare
    train = Split.open(dirs[artifacts.TRAIN]).frame()
    keras.utils.set_random_seed(0)
    hypermodel, hp = TabularHyperModel(spec, SPACE), keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=5, verbose=0)
    handling = _rare_class_handling(model, dirs[artifacts.VALIDATION], spec, "f1")
    assert set(handling["class_weights"]) == {"fraud", "ok"}
    decision = handling["decision"]
    assert decision["positive_class"] == "fraud" and decision["validation_positives"] >= MIN_POSITIVES
    assert decision["validation_score"] >= decision["validation_score_argmax"]
    assert "decision" not in _rare_class_handling(model, dirs[artifacts.VALIDATION], spec, "argmax")
