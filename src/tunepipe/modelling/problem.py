"""The tuning problem from the preprocess step's folders, and where a search keeps its state.

Shared by the tune step (:mod:`tunepipe.tune_step`) and the distributed worker
(:mod:`tunepipe.execution.tuner_worker`), which builds the same problem in every
process; kept here so that modelling never imports the step layer above it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import NamedTuple

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import SearchSpace, TuningConfig
from tunepipe.data.preprocess import read_spec
from tunepipe.data.sampling import Arrays
from tunepipe.data.split import Split
from tunepipe.modelling.chooser import hypermodel_for
from tunepipe.modelling.hyperparameters import PipelineHyperModel
from tunepipe.storage.hashing import sha256_file
from tunepipe.storage.tuner_state import search_key, tuner_directory


class TuningProblem(NamedTuple):
    """What a search runs on: the hypermodel, the (sampled) training and validation data, and
    how each split was sampled (``{"train": ..., "validation": ...}``, each a
    :class:`~tunepipe.data.sampling.SampleDescription` as a dict)."""

    hypermodel: PipelineHyperModel
    train: Arrays
    validation: Arrays
    sample: dict[str, dict[str, object]]


def tuning_problem(
    train_dir: PathLike, validation_dir: PathLike, spec_dir: PathLike, search_space: SearchSpace,
    sample_rows: int = 0, seed: int = 0,
) -> TuningProblem:
    """The hypermodel and the training and validation data, from the preprocess step's folders.

    Each split is cut to at most ``sample_rows`` rows (0, the default: every row) by a stratified
    sample seeded by ``seed`` (validation by ``seed + 1``): every process of a distributed search
    builds the same sample (:mod:`tunepipe.data.sampling`).
    """
    spec = read_spec(spec_dir)
    train, train_sample = Split.open(train_dir).sample(spec, sample_rows, seed)
    validation, validation_sample = Split.open(validation_dir).sample(spec, sample_rows, seed + 1)
    sample = {"train": train_sample.to_dict(), "validation": validation_sample.to_dict()}
    return TuningProblem(hypermodel_for(spec, search_space), train, validation, sample)


def problem_hash(spec_dir: PathLike) -> str:
    """SHA-256 of the preprocessing specification: what the model learns, from which statistics."""
    return sha256_file(Path(spec_dir) / artifacts.PREPROCESSING_SPEC_FILE)


def sample_key(sample: dict[str, dict[str, object]]) -> str:
    """What identifies a sample in the search key: empty when every row of both splits was kept."""
    if all(split["kept"] == split["rows"] for split in sample.values()):
        return ""
    return json.dumps(sample, sort_keys=True)


def tuner_location(
    tuning: TuningConfig, search_space: SearchSpace, seed: int, model_name: str, fingerprint: str,
    default_root: PathLike, problem: str = "", sample: str = "",
) -> str:
    """The tuner directory: ``<tuner_root or default_root>/<model_name>/<fingerprint>-<search hash>``;
    the search hash covers the search space, budget, seed, ``problem`` (:func:`problem_hash`) and
    ``sample`` (:func:`sample_key`: another sample is another search, never a resumed one)."""
    key = search_key(search_space.model_dump(exclude_none=True), tuning.model_dump(), seed, problem, sample)
    return tuner_directory(tuning.tuner_root or str(default_root), model_name, fingerprint, key)
