"""One placement vocabulary for the three kinds of parallel work: tuning, final training, folds.

``tuning.placement``, ``training.placement`` and ``evaluation.cv_placement`` are each a
:class:`Placement`: ``where`` the work runs (``auto``, ``step``, ``node``, ``cluster``) and how
many ``workers`` (0: chosen). :mod:`tunepipe.execution` turns one into a runner, by the measured
rules of :mod:`tunepipe.execution.placement`.

The keys these replace (``tuning.backend`` and ``tuning.workers``, ``training.replicas`` and
``training.workers``, ``evaluation.cv_workers``) are still read for one release: each section
maps them onto its placement (:func:`moved_to_placement`) and logs a warning naming the new key.
Giving an old key beside a new one that says otherwise is refused.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationError, model_validator

from tunepipe.config.base import _Section

log = logging.getLogger(__name__)

Where = Literal["auto", "step", "node", "cluster"]
# tuning.backend, read for one more release (TUNE_BACKENDS maps it onto where).
TuneBackend = Literal["auto", "single", "local", "kubernetes"]
MAX_WORKERS = 64


class Placement(_Section):
    """Where a step's parallel work runs, and on how many workers.

    Attributes:
        where: ``auto`` (default): the layout measured fastest for what the step sees (its
            section says how); ``step``: the step's own process, on one device; ``node``:
            ``workers`` processes or devices on the step's node (a Keras Tuner chief and
            workers, ``MirroredStrategy`` replicas, fold processes); ``cluster``: ``workers``
            pods the step creates on Kubernetes (a Keras Tuner chief and worker Job, a Kubeflow
            Trainer ``TrainJob``; not for cross-validation).
        workers: How many (default 0: chosen; with ``node``, one per GPU the step sees when it
            sees two or more, else the section's measured CPU count). ``auto`` takes no count,
            ``step`` at most 1.
    """

    where: Where = "auto"
    workers: int = Field(0, ge=0, le=MAX_WORKERS)

    @model_validator(mode="after")
    def _workers_fit(self) -> Placement:
        if self.where == "auto" and self.workers:
            raise ValueError(f"workers {self.workers} with where auto: auto chooses the count itself; "
                             "name where (node or cluster) to choose it")
        if self.where == "step" and self.workers > 1:
            raise ValueError(f"workers {self.workers} with where step: the step's own process is one worker; "
                             "choose node or cluster")
        return self


def placement(where: Where, workers: int = 0) -> dict[str, Any]:
    """A placement as the plain values a section's raw input holds."""
    return {"where": where, "workers": workers}


class _LegacyTuning(BaseModel):
    backend: TuneBackend = "auto"
    workers: int = Field(2, ge=1, le=MAX_WORKERS)


class _LegacyTraining(BaseModel):
    replicas: int = Field(0, ge=0, le=MAX_WORKERS)
    workers: int = Field(1, ge=1, le=MAX_WORKERS)


class _LegacyEvaluation(BaseModel):
    cv_workers: int = Field(0, ge=0, le=MAX_WORKERS)


TUNE_BACKENDS: dict[str, Where] = {"auto": "auto", "single": "step", "local": "node", "kubernetes": "cluster"}


def tuning_placement(old: _LegacyTuning) -> dict[str, Any]:
    """``tuning.backend``/``workers``: single -> step, local -> node, kubernetes -> cluster, each
    with the workers given (their old default, 2, when not); auto had no use for a count."""
    where = TUNE_BACKENDS[old.backend]
    return placement(where, old.workers if where in ("node", "cluster") else 0)


def training_placement(old: _LegacyTraining) -> dict[str, Any]:
    """``training.replicas``/``workers``: workers N > 1 -> cluster N; replicas 0 -> auto, 1 -> step,
    N -> node N (both above 1 was refused, and still is)."""
    if old.workers > 1 and old.replicas > 1:
        raise ValueError(f"workers {old.workers} and replicas {old.replicas}: choose one way to spread final "
                         "training (several workers each use their own pod's devices)")
    if old.workers > 1:
        return placement("cluster", old.workers)
    return _count(old.replicas)


def evaluation_placement(old: _LegacyEvaluation) -> dict[str, Any]:
    """``evaluation.cv_workers``: 0 -> auto, 1 -> step, N -> node N."""
    return _count(old.cv_workers)


def _count(count: int) -> dict[str, Any]:
    """A count of the step's own processes or devices: 0 (auto) -> auto, 1 -> step, N -> node N."""
    if count == 0:
        return placement("auto")
    return placement("step") if count == 1 else placement("node", count)


# section -> (its placement key, the old keys' model, how they map onto a placement)
LEGACY: dict[str, tuple[str, type[BaseModel], Callable[[Any], dict[str, Any]]]] = {
    "tuning": ("placement", _LegacyTuning, tuning_placement),
    "training": ("placement", _LegacyTraining, training_placement),
    "evaluation": ("cv_placement", _LegacyEvaluation, evaluation_placement),
}


def _is_default(value: Any) -> bool:
    """Whether a placement's raw value is the default one, as a whole section dumped with its
    defaults carries it (a configuration file read back, then ``--param tuning.backend=local``)."""
    return value in ({}, Placement().model_dump()) or value == Placement()


def moved_to_placement(section: str, raw: Any) -> Any:
    """``raw`` (a section's input) with its deprecated placement keys replaced by the new one.

    A ``before`` validator of each section calls it, so that a file, a pipeline parameter and a
    ``--param`` all read the old keys alike.

    Raises:
        ValueError: An old key is given beside the new one set to anything but its default (a
            default one is what a section dumped whole carries: the old key then decides), or an
            old key's value is invalid (named as ``section.key``).
    """
    new_key, model, convert = LEGACY[section]
    if not isinstance(raw, dict):
        return raw
    old = {key: raw[key] for key in model.model_fields if key in raw}
    if not old:
        return raw
    names = ", ".join(f"{section}.{key}" for key in old)
    if new_key in raw and not _is_default(raw[new_key]):
        raise ValueError(f"{names} and {section}.{new_key} both given: the former is the deprecated spelling "
                         f"of the latter; keep {section}.{new_key} only")
    try:
        parsed = model.model_validate(old)
    except ValidationError as error:
        problems = "; ".join(f"{section}.{'.'.join(map(str, item['loc']))}: {item['msg']}" for item in error.errors())
        raise ValueError(problems) from None
    converted = convert(parsed)
    log.warning("%s: deprecated, removed in the next release; read as %s.%s %s: write that instead", names, section,
                new_key, json.dumps(converted))
    return {**{key: value for key, value in raw.items() if key not in old}, new_key: converted}
