"""The pipeline boundary: sections travel whole, a few UI values by name, all derived from the models."""

from __future__ import annotations

import pytest

from tunepipe.config import Config, TrainingConfig, TuningConfig, load_config, pipeline_arguments, section
from tunepipe.config.parameters import (
    UI_PARAMETERS,
    field_descriptions,
    parameter_descriptions,
    pipeline_defaults,
    section_models,
    validate_arguments,
)
from tunepipe.errors import ConfigError

pytestmark = pytest.mark.unit

CHANGED = {
    "seed": 7,
    "data": {"uri": "d.csv", "label": "y", "task": "regression", "max_rows": 99, "baseline_schema_uri": "gs://bkt/s"},
    "cleaning": {"missing": "drop", "columns": {"id": {"drop": True}}},
    "images": {"height": 16},
    "split": {"val_fraction": 0.2},
    "preprocessing": {"normalization": "minmax"},
    "augmentation": {"oversample": True},
    "tuning": {"max_epochs": 3, "factor": 2, "hyperband_iterations": 2, "tuner_root": "/tmp/tuner",
               "placement": {"where": "node", "workers": 3}},
    "search_space": {"units": 64},
    "training": {"max_epochs": 7, "patience": 2, "min_delta": 0.01},
    "evaluation": {"thresholds": {"accuracy": 0.5}, "cv_folds": 0, "champion_margin": 0.1},
    "export": {"model_name": "m", "export_root": "/tmp/models"},
}


def test_every_section_round_trips_through_the_pipeline_parameters() -> None:
    config = load_config(overrides=CHANGED)
    assert validate_arguments(pipeline_arguments(config)) == config


def test_a_ui_value_has_one_place() -> None:
    arguments = pipeline_arguments(load_config(overrides=CHANGED))
    for parameter, (owner, field) in UI_PARAMETERS.items():
        if owner in arguments:
            assert field not in arguments[owner], parameter
    assert arguments["tune_max_epochs"] == 3 and arguments["tuning"]["placement"] == {"where": "node", "workers": 3}


def test_a_section_left_partial_takes_the_models_defaults() -> None:
    """`--param training.patience=5` sends a partial object: the rest keeps its defaults."""
    assert section("training", {"patience": 5}) == TrainingConfig(patience=5)
    assert section("training", {}, train_max_epochs=3) == TrainingConfig(max_epochs=3)


def test_an_empty_root_means_unset_and_keeps_the_tuners_search_key() -> None:
    tuning = section("tuning", {}, tuner_root="", tune_max_epochs=9)
    assert tuning.tuner_root is None
    assert tuning == TuningConfig()  # the search key hashes this dump: unchanged for runs before sections


def test_bad_values_name_the_parameter_and_the_key() -> None:
    with pytest.raises(ConfigError, match=r"pipeline parameter 'tuning'.*\n  fator"):
        section("tuning", {"fator": 2})
    with pytest.raises(ConfigError, match=r"pipeline parameter 'training'.*\n  min_delta"):
        section("training", {"min_delta": -1})
    with pytest.raises(ConfigError, match="'tune_max_epochs' does not belong to section 'training'"):
        section("training", {}, tune_max_epochs=3)
    with pytest.raises(ConfigError, match="unknown configuration section 'trainning'"):
        section("trainning", {})


def test_the_defaults_are_the_models_defaults_with_the_shipped_sample() -> None:
    defaults = pipeline_defaults()
    assert defaults["data_uri"] == "sample://penguins" and defaults["label"] == "species"
    assert defaults["tuner_root"] == "" and defaults["export_root"] == ""
    assert defaults["gpu_count"] == 1
    assert validate_arguments({}) == Config(data={"uri": "sample://penguins", "label": "species"})


def test_every_parameter_has_a_description_read_from_the_models() -> None:
    descriptions = parameter_descriptions()
    assert set(descriptions) == set(pipeline_defaults())
    assert descriptions["train_max_epochs"] == field_descriptions(TrainingConfig)["max_epochs"]
    assert descriptions["tune_iterations"].startswith("Times the whole Hyperband schedule is repeated")
    assert "min_delta" in descriptions["training"]  # a new field is listed with no second copy to edit
    assert all(text and "\n" not in text for text in descriptions.values())


def test_field_descriptions_join_continuation_lines_and_inherit() -> None:
    from tunepipe.config import DataConfig

    found = field_descriptions(DataConfig)
    assert found["allowed_roots"].startswith("Local folders that local data paths")  # from InputLimits
    assert "(default 10 million" in found["max_rows"] and "float32 arrays" in found["max_rows"]
    assert set(found) == set(DataConfig.model_fields)


def test_every_field_of_every_section_is_documented() -> None:
    """The UI shows these descriptions; a field without one would be a bare name there."""
    undocumented = {name: sorted(set(model.model_fields) - set(field_descriptions(model)))
                    for name, model in section_models().items() if name not in ("split", "search_space")}
    assert {name: fields for name, fields in undocumented.items() if fields} == {}


def _problems(error: pytest.ExceptionInfo[ConfigError]) -> str:
    """A validation message without its first line, which names the source (file or parameters)."""
    header, _, problems = str(error.value).partition("\n")
    assert header.startswith("invalid configuration in ")
    return problems


# The same mistake made in a configuration file and in the Kubeflow UI's parameters.
SAME_MISTAKE = {
    "thresholds not a mapping": ("evaluation:\n  thresholds: [0.9]\n", {"thresholds": [0.9]}),
    "an unknown metric": ("evaluation:\n  thresholds: {acuracy: 0.9}\n", {"thresholds": {"acuracy": 0.9}}),
    "a bad key in a section": ("training:\n  patiense: 3\n", {"training": {"patiense": 3}}),
    "an out-of-range value in a section": ("training:\n  patience: 0\n", {"training": {"patience": 0}}),
    "an out-of-range UI parameter": ("tuning:\n  max_epochs: 0\n", {"tune_max_epochs": 0}),
    "a section that is not a mapping": ("split: 0.2\n", {"split": 0.2}),
}


@pytest.mark.parametrize("mistake", SAME_MISTAKE)
def test_validate_arguments_gives_load_configs_message_for_the_same_mistake(mistake: str, tmp_path) -> None:
    text, arguments = SAME_MISTAKE[mistake]
    (tmp_path / "run.yaml").write_text(text)
    with pytest.raises(ConfigError) as from_file:
        load_config(tmp_path / "run.yaml")
    with pytest.raises(ConfigError, match=r"^invalid configuration in pipeline parameters:\n") as from_ui:
        validate_arguments(arguments)
    assert _problems(from_ui) == _problems(from_file)
    assert _problems(from_ui).count("\n  ") == 0  # one problem: the defaults of the rest are valid


def test_a_misspelt_metric_is_named_with_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"evaluation.thresholds: .*unknown metric 'acuracy' for any task "
                                          r"\(known: accuracy, f1, .*rmse"):
        validate_arguments({"thresholds": {"acuracy": 0.9}})
    assert validate_arguments({"thresholds": {"rmse": 1.0}}).evaluation.thresholds == {"rmse": 1.0}  # task: auto


def test_validate_arguments_refuses_what_no_section_holds() -> None:
    with pytest.raises(ConfigError, match=r"unknown pipeline parameter\(s\) 'tresholds'; parameters: data_uri, "):
        validate_arguments({"tresholds": {}})
    for gpus in (-1, 1.5, True):
        with pytest.raises(ConfigError, match=f"'gpu_count': expected a whole number of GPUs, 0 or more, got {gpus!r}"):
            validate_arguments({"gpu_count": gpus})


def test_validate_arguments_checks_the_rules_that_span_sections() -> None:
    """The components validate one section each; the first step also sees a label missing for the data."""
    with pytest.raises(ConfigError, match=r"data\.label is required when data\.uri is set"):
        validate_arguments({"data_uri": "gs://bucket/table.csv", "label": ""})
    assert section("data", {}, data_uri="gs://bucket/table.csv", label="").label is None  # what ingest alone sees
