"""The pipeline boundary: how a :class:`~tunepipe.config.Config` becomes pipeline parameters and back.

Configuration crosses into Kubeflow Pipelines as whole sections: each section below is one
``dict`` parameter holding that model's fields, validated once per component by
:func:`section`. A few values a team changes from the Kubeflow UI (the data, the label, the
budgets, where models go) are also named top-level parameters (:data:`UI_PARAMETERS`); they
are taken out of their section's dict so that each value has one place. The parameter names,
defaults and descriptions are all derived here from the models, so a new field (say
``training.min_delta``) needs no edit in the pipeline or the components.
"""

from __future__ import annotations

import re
from typing import Any

from tunepipe.config.base import _Section, validate_section
from tunepipe.config.run import Config
from tunepipe.datasets import DEFAULT_SAMPLE_LABEL, DEFAULT_SAMPLE_URI
from tunepipe.errors import ConfigError

# Top-level pipeline parameter -> (section, field); "" is the Config itself (``seed``).
UI_PARAMETERS: dict[str, tuple[str, str]] = {
    "data_uri": ("data", "uri"),
    "label": ("data", "label"),
    "task": ("data", "task"),
    "seed": ("", "seed"),
    "tune_max_epochs": ("tuning", "max_epochs"),
    "tune_iterations": ("tuning", "hyperband_iterations"),
    "train_max_epochs": ("training", "max_epochs"),
    "tuner_root": ("tuning", "tuner_root"),
    "export_root": ("export", "export_root"),
    "model_name": ("export", "model_name"),
    "thresholds": ("evaluation", "thresholds"),
    "deploy_enabled": ("deploy", "enabled"),  # a pipeline condition needs it as a parameter of its own
}
# Pipeline parameters that are not configuration: they place the tune and train steps.
PLACEMENT_PARAMETERS: dict[str, tuple[Any, str]] = {
    "gpu_count": (1, "GPUs for each of the tune and train steps (when compiled for GPUs), and for each "
                          "worker pod of tuning on the cluster (tuning.placement where cluster)."),
}
# What the pipeline's defaults leave unset in a Config, so that one click in the UI runs.
_UI_DEFAULTS = {"data_uri": DEFAULT_SAMPLE_URI, "label": DEFAULT_SAMPLE_LABEL, "tuner_root": "", "export_root": ""}


def section_models() -> dict[str, type[_Section]]:
    """Every section that travels as one ``dict`` parameter, by name (the Config's field order).

    ``export`` holds only UI parameters, so it travels as those alone.
    """
    models = {name: field.annotation for name, field in Config.model_fields.items()
              if isinstance(field.annotation, type) and issubclass(field.annotation, _Section)}
    return {name: model for name, model in models.items() if set(model.model_fields) - _promoted(name)}


def _promoted(section_name: str) -> set[str]:
    return {field for owner, field in UI_PARAMETERS.values() if owner == section_name}


def _strip_promoted(section_name: str, values: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in values.items() if key not in _promoted(section_name)}


def pipeline_arguments(config: Config) -> dict[str, Any]:
    """A configuration as the pipeline's parameters: the UI values, then one dict per section.

    ``None`` values are left out so that the pipeline's own defaults apply.
    """
    arguments: dict[str, Any] = {}
    for parameter, (section_name, field) in UI_PARAMETERS.items():
        value = getattr(getattr(config, section_name) if section_name else config, field)
        arguments[parameter] = dict(value) if isinstance(value, dict) else value
    for name in section_models():
        arguments[name] = _strip_promoted(name, getattr(config, name).model_dump(mode="json", exclude_none=True))
    return {name: value for name, value in arguments.items() if value is not None}


def pipeline_defaults() -> dict[str, Any]:
    """Every pipeline parameter's default: :func:`pipeline_arguments` of the default Config, with
    the shipped sample as data, no tuner or export root (the run's own artifacts), and placement."""
    defaults = {**pipeline_arguments(Config()), **_UI_DEFAULTS}
    defaults.update({name: default for name, (default, _) in PLACEMENT_PARAMETERS.items()})
    ordered = [*UI_PARAMETERS, *PLACEMENT_PARAMETERS, *section_models()]
    return {name: defaults[name] for name in ordered}


def section(name: str, values: dict[str, Any] | None, **ui_values: Any) -> Any:
    """Builds one section from its ``dict`` parameter and the UI parameters that belong to it.

    The one helper every component validates its sections with, so that the rules live in the
    models alone.

    Args:
        name: The section, e.g. ``"tuning"``.
        values: Its dict parameter; keys left out take the model's defaults.
        **ui_values: UI parameters by their pipeline names (``tune_max_epochs=9``); an empty
            string for a field whose default is ``None`` (a root left empty) means ``None``.

    Returns:
        The section's model (e.g. :class:`~tunepipe.config.TuningConfig`), validated.

    Raises:
        ConfigError: An unknown key, a UI parameter of another section, or an invalid value,
            naming the parameter.
    """
    model = _section_model(name)
    return validate_section(model, _with_ui_values(name, values or {}, ui_values), f"pipeline parameter {name!r}")


def _with_ui_values(name: str, values: dict[str, Any], ui_values: dict[str, Any]) -> dict[str, Any]:
    """A section's dict with its UI parameters put back under their field names."""
    model = _section_model(name)
    merged = dict(values)
    for parameter, value in ui_values.items():
        owner, field = UI_PARAMETERS.get(parameter, (None, parameter))
        if owner != name:
            raise ConfigError(f"pipeline parameter {parameter!r} does not belong to section {name!r}")
        unset = value == "" and model.model_fields[field].default is None
        merged[field] = None if unset else value
    return merged


def validate_arguments(arguments: dict[str, Any]) -> Config:
    """Every pipeline parameter checked at once, with the messages :func:`~tunepipe.config.load_config`
    gives for the same mistake in a configuration file.

    The pipeline's first step calls it, so that a value mistyped in the Kubeflow UI stops the run
    before ingest instead of in the step that reads it (evaluate reads ``thresholds`` after tuning
    and training). The whole :class:`~tunepipe.config.Config` is validated in one go, so the rules
    that span sections run too and each problem is named by its path (``training.patience``),
    as in a file; only the message's source differs (``pipeline parameters``, not the file's name).

    Args:
        arguments: Pipeline parameters by name; those left out take their pipeline defaults
            (:func:`pipeline_defaults`). A section's dict and the UI parameters that belong to
            it are merged as :func:`section` merges them in the components.

    Returns:
        The run's configuration.

    Raises:
        ConfigError: An unknown parameter, a ``gpu_count`` below 0, an unknown key or an invalid
            value in any section (every problem listed).
    """
    unknown = sorted(set(arguments) - set(pipeline_defaults()))
    if unknown:
        raise ConfigError(f"unknown pipeline parameter(s) {', '.join(map(repr, unknown))}; "
                          f"parameters: {', '.join(pipeline_defaults())}")
    given = {**pipeline_defaults(), **arguments}
    _check_placement(given)
    raw: dict[str, Any] = {"seed": given["seed"]}
    for name in Config.model_fields:
        if name == "seed":
            continue
        values = given.get(name, {})
        ui_values = {parameter: given[parameter] for parameter, (owner, _) in UI_PARAMETERS.items() if owner == name}
        # A section that is not a mapping is left as it is, for the validation to name it.
        raw[name] = _with_ui_values(name, values, ui_values) if isinstance(values, dict) else values
    config: Config = validate_section(Config, raw, "pipeline parameters")
    return config


def _check_placement(given: dict[str, Any]) -> None:
    """``gpu_count`` is not configuration, but the UI can change it too: a whole number, 0 or more."""
    gpus = given["gpu_count"]
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 0:
        raise ConfigError(f"pipeline parameter 'gpu_count': expected a whole number of GPUs, 0 or more, got {gpus!r}")


def _section_model(name: str) -> type[_Section]:
    field = Config.model_fields.get(name)
    if field is None or not (isinstance(field.annotation, type) and issubclass(field.annotation, _Section)):
        raise ConfigError(f"unknown configuration section {name!r}")
    return field.annotation


_ATTRIBUTE = re.compile(r"^(\s*)(\w+):\s*(.*)$")


def field_descriptions(model: type) -> dict[str, str]:
    """The ``Attributes:`` entries of a model's docstring (and its bases'), one line each.

    The models document their fields there (Google style), so the pipeline's parameter
    descriptions are read from that one copy.
    """
    found: dict[str, str] = {}
    for klass in reversed(model.__mro__):
        if not issubclass(klass, _Section):  # pydantic's own docstrings have Attributes too
            continue
        lines = (klass.__doc__ or "").splitlines()
        inside, indent, current = False, 0, ""
        for line in lines:
            if line.strip() == "Attributes:":
                inside, indent, current = True, len(line) - len(line.lstrip()), ""
                continue
            if not inside or not line.strip():
                continue
            depth = len(line) - len(line.lstrip())
            match = _ATTRIBUTE.match(line)
            if depth <= indent:
                inside = False
            elif match and depth == indent + 4:
                current = match.group(2)
                found[current] = match.group(3).strip()
            elif current:
                found[current] += " " + line.strip()
    return found


def _summary(model: type) -> str:
    return " ".join((model.__doc__ or "").strip().split("\n\n")[0].split())


_MARKUP = re.compile(r":\w+:`~?([^`]+)`|``([^`]+)``")


def plain_text(text: str) -> str:
    """Docstring markup (``code``, :class:`X`) as the plain text the Kubeflow UI shows."""
    return _MARKUP.sub(lambda match: match.group(1) or match.group(2), text)


def parameter_descriptions() -> dict[str, str]:
    """One description per pipeline parameter, from the models' docstrings."""
    descriptions: dict[str, str] = {}
    for parameter, (section_name, field) in UI_PARAMETERS.items():
        model = _section_model(section_name) if section_name else Config
        descriptions[parameter] = field_descriptions(model).get(field) or f"{section_name}.{field}"
    for parameter, (_, text) in PLACEMENT_PARAMETERS.items():
        descriptions[parameter] = text
    for name, model in section_models().items():
        keys = ", ".join(sorted(set(model.model_fields) - _promoted(name)))
        descriptions[name] = (f"{_summary(model)} One JSON object; keys left out take their defaults: {keys} "
                              f"(the '{name}' section of configs/default.yaml).")
    return descriptions


def pipeline_docstring(summary: str) -> str:
    """A Google-style docstring for the pipeline function, which KFP turns into parameter descriptions."""
    lines = [summary, "", "Args:"]
    lines += [f"    {name}: {plain_text(text)}" for name, text in parameter_descriptions().items()]
    return "\n".join(lines)
