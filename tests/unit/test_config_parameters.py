"""The pipeline boundary: sections travel whole, a few UI values by name, all derived from the models."""

from __future__ import annotations

import pytest

from tunepipe.config import Config, TrainingConfig, TuningConfig, load_config, pipeline_arguments, section
from tunepipe.config.parameters import (
    UI_PARAMETERS,
    config_from_arguments,
    field_descriptions,
    parameter_descriptions,
    pipeline_defaults,
    section_models,
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
    "tuning": {"max_epochs": 3, "factor": 2, "hyperband_iterations": 2, "tuner_root": "/tmp/tuner", "workers": 3},
    "search_space": {"units": 64},
    "training": {"max_epochs": 7, "patience": 2, "min_delta": 0.01},
    "evaluation": {"thresholds": {"accuracy": 0.5}, "cv_folds": 0, "champion_margin": 0.1},
    "export": {"model_name": "m", "export_root": "/tmp/models"},
}


def test_every_section_round_trips_through_the_pipeline_parameters() -> None:
    config = load_config(overrides=CHANGED)
    assert config_from_arguments(pipeline_arguments(config)) == config


def test_a_ui_value_has_one_place() -> None:
    arguments = pipeline_arguments(load_config(overrides=CHANGED))
    for parameter, (owner, field) in UI_PARAMETERS.items():
        if owner in arguments:
            assert field not in arguments[owner], parameter
    assert arguments["tune_max_epochs"] == 3 and arguments["tuning"]["workers"] == 3


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
    assert config_from_arguments({}) == Config(data={"uri": "sample://penguins", "label": "species"})


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
