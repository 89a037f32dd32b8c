"""Shared pieces of the configuration models: the section base class and value types."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

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
TuneBackend = Literal["single", "local", "kubernetes"]
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
