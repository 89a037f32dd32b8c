"""How a declared step's arguments become its Inputs and Outputs, and how its result is recorded on
artifacts (duck-typed here, as the binding takes them; tests/component runs it on kfp's own)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tunepipe import refusal_step, train_step
from tunepipe.binding import bind, record, returned
from tunepipe.contract import StepResult
from tunepipe.dag import DAG
from tunepipe.errors import ConfigError

pytestmark = pytest.mark.unit
# A run's output as KFP's v2 backend places it: <root>/<pipeline>/<run id>/<task>/<attempt>/<output>.
RUN, ATTEMPT = "5f2c1a0e-8b3d-4c6f-9a7e-0d1b2c3d4e5f", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@dataclass
class Place:
    """An artifact as the binding sees one: where it is, its URI, its metadata and logged values."""

    path: str
    uri: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    logged: list[tuple[str, Any]] = field(default_factory=list)

    def log_metric(self, name: str, value: float) -> None:
        self.logged.append((name, value))

    def log_confusion_matrix(self, classes: list[str], rows: list[list[int]]) -> None:
        self.logged.append(("confusion", (classes, rows)))

    def log_roc_curve(self, fpr: list[float], tpr: list[float], thresholds: list[float]) -> None:
        self.logged.append(("roc", (fpr, tpr, thresholds)))


def _train_arguments(tmp_path: Path, tuner_root: str = "") -> dict[str, Any]:
    outputs = tmp_path / "tunepipe" / RUN / "train" / ATTEMPT
    places = {name: Place(str(tmp_path / name), f"gs://b/{name}") for name in (
        "train_data", "validation_data", "preprocessing", "best_hyperparameters")}
    places.update({name: Place(str(tmp_path / name), str(outputs / name)) for name in ("model", "history", "metrics")})
    return {**places, "training": {"patience": 3}, "search_space": {}, "cross_validation": {"cv_folds": 0},
            "train_max_epochs": 7, "seed": 5, "tuner_root": tuner_root, "model_name": "m"}


def test_bind_gives_paths_sections_with_their_ui_parameters_and_the_state_root(tmp_path: Path) -> None:
    inputs, outputs = bind(DAG.step("train"), train_step, _train_arguments(tmp_path))
    assert inputs.train_data == str(tmp_path / "train_data")  # the local path, not the URI
    assert (inputs.training.max_epochs, inputs.training.patience) == (7, 3)  # train_max_epochs folded in
    assert inputs.cross_validation.cv_folds == 0 and inputs.seed == 5
    assert inputs.tuner_root == str(tmp_path / "tunepipe" / "tuner-state")  # beside the runs: a retry finds it
    assert outputs == train_step.Outputs(str(tmp_path / "model"), str(tmp_path / "history"))  # no metrics field
    named, _ = bind(DAG.step("train"), train_step, _train_arguments(tmp_path, "gs://state"))
    assert named.tuner_root == "gs://state"


def test_bind_names_the_parameter_of_an_invalid_section(tmp_path: Path) -> None:
    arguments = {**_train_arguments(tmp_path), "training": {"patience": -1}}
    with pytest.raises(ConfigError, match="pipeline parameter 'training'"):
        bind(DAG.step("train"), train_step, arguments)


def test_an_input_declared_as_uri_gets_the_artifact_uri(tmp_path: Path) -> None:
    arguments = {"evaluation": Place("/e"), "blessing": Place("/b"), "report": Place("/local/r", "gs://b/r"),
                 "outcome": Place(str(tmp_path / "o"))}
    inputs, outputs = bind(DAG.step("record_refusal"), refusal_step, arguments)
    assert inputs == refusal_step.Inputs("/e", "/b", "gs://b/r") and outputs.outcome == str(tmp_path / "o")


def _evaluate_places(tmp_path: Path) -> dict[str, Place]:
    return {name: Place(str(tmp_path / name)) for name in (
        "metrics", "confusion_matrix", "roc_curve", "evaluation", "blessing", "report")}


def test_record_notes_metadata_logs_metrics_and_writes_each_metrics_file(tmp_path: Path) -> None:
    places = _evaluate_places(tmp_path)
    result = StepResult(value=True, metadata={"blessing": {"blessed": True}}, metrics={"metrics": {"accuracy": 0.9}},
                        confusion_matrices={"confusion_matrix": (["a", "b"], [[1, 0], [0, 1]])},
                        roc_curves={"roc_curve": {}})
    record(DAG.step("evaluate"), result, places)
    assert places["blessing"].metadata == {"blessed": True}
    assert places["metrics"].logged == [("accuracy", 0.9)]
    assert places["confusion_matrix"].logged == [("confusion", (["a", "b"], [[1, 0], [0, 1]]))]
    assert places["roc_curve"].logged == []  # an empty curve draws nothing, but still gets its file
    contents = {name: json.loads(Path(places[name].path).read_text())
                for name in ("metrics", "confusion_matrix", "roc_curve")}
    assert contents == {"metrics": {"accuracy": 0.9}, "confusion_matrix": [[1, 0], [0, 1]], "roc_curve": {}}
    assert returned(DAG.step("evaluate"), result) is True


def test_record_refuses_an_undeclared_output_and_an_unrecorded_metrics_output(tmp_path: Path) -> None:
    places = _evaluate_places(tmp_path)
    with pytest.raises(ValueError, match="declares no Metrics output 'blessing'"):
        record(DAG.step("evaluate"), StepResult(metrics={"blessing": {}}), places)
    with pytest.raises(ValueError, match="recorded nothing for its metrics output"):
        record(DAG.step("evaluate"), StepResult(metrics={"metrics": {}}), places)


def test_a_reference_inside_an_output_becomes_a_uri_under_that_output(tmp_path: Path) -> None:
    outcome = Place(str(tmp_path / "outcome"), "gs://root/run/export/outcome")
    places = {"outcome": outcome, "published_model": Place(str(tmp_path / "pm"), "gs://root/pm"),
              "model_card": Place(str(tmp_path / "card"))}
    inside = StepResult(value={"version": 1}, uris={"published_model": str(tmp_path / "outcome" / "m" / "1")})
    record(DAG.step("export"), inside, places)
    assert places["published_model"].uri == "gs://root/run/export/outcome/m/1"
    record(DAG.step("export"), StepResult(uris={"published_model": "gs://models/m/2"}), places)
    assert places["published_model"].uri == "gs://models/m/2"
    with pytest.raises(ValueError, match="declares no reference output 'outcome'"):  # written, not a reference
        record(DAG.step("export"), StepResult(uris={"outcome": "gs://elsewhere"}), places)
    assert returned(DAG.step("export"), inside) == '{"version": 1}'  # json: one string
