"""Each component's plain function on temporary folders, chained over the shipped penguins data."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
from kfp.dsl import HTML, Artifact, ClassificationMetrics, Dataset, Markdown, Metrics, Model
from split_files import write_split

import tunepipe
from components import step_functions
from tunepipe import artifacts
from tunepipe.config import FloatRange, IntRange, SearchSpace
from tunepipe.config.parameters import pipeline_defaults
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.ingest import fingerprint
from tunepipe.data.split import Split
from tunepipe.errors import ConfigError, DataError
from tunepipe.modelling.hyperband import hyperband_budget
from tunepipe.publishing import layout

pytestmark = pytest.mark.component

# Each component's plain function, as the pipeline builds its components from them.
FUNCTIONS = step_functions()
validate, fingerprint_component, ingest, preprocess = (FUNCTIONS[name] for name in (
    "validate", "fingerprint", "ingest", "preprocess"))
tune, train, evaluate, export, record_refusal = (FUNCTIONS[name] for name in (
    "tune", "train", "evaluate", "export", "record_refusal"))

PENGUINS = str(Path(tunepipe.__file__).parent / "datasets" / "penguins.csv")
# Sections as the pipeline sends them: one dict each, keys left out take their defaults.
INGEST_SETTINGS = {"data": {"max_rows": 10_000_000}, "cleaning": {}, "images": {"height": 32}}
PREPROCESS_SETTINGS = {"split": {"val_fraction": 0.15, "test_fraction": 0.15}, "preprocessing_settings": {},
                       "augmentation": {}}
SEARCH_SPACE = SearchSpace(
    hidden_layers=IntRange(min=1, max=1), units=IntRange(min=8, max=16, step=8), activation=["relu"],
    dropout=FloatRange(min=0.0, max=0.0), learning_rate=FloatRange(min=1e-2, max=1e-2), batch_size=[32],
).model_dump(exclude_none=True)
TUNE_MAX_EPOCHS, TUNE_FACTOR, TRAIN_MAX_EPOCHS = 2, 3, 3
CV_FOLDS = 2



@pytest.fixture(scope="module")
def run(tmp_path_factory) -> SimpleNamespace:
    """All six steps chained as the pipeline chains them, with a tiny budget."""
    root = tmp_path_factory.mktemp("pipeline_root")
    out = SimpleNamespace(root=root, export_root=root / "models")

    def artifact(kind, name):
        return kind(name=name, uri=str(root / name))

    out.cleaned = artifact(Dataset, "cleaned_data")
    out.fingerprint = fingerprint_component(data_uri="sample://penguins", data=INGEST_SETTINGS["data"])
    ingest(
        data_uri="sample://penguins", label="species", task="auto", data_fingerprint=out.fingerprint,
        cleaned_data=out.cleaned, data_report=artifact(HTML, "data_report"), **INGEST_SETTINGS,
    )

    out.train_data = artifact(Dataset, "train_data")
    out.validation_data = artifact(Dataset, "validation_data")
    out.test_data = artifact(Dataset, "test_data")
    out.preprocessing = artifact(Artifact, "preprocessing")
    preprocess(
        cleaned_data=out.cleaned, seed=0, train_data=out.train_data, validation_data=out.validation_data,
        test_data=out.test_data, preprocessing=out.preprocessing, **PREPROCESS_SETTINGS,
    )

    out.best = artifact(Artifact, "best_hyperparameters")
    out.trials = artifact(Artifact, "trials")
    out.tuning_report = artifact(HTML, "tuning_report")
    out.tuner_root = root / "tuner_state"
    out.tune_metrics = artifact(Metrics, "tune_metrics")
    tune(
        train_data=out.train_data, validation_data=out.validation_data, preprocessing=out.preprocessing,
        tuning={"factor": TUNE_FACTOR, "patience": 1}, search_space=SEARCH_SPACE, tune_max_epochs=TUNE_MAX_EPOCHS,
        tune_iterations=1, tuner_root=str(out.tuner_root), seed=0, model_name="penguins",
        data_fingerprint=out.fingerprint, gpu_count=0,
        best_hyperparameters=out.best, trials=out.trials, tuning_report=out.tuning_report,
        metrics=out.tune_metrics,
    )

    out.model = artifact(Model, "model")
    out.history = artifact(Artifact, "history")
    out.train_metrics = artifact(Metrics, "train_metrics")
    train(
        train_data=out.train_data, validation_data=out.validation_data, preprocessing=out.preprocessing,
        best_hyperparameters=out.best, training={"patience": 2, "lr_patience": 1}, search_space=SEARCH_SPACE,
        cross_validation={"cv_folds": CV_FOLDS, "cv_max_rows": 2000, "cv_placement": {"where": "auto", "workers": 0}},
        train_max_epochs=TRAIN_MAX_EPOCHS, seed=0, tuner_root=str(out.tuner_root),
        model_name="penguins", model=out.model, history=out.history, metrics=out.train_metrics,
    )

    out.metrics = artifact(Metrics, "metrics")
    out.confusion = artifact(ClassificationMetrics, "confusion_matrix")
    out.roc = artifact(ClassificationMetrics, "roc_curve")
    out.evaluation = artifact(Artifact, "evaluation")
    out.blessing = artifact(Artifact, "blessing")
    out.report = artifact(HTML, "report")
    out.publish = evaluate(
        **evaluate_inputs(out), thresholds={"accuracy": 0.5}, evaluation_settings=evaluation_settings(False),
        export_root=str(out.export_root), metrics=out.metrics, confusion_matrix=out.confusion, roc_curve=out.roc,
        evaluation=out.evaluation, blessing=out.blessing, report=out.report,
    )

    out.card = artifact(Artifact, "outcome")
    out.published_model = artifact(Model, "published_model")
    out.model_card = artifact(Markdown, "model_card")
    out.export_path = export(
        model=out.model, preprocessing=out.preprocessing, test_data=out.test_data, evaluation=out.evaluation,
        blessing=out.blessing, best_hyperparameters=out.best, history=out.history, cleaned_data=out.cleaned,
        report=out.report, export_root=str(out.export_root), model_name="penguins", run_id="run-123",
        run_name="tunepipe-test", outcome=out.card, published_model=out.published_model, model_card=out.model_card,
    )
    return out


def evaluate_inputs(run, model=None) -> dict:
    """The evaluate arguments that stay the same across these tests."""
    return dict(
        model=model or run.model, test_data=run.test_data, preprocessing=run.preprocessing,
        history=run.history, model_name="penguins", seed=0,
    )


def evaluation_settings(force_export: bool = False) -> dict:
    """The evaluation section as the pipeline sends it (thresholds travel by name)."""
    return {"force_export": force_export, "champion_margin": 0.0, "cv_folds": CV_FOLDS, "cv_max_rows": 2000}


def evaluate_outputs(tmp_path) -> dict:
    """Fresh output artifacts for one more evaluate call."""
    return dict(
        metrics=Metrics(name="m", uri=str(tmp_path / "m")),
        confusion_matrix=ClassificationMetrics(name="c", uri=str(tmp_path / "c")),
        roc_curve=ClassificationMetrics(name="r", uri=str(tmp_path / "r")),
        evaluation=Artifact(name="e", uri=str(tmp_path / "e")),
        blessing=Artifact(name="b", uri=str(tmp_path / "b")), report=HTML(name="h", uri=str(tmp_path / "h")),
    )


def test_ingest_outputs_and_metadata(run) -> None:
    folder = Path(run.cleaned.path)
    for name in (artifacts.CLEANED_DATA_FILE, artifacts.SCHEMA_FILE, artifacts.DATA_REPORT_FILE):
        assert (folder / name).is_file(), name
    page = Path(run.root / "data_report").read_text()
    assert page.startswith("<!doctype html>") and "Cleaning actions" in page
    assert run.cleaned.metadata[artifacts.META_KIND] == "table"
    assert run.cleaned.metadata[artifacts.META_DRIFT_FINDINGS] == 0
    assert run.cleaned.metadata[artifacts.META_ROWS] == 344
    assert run.cleaned.metadata[artifacts.META_TASK] == "classification"
    assert run.cleaned.metadata[artifacts.META_FINGERPRINT] == fingerprint(PENGUINS)


def test_preprocess_outputs_and_metadata(run) -> None:
    splits = {
        artifacts.TRAIN: run.train_data, artifacts.VALIDATION: run.validation_data, artifacts.TEST: run.test_data,
    }
    total = 0
    for name, dataset in splits.items():
        split = Split.open(dataset.path)
        assert dataset.metadata[artifacts.META_SPLIT] == name == split.metadata.split
        assert dataset.metadata[artifacts.META_ROWS] == len(split.frame()) > 0
        total += split.rows
    assert total == 344
    spec = PreprocessingSpec.load(Path(run.preprocessing.path) / artifacts.PREPROCESSING_SPEC_FILE)
    assert spec.classes == ["Adelie", "Chinstrap", "Gentoo"]


def test_tune_outputs_and_metadata(run) -> None:
    best = json.loads((Path(run.best.path) / artifacts.BEST_HYPERPARAMETERS_FILE).read_text())
    assert {item["config"]["name"] for item in best["space"]} >= {"units", "learning_rate", "batch_size"}
    trials = pd.read_csv(Path(run.trials.path) / artifacts.TRIALS_FILE)
    expected = hyperband_budget(TUNE_MAX_EPOCHS, TUNE_FACTOR).trials
    assert len(trials) == expected
    for target in (run.best, run.trials):
        assert target.metadata[artifacts.META_TRIALS] == expected
        assert target.metadata[artifacts.META_BEST_SCORE] == pytest.approx(trials["score"].min())
        assert target.metadata[artifacts.META_FAILED_TRIALS] == 0
    # the tuner state is keyed by model name, data fingerprint and search hash, under tuner_root
    location = Path(run.best.metadata[artifacts.META_TUNER_DIRECTORY])
    assert location.parent == run.tuner_root / "penguins"
    assert location.name.startswith(run.fingerprint.split(":")[1][:16] + "-")
    assert len(list(location.glob("hyperband/trial_*/trial.json"))) == expected


def test_tuning_report_is_self_contained_html_with_every_trial(run) -> None:
    page = Path(run.tuning_report.path).read_text()
    trials = pd.read_csv(Path(run.trials.path) / artifacts.TRIALS_FILE, dtype={"trial_id": str})
    assert page.startswith("<!DOCTYPE html>")
    assert "data:image/png;base64," in page
    assert "http://" not in page and "https://" not in page  # nothing fetched over the network
    assert page.count("<tr>") == len(trials) + 1  # header + one row per trial
    positions = [page.index(f"<td>{trial_id}</td>") for trial_id in trials["trial_id"]]
    assert positions == sorted(positions), "best first, as in the trial table"
    assert run.tuning_report.metadata[artifacts.META_BEST_SCORE] == pytest.approx(trials["score"].min())


def test_train_outputs_and_metadata(run) -> None:
    assert (Path(run.model.path) / artifacts.MODEL_FILE).is_file()
    history = json.loads((Path(run.history.path) / artifacts.HISTORY_FILE).read_text())
    epochs = len(history["history"]["loss"])
    assert 1 <= epochs <= TRAIN_MAX_EPOCHS
    assert run.model.metadata[artifacts.META_EPOCHS] == epochs
    assert run.history.metadata[artifacts.META_EPOCHS] == epochs
    assert run.model.metadata["best_epoch"] == history["best_epoch"]
    assert run.model.metadata[artifacts.META_RESUMED_FROM_EPOCH] == 0
    assert list(run.tuner_root.glob("penguins/train-*/" + artifacts.BACKUP_STATE_FILE)), "backup under tuner_root"


TEST_METRICS = {"accuracy", "precision", "recall", "f1", "precision_weighted", "recall_weighted", "f1_weighted",
                "roc_auc", "log_loss"}


def test_evaluate_logs_metrics_and_confusion_matrix(run) -> None:
    logged = run.metrics.metadata
    cv_names = {f"cv_{name}_{part}" for name in TEST_METRICS for part in ("mean", "std")}
    interval_names = {f"{name}_ci_{end}" for name in TEST_METRICS for end in ("low", "high")}
    assert set(logged) == TEST_METRICS | cv_names | interval_names | {"blessed"}
    assert all(0.0 <= logged[name] <= 1.0 for name in TEST_METRICS - {"log_loss"})
    evaluation = json.loads((Path(run.evaluation.path) / artifacts.EVALUATION_FILE).read_text())
    assert evaluation["metrics"] == pytest.approx({name: logged[name] for name in TEST_METRICS})
    for name in TEST_METRICS:  # each metric lies in its 95% interval, shown in the UI as recorded
        assert logged[f"{name}_ci_low"] <= logged[name] <= logged[f"{name}_ci_high"]
        assert evaluation["intervals"][name] == [logged[f"{name}_ci_low"], logged[f"{name}_ci_high"]]
    assert evaluation["bootstrap"] == {"method": "percentile", "confidence": 0.95, "resamples": 1000,
                                       "seed": evaluation["bootstrap"]["seed"]}
    assert run.evaluation.metadata["accuracy_ci_low"] == logged["accuracy_ci_low"]
    assert [row["class"] for row in evaluation["per_class"]] == ["Adelie", "Chinstrap", "Gentoo"]
    assert sum(row["support"] for row in evaluation["per_class"]) == evaluation["rows"]
    assert evaluation["roc_curve"] is None and not run.roc.metadata  # three classes: no binary ROC curve
    cv = evaluation["cross_validation"]
    assert cv["folds"] == CV_FOLDS and cv["rows"] == 344 - evaluation["rows"]
    assert len(cv["metrics"]["accuracy"]["values"]) == CV_FOLDS
    assert logged["cv_accuracy_mean"] == pytest.approx(np.mean(cv["metrics"]["accuracy"]["values"]))
    assert run.evaluation.metadata["accuracy"] == logged["accuracy"]

    matrix = run.confusion.metadata["confusionMatrix"]
    names = [item["displayName"] for item in matrix["annotationSpecs"]]
    assert names == ["Adelie", "Chinstrap", "Gentoo"]
    rows = [item["row"] for item in matrix["rows"]]
    assert rows == evaluation["confusion_matrix"]
    test_rows = run.test_data.metadata[artifacts.META_ROWS]
    assert sum(map(sum, rows)) == test_rows
    assert sum(rows[i][i] for i in range(3)) / test_rows == pytest.approx(logged["accuracy"])
    for written in (run.metrics, run.confusion, run.roc):  # each gets a file, so kfp.local caching sees them
        assert Path(written.path).is_file()


def test_evaluate_writes_a_self_contained_html_report(run) -> None:
    page = Path(run.report.path).read_text()
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('src="data:image/png;base64,') == 2  # training curves and confusion matrix
    for heading in ("Training curves", "Confusion matrix", "Per class", "Test metrics", "cross-validation",
                    "Blessing: blessed"):
        assert heading in page
    assert "http://" not in page and "https://" not in page  # nothing fetched from the network


def test_export_publishes_version_one(run) -> None:
    expected_dir = run.export_root / "penguins" / "1"
    returned = json.loads(run.export_path)
    run.export_path = returned[artifacts.META_EXPORT_PATH]
    assert returned[artifacts.META_VERSION] == 1
    assert run.export_path == str(expected_dir)
    assert run.export_path.endswith("/1")
    assert Path(run.export_path).resolve().is_relative_to(run.export_root.resolve())
    assert (expected_dir / layout.SAVED_MODEL_PB).is_file()  # the SavedModel at the version root
    assert (expected_dir / layout.KERAS_MODEL).is_file()
    assert run.card.metadata[artifacts.META_VERSION] == 1
    assert run.card.metadata[artifacts.META_EXPORT_PATH] == run.export_path
    card = json.loads((Path(run.card.path) / artifacts.OUTCOME_FILE).read_text())
    published = json.loads((expected_dir / layout.MODEL_CARD).read_text())
    assert card[artifacts.META_PUBLISHED] is True and run.card.metadata[artifacts.META_PUBLISHED] is True
    assert published["blessing"]["blessed"] is True and published["blessing"]["forced"] is False
    assert card["version"] == published["version"] == 1
    assert card[artifacts.META_EXPORT_PATH] == run.export_path
    assert card["data"]["fingerprint"] == fingerprint(PENGUINS)
    assert card["metrics"] == pytest.approx({name: run.metrics.metadata[name] for name in TEST_METRICS})
    assert not any(name.startswith("tuner/") for name in card["hyperparameters"])
    assert card["pipeline_run"] == {"id": "run-123", "name": "tunepipe-test"}
    assert card["report"] == run.report.uri
    assert card["schema"]["categorical"] == ["island", "sex"] and card["cleaning"]["rows_in"] == 344
    assert card["forced_export"] is False and card["cross_validation"]["folds"] == CV_FOLDS
    cost = card["serving_cost"]  # the trained architecture's size and latency, from the tune step
    assert cost["prefer"] == "best" and cost["chosen_trial"] == cost["best_trial"] and cost["parameters"] > 0
    assert cost["parameters"] == run.best.metadata[artifacts.META_PARAMETERS]
    assert "## Size and latency" in (expected_dir / layout.MODEL_CARD_MD).read_text()
    assert "## Blessing" in (expected_dir / layout.MODEL_CARD_MD).read_text()
    pointer = json.loads((run.export_root / "penguins" / artifacts.CHAMPION_FILE).read_text())
    assert pointer["version"] == 1
    # what the Kubeflow UI shows: the published version as a typed Model, the card as Markdown
    assert run.published_model.uri == run.export_path
    assert run.published_model.metadata[artifacts.META_VERSION] == 1
    assert Path(run.model_card.path).read_text().startswith("# Model card: penguins version 1")


def test_tune_and_train_log_their_key_results_as_metrics(run) -> None:
    tuned, trained = run.tune_metrics.metadata, run.train_metrics.metadata
    assert tuned[artifacts.META_TRIALS] >= 1 and tuned[artifacts.META_FAILED_TRIALS] == 0
    assert tuned[artifacts.META_BEST_SCORE] == run.best.metadata[artifacts.META_BEST_SCORE]
    assert trained[artifacts.META_EPOCHS] >= trained[artifacts.META_BEST_EPOCH] >= 1
    history = json.loads((Path(run.history.path) / artifacts.HISTORY_FILE).read_text())["history"]
    assert trained[artifacts.META_BEST_VAL_LOSS] == pytest.approx(min(history["val_loss"]))


def _layers(model):
    """Every layer of ``model``, those of its nested models (a bagged model's members) included."""
    for layer in model.layers:
        yield from (_layers(layer) if hasattr(layer, "layers") else [layer])


def test_evaluate_refuses_a_candidate_worse_than_the_champion(run, tmp_path) -> None:
    """Version 1 (published by the fixture) is the champion; a zeroed copy of it is refused."""
    import keras

    weak = Model(name="weak", uri=str(tmp_path / "weak"))
    trained = keras.models.load_model(Path(run.model.path) / artifacts.MODEL_FILE)
    for layer in _layers(trained):  # same architecture and preprocessing, weights zeroed: predicts uniform
        layer.set_weights([np.zeros_like(w) for w in layer.get_weights()] if layer.name.startswith("hidden")
                          or layer.name == "probabilities" else layer.get_weights())
    Path(weak.path).mkdir(parents=True)
    trained.save(Path(weak.path) / artifacts.MODEL_FILE)
    outputs = evaluate_outputs(tmp_path)
    publish = evaluate(**evaluate_inputs(run, model=weak), thresholds={}, evaluation_settings=evaluation_settings(),
                       export_root=str(run.export_root), **outputs)
    decision = json.loads((Path(outputs["blessing"].path) / artifacts.BLESSING_FILE).read_text())
    assert publish is False and decision["blessed"] is False
    assert decision["champion"]["version"] == 1 and decision["champion"]["champion"] > decision["champion"]["candidate"]
    assert "worse than champion version 1" in decision["reason"]
    ui = outputs["metrics"].metadata
    assert ui["champion_accuracy"] == decision["champion"]["champion"] and ui["blessed"] == 0.0
    # the paired interval of candidate - champion lies wholly below zero, and the UI shows it
    assert ui["champion_difference_ci_high"] == decision["champion"]["high"] < 0
    compared = decision["champion"]
    assert ui["champion_difference"] == pytest.approx(compared["candidate"] - compared["champion"])
    outcome = Artifact(name="outcome", uri=str(tmp_path / "outcome"))
    refused = json.loads(record_refusal(evaluation=outputs["evaluation"], blessing=outputs["blessing"],
                                        report=outputs["report"], outcome=outcome))
    assert refused[artifacts.META_CHAMPION_VERSION] == 1 and refused["report"] == outputs["report"].uri
    low, high = refused["metric_intervals"]["accuracy"]
    assert low <= refused["metrics"]["accuracy"] <= high


def test_evaluate_reports_test_labels_unseen_in_training(run, tmp_path) -> None:
    """New classes in the test rows are scored as errors (for candidate and champion) and listed."""
    test = Split.open(run.test_data.path).frame()
    test.loc[test.index[:3], "species"] = "Unicornis"
    changed = Dataset(name="test_data", uri=str(tmp_path / "test_data"))
    write_split(Path(changed.path), test)
    outputs = evaluate_outputs(tmp_path)
    evaluate(**{**evaluate_inputs(run), "test_data": changed}, thresholds={},
             evaluation_settings=evaluation_settings(), export_root=str(run.export_root), **outputs)
    scored = json.loads((Path(outputs["evaluation"].path) / artifacts.EVALUATION_FILE).read_text())
    decision = json.loads((Path(outputs["blessing"].path) / artifacts.BLESSING_FILE).read_text())
    assert scored["unseen_labels"] == {"Unicornis": 3}
    assert scored["classes"][-1] == "(unseen in training)" and sum(scored["confusion_matrix"][-1]) == 3
    assert outputs["metrics"].metadata["unseen_label_rows"] == 3
    assert decision["champion"]["error"] is None  # the champion is scored on the same rows, not refused
    assert scored["metrics"]["accuracy"] <= (len(test) - 3) / len(test)
    assert "Labels unseen in training" in Path(outputs["report"].path).read_text()
    outcome = Artifact(name="outcome", uri=str(tmp_path / "outcome"))
    refused = json.loads(record_refusal(evaluation=outputs["evaluation"], blessing=outputs["blessing"],
                                        report=outputs["report"], outcome=outcome))
    assert refused["unseen_labels"] == {"Unicornis": 3}


def test_fingerprint_step_matches_the_core_and_feeds_ingest(run) -> None:
    assert run.fingerprint == fingerprint(PENGUINS)
    assert run.cleaned.metadata[artifacts.META_FINGERPRINT] == run.fingerprint


def test_evaluate_blesses_against_thresholds(run) -> None:
    decision = json.loads((Path(run.blessing.path) / artifacts.BLESSING_FILE).read_text())
    assert run.publish is True and decision["blessed"] is True
    assert decision["checks"][0]["metric"] == "accuracy" and decision["checks"][0]["bound"] == 0.5
    assert run.blessing.metadata[artifacts.META_BLESSED] is True


@pytest.mark.parametrize("force", [False, True])
def test_unreachable_threshold_refuses_unless_forced(run, tmp_path, force) -> None:
    outputs = evaluate_outputs(tmp_path)
    blessing = outputs["blessing"]
    publish = evaluate(**evaluate_inputs(run), thresholds={"accuracy": 1.01},
                       evaluation_settings=evaluation_settings(force), export_root="", **outputs)
    decision = json.loads((Path(blessing.path) / artifacts.BLESSING_FILE).read_text())
    assert publish is force and decision["blessed"] is False and decision["forced"] is force
    assert "accuracy" in decision["reason"] and "1.01" in decision["reason"]
    outcome = Artifact(name="outcome", uri=str(tmp_path / "outcome"))
    returned = json.loads(record_refusal(evaluation=run.evaluation, blessing=blessing, report=outputs["report"],
                                         outcome=outcome))
    recorded = json.loads((Path(outcome.path) / artifacts.OUTCOME_FILE).read_text())
    assert returned == recorded
    assert recorded[artifacts.META_PUBLISHED] is False and recorded["blessing"] == decision


def test_forced_export_is_recorded_in_the_model_card(run, tmp_path) -> None:
    outputs = evaluate_outputs(tmp_path)
    assert evaluate(**evaluate_inputs(run), thresholds={"accuracy": 1.01},
                    evaluation_settings=evaluation_settings(True), export_root="", **outputs) is True
    outcome = Artifact(name="outcome", uri=str(tmp_path / "outcome"))
    card = json.loads(export(
        model=run.model, preprocessing=run.preprocessing, test_data=run.test_data, evaluation=outputs["evaluation"],
        blessing=outputs["blessing"], best_hyperparameters=run.best, history=run.history, cleaned_data=run.cleaned,
        report=outputs["report"], export_root=str(tmp_path / "models"), model_name="forced", run_id="r",
        run_name="n", outcome=outcome, published_model=Model(name="published_model", uri=str(tmp_path / "pm")),
        model_card=Markdown(name="model_card", uri=str(tmp_path / "card")),
    ))
    assert card["forced_export"] is True and card["blessing"]["forced"] is True
    assert "exported anyway because force_export is set" in card["blessing"]["reason"]
    markdown = (Path(card[artifacts.META_EXPORT_PATH]) / layout.MODEL_CARD_MD).read_text()
    assert "**Exported because `force_export` was set**" in markdown


def test_threshold_on_a_metric_the_task_lacks_is_refused(run, tmp_path) -> None:
    with pytest.raises(ConfigError, match="rmse"):
        evaluate(**evaluate_inputs(run), thresholds={"rmse": 1.0}, evaluation_settings=evaluation_settings(False),
                 export_root="", **evaluate_outputs(tmp_path))


def test_ingest_missing_label_raises_data_error(tmp_path) -> None:
    cleaned = Dataset(name="cleaned_data", uri=str(tmp_path / "cleaned"))
    with pytest.raises(DataError, match="'no_such_column'"):
        ingest(data_uri=PENGUINS, label="no_such_column", task="auto", data_fingerprint="", cleaned_data=cleaned,
               data_report=HTML(name="report", uri=str(tmp_path / "report.html")), **INGEST_SETTINGS)
    assert not cleaned.metadata


def test_ingest_rejects_invalid_cleaning_parameters(tmp_path) -> None:
    settings = {**INGEST_SETTINGS, "cleaning": {"missing": "guess"}}
    with pytest.raises(ConfigError, match=r"pipeline parameter 'cleaning':\n  missing"):
        ingest(data_uri=PENGUINS, label="species", task="auto", data_fingerprint="",
               cleaned_data=Dataset(name="c", uri=str(tmp_path / "c")),
               data_report=HTML(name="r", uri=str(tmp_path / "r.html")), **settings)


def test_ingest_notes_changed_data(tmp_path, capsys) -> None:
    cleaned = Dataset(name="cleaned_data", uri=str(tmp_path / "cleaned"))
    ingest(data_uri=PENGUINS, label="species", task="auto", data_fingerprint="sha256:old", cleaned_data=cleaned,
           data_report=HTML(name="report", uri=str(tmp_path / "report.html")), **INGEST_SETTINGS)
    assert "changed after the fingerprint step (sha256:old" in "".join(capsys.readouterr())
    ingest(
        data_uri=PENGUINS, label="species", task="auto", data_fingerprint=fingerprint(PENGUINS),
        cleaned_data=Dataset(name="again", uri=str(tmp_path / "again")),
        data_report=HTML(name="report2", uri=str(tmp_path / "report2.html")), **INGEST_SETTINGS,
    )
    assert "changed" not in "".join(capsys.readouterr())


def test_preprocess_rejects_bad_fraction(run, tmp_path) -> None:
    outputs = {name: Dataset(name=name, uri=str(tmp_path / name)) for name in ("train", "validation", "test")}
    with pytest.raises(ConfigError, match="val_fraction"):
        preprocess(
            cleaned_data=run.cleaned, seed=0, train_data=outputs["train"], validation_data=outputs["validation"],
            test_data=outputs["test"],
            preprocessing=Artifact(name="preprocessing", uri=str(tmp_path / "preprocessing")),
            **{**PREPROCESS_SETTINGS, "split": {"val_fraction": 0.7, "test_fraction": 0.15}},
        )


def test_validate_takes_every_pipeline_parameter_and_fails_fast_on_bad_thresholds(capsys) -> None:
    import inspect

    assert set(inspect.signature(validate).parameters) == set(pipeline_defaults())
    validate(**pipeline_defaults())
    assert "24 pipeline parameters valid" in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"pipeline parameters:\n  evaluation.thresholds: .*'acuracy'"):
        validate(**{**pipeline_defaults(), "thresholds": {"acuracy": 0.9}})
    with pytest.raises(ConfigError, match=r"evaluation.thresholds: Input should be a valid dictionary"):
        validate(**{**pipeline_defaults(), "thresholds": [0.9]})
