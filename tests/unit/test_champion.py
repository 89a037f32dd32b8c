"""The champion: found through its pointer, checked, scored on the candidate's test rows."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pytest
from split_files import write_split

import tunepipe
from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace, SplitConfig
from tunepipe.data.features import model_inputs, targets
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess
from tunepipe.data.split import Split
from tunepipe.errors import ExportError
from tunepipe.evaluation.champion import compare, load_champion
from tunepipe.evaluation.evaluate import UNSEEN_CLASS, evaluate_model
from tunepipe.evaluation.metrics import RegressionScores
from tunepipe.modelling.model import TabularHyperModel
from tunepipe.publishing import layout
from tunepipe.publishing.export import export_model

pytestmark = pytest.mark.unit

PENGUINS = Path(tunepipe.__file__).parent / "datasets" / "penguins.csv"
SPACE = SearchSpace(
    hidden_layers=IntRange(min=1, max=1), units=IntRange(min=16, max=16), activation=["relu"],
    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2), batch_size=[32],
)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("champion")
    run_ingest(str(PENGUINS), "species", "auto", root / "cleaned")
    dirs = {name: root / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    spec = run_preprocess(root / "cleaned", SplitConfig(), 0, {**dirs, "spec": root / "spec"})
    train, test = Split.open(dirs[artifacts.TRAIN]).frame(), Split.open(dirs[artifacts.TEST])
    keras.utils.set_random_seed(0)
    hypermodel = TabularHyperModel(spec, SPACE)
    hp = keras_tuner.HyperParameters()
    good = hypermodel.build(hp)
    hypermodel.fit(hp, good, model_inputs(train, spec), targets(train, spec), epochs=15, verbose=0)
    weak = hypermodel.build(hp)  # untrained: the deliberately weakened candidate
    card = {"task": spec.task, "label": spec.label, "classes": spec.classes, "metrics": {}}
    export_model(good, spec, str(root / "models"), "penguins", card, test.frame())
    return root, spec, test, good, weak


def test_champion_is_scored_like_the_candidate_on_the_same_rows(setup) -> None:
    root, spec, test, good, _ = setup
    champion = load_champion(str(root / "models"), "penguins", root / "scratch")
    assert champion is not None and champion.pointer.version == 1
    scored = evaluate_model(good, test, spec)
    candidate = scored.evaluation.metrics
    comparison = compare(scored.scores, champion, test, spec, 0.0, "not_worse", seed=0)
    # the champion is the same model, exported: raw inputs through it give the same predictions
    assert comparison.champion == pytest.approx(candidate["accuracy"])
    assert comparison.passed and comparison.error is None
    assert (comparison.difference, comparison.low, comparison.high) == (0.0, 0.0, 0.0)
    assert comparison.champion_metrics["log_loss"] == pytest.approx(candidate["log_loss"], abs=1e-4)
    # the stricter rule publishes only a better candidate: the same model is refused
    strict = compare(scored.scores, champion, test, spec, 0.0, "better", seed=0)
    assert not strict.passed and strict.describe().startswith("not shown better than champion version 1")


def test_labels_unseen_in_training_are_reported_and_scored_as_errors(setup, tmp_path) -> None:
    root, spec, test, good, _ = setup
    known = evaluate_model(good, test, spec).evaluation
    rows = test.frame()
    rows.loc[rows.index[:3], "species"] = "Unicornis"
    rows.loc[rows.index[3], "species"] = "Pegasus"
    changed = write_split(tmp_path / "changed", rows)
    scored = evaluate_model(good, changed, spec)
    evaluation = scored.evaluation
    assert evaluation.unseen_labels == {"Pegasus": 1, "Unicornis": 3}
    assert evaluation.classes == [*spec.classes, UNSEEN_CLASS] and evaluation.rows == test.rows
    matrix = np.asarray(evaluation.confusion_matrix)
    assert matrix[-1].sum() == 4 and matrix[:, -1].sum() == 0  # never predicted, so every one is an error
    right_before = round(known.metrics["accuracy"] * test.rows)
    assert evaluation.metrics["accuracy"] <= right_before / test.rows
    assert evaluation.metrics["accuracy"] * test.rows >= right_before - 4 - 1e-6
    assert evaluation.per_class[-1] == {"class": UNSEEN_CLASS, "precision": 0.0, "recall": 0.0, "f1": 0.0,
                                        "support": 4}
    champion = load_champion(str(root / "models"), "penguins", root / "scratch")
    comparison = compare(scored.scores, champion, changed, spec, 0.0, "not_worse", seed=0)
    assert comparison.error is None  # the champion is scored on the same rows, its unseen ones as errors too
    assert comparison.champion == pytest.approx(evaluation.metrics["accuracy"])


def test_a_weaker_candidate_fails_against_the_champion(setup) -> None:
    root, spec, test, _, weak = setup
    champion = load_champion(str(root / "models"), "penguins", root / "scratch")
    candidate = evaluate_model(weak, test, spec).scores
    for rule in ("not_worse", "better"):
        comparison = compare(candidate, champion, test, spec, 0.0, rule, seed=0)
        assert not comparison.passed, rule
        assert comparison.candidate < comparison.champion and comparison.high < 0  # worse with 95% confidence
    generous = compare(candidate, champion, test, spec, 1.0, "not_worse", seed=0)
    assert generous.passed


def test_no_export_root_or_no_pointer_means_no_champion(setup, tmp_path) -> None:
    assert load_champion("", "penguins", tmp_path) is None
    assert load_champion(str(tmp_path), "penguins", tmp_path) is None


def test_a_champion_that_cannot_be_scored_fails_with_the_reason(setup, tmp_path) -> None:
    root, spec, test, good, _ = setup
    champion = load_champion(str(root / "models"), "penguins", root / "scratch")
    candidate = evaluate_model(good, test, spec).scores
    without_island = write_split(tmp_path / "without", test.frame().drop(columns=["island"]))
    comparison = compare(candidate, champion, without_island, spec, 0.0, "not_worse", 0)
    assert not comparison.passed and "island" in comparison.error
    assert np.isnan(comparison.champion)
    regression = dataclasses.replace(spec, task="regression", label="body_mass_g")
    masses = test.frame()["body_mass_g"].to_numpy(np.float64)
    other_task = compare(RegressionScores(masses, masses), champion, test, regression, 0.0, "not_worse", 0)
    assert not other_task.passed and "classification of 'species'" in other_task.error


def test_a_tampered_champion_is_refused(setup, tmp_path) -> None:
    import shutil

    root = setup[0]
    copy = tmp_path / "models"
    shutil.copytree(root / "models", copy)
    (copy / "penguins" / "1" / layout.KERAS_MODEL).write_bytes(b"not the published model")
    with pytest.raises(ExportError, match="does not match its model card's checksum"):
        load_champion(str(copy), "penguins", tmp_path / "scratch")


def test_an_image_champion_is_scored_on_the_candidates_pixels(tmp_path) -> None:
    """A published image model must stay comparable: the next run scores it on raw pixels."""
    from tunepipe.config import ImageConfig
    from tunepipe.modelling.chooser import hypermodel_for

    run_ingest("sample://digits", "label", "auto", tmp_path / "cleaned", images=ImageConfig(height=16, width=16))
    dirs = {name: tmp_path / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST)}
    spec = run_preprocess(tmp_path / "cleaned", SplitConfig(), 0, {**dirs, "spec": tmp_path / "spec"})
    train, test = Split.open(dirs[artifacts.TRAIN]).frame(), Split.open(dirs[artifacts.TEST])
    keras.utils.set_random_seed(0)
    space = SearchSpace(conv_blocks=IntRange(min=1, max=1), filters=IntRange(min=8, max=8), kernel_size=[3],
                        dense_units=IntRange(min=16, max=16), dropout=FloatRange(min=0.0, max=0.0), batch_size=[32])
    hypermodel = hypermodel_for(spec, space)
    hp = keras_tuner.HyperParameters()
    model = hypermodel.build(hp)
    hypermodel.fit(hp, model, model_inputs(train, spec), targets(train, spec), epochs=3, verbose=0)
    card = {"task": spec.task, "label": spec.label, "classes": spec.classes, "metrics": {}}
    export_model(model, spec, str(tmp_path / "models"), "digits", card, test.frame())
    champion = load_champion(str(tmp_path / "models"), "digits", tmp_path / "scratch")
    assert champion is not None
    scored = evaluate_model(model, test, spec)
    comparison = compare(scored.scores, champion, test, spec, 0.0, "not_worse", 0)
    assert comparison.error is None and comparison.passed
    assert comparison.champion == pytest.approx(scored.evaluation.metrics["accuracy"])


def _as_older_layout(version_dir: Path) -> bytes:
    """Rewrites a published version the way versions were published before the SavedModel moved to
    the version root (``saved_model/``, ``model.keras`` and the card at the root, the card's older
    signature); returns the new card's bytes."""
    import json
    import shutil

    card = json.loads((version_dir / layout.MODEL_CARD).read_text())
    (version_dir / artifacts.SAVED_MODEL_DIR).mkdir()
    for entry in list(version_dir.iterdir()):
        if entry.name not in (artifacts.EXTRA_DIR, artifacts.SAVED_MODEL_DIR):
            shutil.move(str(entry), version_dir / artifacts.SAVED_MODEL_DIR / entry.name)
    shutil.move(str(version_dir / layout.KERAS_MODEL), version_dir / artifacts.MODEL_FILE)
    shutil.rmtree(version_dir / artifacts.EXTRA_DIR)
    card["files"] = {
        (name if name.startswith(artifacts.EXTRA_DIR) else f"{artifacts.SAVED_MODEL_DIR}/{name}"): entry
        for name, entry in card["files"].items() if name != layout.KERAS_MODEL
    } | {artifacts.MODEL_FILE: card["files"][layout.KERAS_MODEL]}
    card["signature"] = {
        "inputs": {name: {**described, "shape": [None, 1]} for name, described in card["signature"]["inputs"].items()},
        "output": {"dtype": "float32", "shape": [None, 3]},
    }
    data = json.dumps(card).encode()
    (version_dir / artifacts.MODEL_CARD_FILE).write_bytes(data)
    return data


def test_a_champion_published_in_the_older_layout_is_still_read_and_scored(setup, tmp_path) -> None:
    import json
    import shutil

    from tunepipe.storage.hashing import sha256_bytes

    root, spec, test, good, _ = setup
    copy = tmp_path / "models"
    shutil.copytree(root / "models", copy)
    card = _as_older_layout(copy / "penguins" / "1")
    pointer = copy / "penguins" / artifacts.CHAMPION_FILE
    pointer.write_text(json.dumps({**json.loads(pointer.read_text()), "model_card_sha256": sha256_bytes(card)}))
    assert not (copy / "penguins" / "1" / layout.MODEL_CARD).exists()
    champion = load_champion(str(copy), "penguins", tmp_path / "scratch")
    assert champion is not None and champion.pointer.version == 1
    scored = evaluate_model(good, test, spec)
    comparison = compare(scored.scores, champion, test, spec, 0.0, "not_worse", 0)
    assert comparison.error is None
    assert comparison.champion == pytest.approx(scored.evaluation.metrics["accuracy"])
