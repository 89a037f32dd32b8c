"""Configuration models, YAML loading and pipeline parameters."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from tunepipe.config import (
    Config,
    FloatRange,
    IntRange,
    Placement,
    SearchSpace,
    SplitConfig,
    TuningConfig,
    load_config,
    pipeline_arguments,
    validate_section,
)
from tunepipe.errors import ConfigError

pytestmark = pytest.mark.unit


def _contains_none(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_contains_none(item) for item in value.values())
    if isinstance(value, list | tuple):
        return any(_contains_none(item) for item in value)
    return False


def test_defaults_validate_and_match_documented_values() -> None:
    config = load_config()
    assert config == Config()
    assert config.seed == 42
    assert config.data.task == "auto"
    assert config.data.uri is None
    assert (config.split.val_fraction, config.split.test_fraction) == (0.15, 0.15)
    assert (config.tuning.max_epochs, config.tuning.factor, config.tuning.hyperband_iterations) == (9, 3, 1)
    assert config.tuning.objective == "val_loss"
    assert (config.training.max_epochs, config.training.patience) == (100, 10)
    assert config.export.model_name == "model"
    assert config.search_space.batch_size == [16, 32, 64]


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(Exception):  # noqa: B017 - pydantic raises its own ValidationError type
        config.seed = 1  # type: ignore[misc]
    assert config.seed == 42


@pytest.mark.parametrize(
    ("overrides", "key_path"),
    [
        ({"tuning": {"bogus": 1}}, "tuning.bogus"),
        ({"bogus_section": {"a": 1}}, "bogus_section"),
        ({"search_space": {"units": {"min": 1, "max": 2, "stepp": 1}}}, "search_space.units.stepp"),
    ],
)
def test_unknown_key_names_its_path(overrides: dict, key_path: str) -> None:
    with pytest.raises(ConfigError, match=key_path.replace(".", r"\.")):
        load_config(overrides=overrides)


@pytest.mark.parametrize(
    ("overrides", "key_path"),
    [
        ({"tuning": {"max_epochs": 1}}, "tuning.max_epochs"),
        ({"tuning": {"factor": 1}}, "tuning.factor"),
        ({"split": {"val_fraction": 0.6}}, "split.val_fraction"),
        ({"split": {"test_fraction": 0.0}}, "split.test_fraction"),
        ({"seed": -1}, "seed"),
        ({"training": {"max_epochs": 0}}, "training.max_epochs"),
        ({"export": {"model_name": "../escape"}}, "export.model_name"),
        ({"search_space": {"learning_rate": {"min": 0.0, "max": 0.1, "sampling": "log"}}},
         "search_space.learning_rate"),
        ({"search_space": {"hidden_layers": {"min": 3, "max": 1}}}, "search_space.hidden_layers"),
        ({"search_space": {"batch_size": [0, 32]}}, "search_space"),
        ({"search_space": {"activation": []}}, "search_space.activation"),
    ],
)
def test_out_of_range_values_raise_config_error(overrides: dict, key_path: str) -> None:
    with pytest.raises(ConfigError, match=key_path.replace(".", r"\.")):
        load_config(overrides=overrides)


def test_range_models_reject_bad_bounds_directly() -> None:
    with pytest.raises(ConfigError, match="must not exceed"):
        validate_section(IntRange, {"min": 5, "max": 2}, "test")
    with pytest.raises(ConfigError, match="log sampling needs min > 0"):
        validate_section(FloatRange, {"min": 0, "max": 1, "sampling": "log"}, "test")
    assert validate_section(IntRange, {"min": 2, "max": 2}, "test") == IntRange(min=2, max=2)


def test_validate_section_names_the_source() -> None:
    with pytest.raises(ConfigError, match="pipeline parameters"):
        validate_section(SplitConfig, {"val_fraction": 0.9}, "pipeline parameters")
    assert validate_section(TuningConfig, {"max_epochs": 3}, "x").max_epochs == 3


def test_load_config_from_yaml_file(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text(
        "seed: 7\n"
        "data:\n  uri: data.csv\n  label: y\n  task: regression\n"
        "tuning:\n  max_epochs: 3\n"
        "search_space:\n  units: {min: 8, max: 8}\n  batch_size: [8]\n"
    )
    config = load_config(path)
    assert config.seed == 7
    assert (config.data.uri, config.data.label, config.data.task) == ("data.csv", "y", "regression")
    assert config.tuning.max_epochs == 3
    assert config.tuning.factor == 3  # untouched keys keep defaults
    assert config.search_space.units == IntRange(min=8, max=8)
    assert config.search_space.batch_size == [8]


def test_empty_yaml_file_means_defaults(tmp_path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("")
    assert load_config(path) == Config()


def test_overrides_win_over_file(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("tuning:\n  max_epochs: 3\n  factor: 4\n")
    config = load_config(path, overrides={"tuning": {"max_epochs": 5}, "seed": 1})
    assert config.tuning.max_epochs == 5
    assert config.tuning.factor == 4
    assert config.seed == 1


def test_invalid_value_in_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "bad_value.yaml"
    path.write_text("tuning:\n  max_epochs: 1\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))) as caught:
        load_config(path)
    assert "tuning.max_epochs" in str(caught.value)


def test_missing_file_names_the_file(tmp_path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


def test_invalid_yaml_names_the_file(tmp_path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text("tuning: [max_epochs: 3\n  factor: {\n")
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


@pytest.mark.parametrize("content", ["- 1\n- 2\n", "just a string\n", "42\n"])
def test_non_mapping_top_level_names_the_file(tmp_path, content: str) -> None:
    path = tmp_path / "listing.yaml"
    path.write_text(content)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)


def test_none_overrides_change_nothing(tmp_path) -> None:
    path = tmp_path / "run.yaml"
    path.write_text("seed: 5\ndata:\n  uri: d.csv\n  label: y\ntuning:\n  max_epochs: 4\n")
    base = load_config(path)
    overridden = load_config(
        path,
        overrides={"seed": None, "data": {"uri": None, "label": None, "task": None}, "tuning": {"max_epochs": None}},
    )
    assert overridden == base
    assert overridden.seed == 5
    assert overridden.data.label == "y"
    assert overridden.tuning.max_epochs == 4


def test_data_uri_without_label_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"data\.label"):
        load_config(overrides={"data": {"uri": "some.csv"}})
    assert load_config(overrides={"data": {"uri": "some.csv", "label": "y"}}).data.label == "y"


def test_pipeline_arguments_keys_and_values() -> None:
    config = load_config(
        overrides={
            "seed": 3,
            "tuning": {"max_epochs": 4, "factor": 2},
            "training": {"patience": 2},
            "export": {"model_name": "penguins"},
        }
    )
    arguments = pipeline_arguments(config)
    # data_uri, label, tuner_root and export_root default to None and are left out for the pipeline's defaults
    assert set(arguments) == {
        "task", "seed", "tune_max_epochs", "tune_iterations", "train_max_epochs", "model_name", "thresholds",
        "data", "cleaning", "images", "split", "preprocessing", "augmentation", "tuning", "search_space",
        "training", "evaluation", "deploy_enabled", "deploy",
    }
    assert arguments["seed"] == 3
    assert arguments["tune_max_epochs"] == 4
    assert arguments["tuning"]["factor"] == 2
    assert "max_epochs" not in arguments["tuning"]  # a UI parameter has one place
    assert arguments["training"]["patience"] == 2
    assert arguments["model_name"] == "penguins"


def test_pipeline_arguments_include_set_optional_values() -> None:
    config = load_config(overrides={"data": {"uri": "d.csv", "label": "y"}, "export": {"export_root": "/tmp/x"}})
    arguments = pipeline_arguments(config)
    assert arguments["data_uri"] == "d.csv"
    assert arguments["label"] == "y"
    assert arguments["export_root"] == "/tmp/x"


def test_search_space_argument_has_no_none_and_round_trips() -> None:
    arguments = pipeline_arguments(Config())
    space = arguments["search_space"]
    assert not _contains_none(space)
    assert "step" not in space["l2"]  # l2 has no step: the None is dropped, not sent
    assert space["units"] == {"min": 16, "max": 128, "step": 16}
    assert validate_section(SearchSpace, space, "search_space parameter") == Config().search_space


def test_search_space_survives_json_numbers_as_floats() -> None:
    """Pipeline parameters travel as protobuf Structs, where every number is a double."""

    def as_floats(value: object) -> object:
        if isinstance(value, dict):
            return {key: as_floats(item) for key, item in value.items()}
        if isinstance(value, list):
            return [as_floats(item) for item in value]
        if isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value

    space = validate_section(SearchSpace, as_floats(pipeline_arguments(Config())["search_space"]), "parameters")
    assert space == SearchSpace()
    assert all(isinstance(size, int) for size in space.batch_size)
    with pytest.raises(ConfigError, match="units"):
        validate_section(SearchSpace, {"units": {"min": 16.5, "max": 32}}, "parameters")


@pytest.mark.parametrize("content", ["data: penguins.csv\n", "tuning: 5\n"])
def test_scalar_section_with_overrides_names_the_file(tmp_path, content: str) -> None:
    """The CLI always passes section overrides (with None for options not given), so a file whose
    section is a scalar instead of a mapping must still fail as a ConfigError naming the file."""
    path = tmp_path / "scalar_section.yaml"
    path.write_text(content)
    section = content.split(":")[0]
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path)
    with pytest.raises(ConfigError, match=re.escape(str(path))):
        load_config(path, overrides={section: {"label": None} if section == "data" else {"factor": None}})


def test_documented_default_file_is_exactly_the_defaults() -> None:
    """configs/default.yaml documents every key; it must not drift from the code's defaults."""
    documented = Path(__file__).resolve().parents[2] / "configs" / "default.yaml"
    assert load_config(documented) == Config()
    raw = yaml.safe_load(documented.read_text())
    assert set(raw) == set(Config.model_fields), "every section is documented"
    for section, model in Config.model_fields.items():
        if isinstance(raw[section], dict):
            assert set(raw[section]) == set(model.annotation.model_fields), section


def test_cleaning_rules_validate_per_column() -> None:
    config = load_config(overrides={"cleaning": {"columns": {"age": {"missing": "mean", "outliers": "iqr"}}}})
    assert config.cleaning.rule("age").missing == "mean"
    assert config.cleaning.rule("other").missing is None  # falls back to the global setting
    with pytest.raises(ConfigError, match=r"cleaning\.columns\.age\.missing"):
        load_config(overrides={"cleaning": {"columns": {"age": {"missing": "guess"}}}})
    with pytest.raises(ConfigError, match=r"images\.max_corrupt_fraction"):
        load_config(overrides={"images": {"max_corrupt_fraction": 1.5}})
    with pytest.raises(ConfigError, match="kernel sizes must be odd"):
        load_config(overrides={"search_space": {"kernel_size": [4]}})


def test_new_sections_travel_as_pipeline_parameters_and_back() -> None:
    from tunepipe.config import AugmentationConfig, CleaningConfig

    config = load_config(overrides={"cleaning": {"outliers": "zscore", "columns": {"id": {"drop": True}}},
                                    "augmentation": {"oversample": True}, "data": {"baseline_schema_uri": "gs://bkt/s"}})
    arguments = pipeline_arguments(config)
    assert validate_section(CleaningConfig, arguments["cleaning"], "p") == config.cleaning
    assert validate_section(AugmentationConfig, arguments["augmentation"], "p") == config.augmentation
    assert arguments["data"]["baseline_schema_uri"] == "gs://bkt/s"
    assert arguments["preprocessing"]["normalization"] == "zscore" and arguments["images"]["height"] == 32


def test_a_plain_number_fixes_any_range() -> None:
    space = load_config(overrides={"search_space": {"units": 64, "dropout": 0, "learning_rate": 0.01}}).search_space
    assert space.units == IntRange(min=64, max=64)
    assert space.dropout == FloatRange(min=0.0, max=0.0)
    assert space.learning_rate == FloatRange(min=0.01, max=0.01)
    with pytest.raises(ConfigError, match=r"search_space\.units"):
        load_config(overrides={"search_space": {"units": 12.5}})


def test_new_tuning_and_training_values_are_validated() -> None:
    defaults = Config()
    assert defaults.search_space.optimizer == ["adam", "rmsprop"]
    assert (defaults.search_space.l1.min, defaults.search_space.l1.max) == (0.0, 1e-4)
    assert (defaults.tuning.placement, defaults.tuning.tuner_root) == (Placement(where="auto", workers=0), None)
    assert defaults.tuning.max_consecutive_failed_trials == 3
    assert (defaults.training.lr_schedule, defaults.training.lr_factor, defaults.training.lr_patience) == (
        "plateau", 0.5, 4)
    for overrides, key in [
        ({"search_space": {"optimizer": ["adamw"]}}, "search_space.optimizer"),
        ({"search_space": {"l1": {"min": -1e-3, "max": 0.0}}}, "search_space"),
        ({"tuning": {"backend": "ray"}}, "tuning.backend"),
        ({"tuning": {"workers": 0}}, "tuning.workers"),
        ({"tuning": {"placement": {"where": "everywhere"}}}, "tuning.placement.where"),
        ({"training": {"placement": {"where": "node", "workers": 65}}}, "training.placement.workers"),
        ({"training": {"lr_factor": 1.5}}, "training.lr_factor"),
        ({"training": {"lr_schedule": "cosine"}}, "training.lr_schedule"),
    ]:
        with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
            load_config(overrides=overrides)


@pytest.mark.parametrize(
    "root", ["s3a://bucket/models", "http://host/models", "gs://", "gs://Bad_Bucket/x", "s3://my_bucket/x",
             "s3://", "/srv/../etc", "file://host/x"]
)
@pytest.mark.parametrize("section", ["export", "tuning"])
def test_roots_are_local_folders_or_object_stores_only(root: str, section: str) -> None:
    key = "export_root" if section == "export" else "tuner_root"
    with pytest.raises(ConfigError, match=rf"{section}\.{key}"):
        load_config(overrides={section: {key: root}})
    assert getattr(getattr(load_config(overrides={section: {key: "gs://bucket/x"}}), section), key) == "gs://bucket/x"
    assert getattr(getattr(load_config(overrides={section: {key: "s3://bucket/x"}}), section), key) == "s3://bucket/x"
    assert getattr(getattr(load_config(overrides={section: {key: "file:///srv/x"}}), section), key) == "/srv/x"


def test_a_shipped_sample_names_its_own_label() -> None:
    assert load_config(overrides={"data": {"uri": "sample://digits"}}).data.label == "label"
    assert load_config(overrides={"data": {"uri": "sample://penguins"}}).data.label == "species"
    assert load_config(overrides={"data": {"uri": "sample://digits", "label": "y"}}).data.label == "y"


@pytest.mark.parametrize(("section", "old", "new"), [
    ("tuning", {"backend": "single"}, Placement(where="step")),
    ("tuning", {"backend": "single", "workers": 4}, Placement(where="step")),  # single had no use for workers
    ("tuning", {"backend": "local"}, Placement(where="node", workers=2)),  # workers' old default
    ("tuning", {"backend": "local", "workers": 3}, Placement(where="node", workers=3)),
    ("tuning", {"backend": "kubernetes", "workers": 4}, Placement(where="cluster", workers=4)),
    ("tuning", {"backend": "auto", "workers": 4}, Placement()),  # auto chose its own count
    ("training", {"replicas": 0}, Placement()),
    ("training", {"replicas": 1}, Placement(where="step")),
    ("training", {"replicas": 2}, Placement(where="node", workers=2)),
    ("training", {"workers": 1}, Placement()),
    ("training", {"workers": 3, "replicas": 1}, Placement(where="cluster", workers=3)),
    ("evaluation", {"cv_workers": 0}, Placement()),
    ("evaluation", {"cv_workers": 1}, Placement(where="step")),
    ("evaluation", {"cv_workers": 3}, Placement(where="node", workers=3)),
])
def test_the_old_placement_keys_are_read_for_a_release_with_a_warning_naming_the_new_key(
    section: str, old: dict, new: Placement, caplog: pytest.LogCaptureFixture
) -> None:
    key = "cv_placement" if section == "evaluation" else "placement"
    with caplog.at_level("WARNING", logger="tunepipe.config.placement"):
        config = load_config(overrides={section: old})
    assert getattr(getattr(config, section), key) == new
    [warning] = [r.getMessage() for r in caplog.records]
    assert f"{section}.{key}" in warning and all(f"{section}.{name}" in warning for name in old)
    assert "deprecated" in warning


def test_an_old_placement_key_beside_the_new_one_is_refused() -> None:
    for section, old, new in [("tuning", "backend", "placement"), ("training", "replicas", "placement"),
                              ("evaluation", "cv_workers", "cv_placement")]:
        value = "local" if old == "backend" else 2
        with pytest.raises(ConfigError, match=rf"{section}\.{old} and {section}\.{new} both given"):
            load_config(overrides={section: {old: value, new: {"where": "node", "workers": 2}}})


def test_the_new_placement_keys_log_nothing_and_refuse_what_cannot_run(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="tunepipe.config.placement"):
        config = load_config(overrides={"tuning": {"placement": {"where": "cluster", "workers": 4}},
                                        "training": {"placement": {"where": "node"}},
                                        "evaluation": {"cv_placement": {"where": "step"}}})
    assert caplog.records == []
    assert (config.tuning.placement.where, config.training.placement.where) == ("cluster", "node")
    for overrides, message in [
        ({"tuning": {"placement": {"where": "auto", "workers": 2}}}, "auto chooses the count itself"),
        ({"training": {"placement": {"where": "step", "workers": 2}}}, "the step's own process is one worker"),
        ({"training": {"placement": {"where": "cluster"}}}, "where cluster needs workers 2 or more"),
        ({"evaluation": {"cv_placement": {"where": "cluster", "workers": 2}}}, "not offered for cross-validation"),
    ]:
        with pytest.raises(ConfigError, match=message):
            load_config(overrides=overrides)


def test_an_old_key_given_with_param_over_a_whole_configuration_file_still_works(tmp_path: Path) -> None:
    """A file read back carries every section whole, the default placement included; an old key given
    on top of it (``--param tuning.backend=local``) decides, as it did before the new key existed."""
    from pipelines.remote import run_parameters
    from tunepipe.config.parameters import validate_arguments

    path = tmp_path / "run.yaml"
    path.write_text("tuning: {max_epochs: 3}\n")
    arguments = run_parameters(str(path), [("tuning.backend", "local"), ("training.replicas", 2)])
    assert arguments["tuning"]["placement"] == Placement().model_dump()  # the file's default, beside the old key
    config = validate_arguments(arguments)
    assert config.tuning.placement == Placement(where="node", workers=2)
    assert config.training.placement == Placement(where="node", workers=2)
