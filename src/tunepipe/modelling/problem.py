"""The tuning problem from the preprocess step's folders, and where a search keeps its state.

Shared by the tune step (:mod:`tunepipe.tune_step`) and the distributed worker
(:mod:`tunepipe.modelling.distributed_worker`), which builds the same problem in every
process; kept here so that modelling never imports the step layer above it.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import SearchSpace, TuningConfig
from tunepipe.data.preprocess import read_arrays, read_spec
from tunepipe.modelling.chooser import hypermodel_for
from tunepipe.modelling.hyperparameters import PipelineHyperModel
from tunepipe.storage.hashing import sha256_file
from tunepipe.storage.tuner_state import search_key, tuner_directory

Arrays = tuple[dict[str, np.ndarray], np.ndarray]


def tuning_problem(
    train_dir: PathLike, validation_dir: PathLike, spec_dir: PathLike, search_space: SearchSpace
) -> tuple[PipelineHyperModel, Arrays, Arrays]:
    """The hypermodel and the training and validation data, from the preprocess step's folders."""
    spec = read_spec(spec_dir)
    return hypermodel_for(spec, search_space), read_arrays(train_dir, spec), read_arrays(validation_dir, spec)


def problem_hash(spec_dir: PathLike) -> str:
    """SHA-256 of the preprocessing specification: what the model learns, from which statistics."""
    return sha256_file(Path(spec_dir) / artifacts.PREPROCESSING_SPEC_FILE)


def tuner_location(
    tuning: TuningConfig, search_space: SearchSpace, seed: int, model_name: str, fingerprint: str,
    default_root: PathLike, problem: str = "",
) -> str:
    """The tuner directory: ``<tuner_root or default_root>/<model_name>/<fingerprint>-<search hash>``;
    the search hash covers the search space, budget, seed and ``problem`` (:func:`problem_hash`)."""
    key = search_key(search_space.model_dump(exclude_none=True), tuning.model_dump(), seed, problem)
    return tuner_directory(tuning.tuner_root or str(default_root), model_name, fingerprint, key)
