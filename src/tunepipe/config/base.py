"""Shared pieces of the configuration models: the section base class and value types."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from tunepipe.errors import ConfigError

Task = Literal["auto", "classification", "regression"]
Missing = Literal["drop", "mean", "median", "mode", "constant"]
Outliers = Literal["none", "iqr", "zscore"]
Flip = Literal["none", "horizontal", "vertical", "horizontal_and_vertical"]
Activation = Literal["relu", "tanh", "gelu", "elu", "selu", "swish"]
DEFAULT_ACTIVATIONS: tuple[Activation, ...] = ("relu", "tanh")
Optimizer = Literal["adam", "rmsprop", "sgd"]
# SGD is offered but not searched by default: with Hyperband's short first rounds it rarely
# catches up with the adaptive optimizers, so its trials would mostly be spent budget.
DEFAULT_OPTIMIZERS: tuple[Optimizer, ...] = ("adam", "rmsprop")
LrSchedule = Literal["plateau", "none"]


def _fixed_number(value: Any) -> Any:
    """A plain number in YAML or JSON (``units: 64``) means that value, fixed (min == max)."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return {"min": value, "max": value}
    return value


class _Section(BaseModel):
    """Frozen and strict about unknown keys, so that a typo is an error, not a silent default."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def storage_root(value: str | None) -> str | None:
    """A folder steps write to: empty, a local path, ``file://`` (mapped to its path),
    ``gs://bucket[/prefix]`` or ``s3://bucket[/prefix]``; checked by
    :func:`tunepipe.storage.uris.check_location`.

    Anything with another scheme (``http://``, ``ftp://``) would otherwise become a local folder
    of that odd name, so it is refused here, where the configuration is read.
    """
    if not value:
        return value
    return location(value, samples=False)


def location(value: str, samples: bool = True) -> str:
    """:func:`tunepipe.storage.uris.check_location` for a pydantic validator (which needs ``ValueError``)."""
    from tunepipe.errors import TunepipeError
    from tunepipe.storage.uris import check_location

    try:
        return check_location(value, samples=samples)
    except TunepipeError as refused:
        raise ValueError(str(refused)) from None


def _describe(error: ValidationError, source: str) -> str:
    problems = []
    for item in error.errors():
        where = ".".join(str(part) for part in item["loc"]) or "(top level)"
        problems.append(f"  {where}: {item['msg']} (got {item.get('input')!r})")
    return f"invalid configuration in {source}:\n" + "\n".join(problems)


def validate_section(model: type[_Section], values: dict[str, Any], source: str) -> Any:
    """Builds one configuration model, turning validation errors into :class:`ConfigError`.

    Args:
        model: The section class, e.g. :class:`SearchSpace`.
        values: Its raw values (from YAML or pipeline parameters).
        source: What to name in the error message (a file, or ``pipeline parameters``).
    """
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise ConfigError(_describe(error, source)) from None
