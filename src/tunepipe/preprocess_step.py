"""The preprocess step: the splits and the preprocessing specification.

Nothing here imports Keras or TensorFlow, directly or through another module: the preprocess
component runs in a process of its own and should start fast (see the overhead section of
docs/benchmarks.md).
"""

from __future__ import annotations

from dataclasses import dataclass

from tunepipe import artifacts
from tunepipe.artifacts import PathLike
from tunepipe.config import AugmentationConfig, PreprocessingConfig, SplitConfig
from tunepipe.contract import StepResult
from tunepipe.data.preprocess import run_preprocess
from tunepipe.data.split import Split


@dataclass(frozen=True)
class Inputs:
    """What preprocess reads: ingest's cleaned data, the seed and three sections.

    ``preprocessing_settings`` is the preprocessing section, named apart from the
    ``preprocessing`` output.
    """

    cleaned_data: PathLike
    seed: int
    split: SplitConfig
    preprocessing_settings: PreprocessingConfig
    augmentation: AugmentationConfig


@dataclass(frozen=True)
class Outputs:
    """A folder for each split and one for the preprocessing specification."""

    train_data: PathLike
    validation_data: PathLike
    test_data: PathLike
    preprocessing: PathLike


def run(inputs: Inputs, outputs: Outputs) -> StepResult:
    """Splits the cleaned data and fits the specification; notes each split's name and rows
    (after oversampling, for the training split) on it."""
    splits = {"train_data": (artifacts.TRAIN, outputs.train_data),
              "validation_data": (artifacts.VALIDATION, outputs.validation_data),
              "test_data": (artifacts.TEST, outputs.test_data)}
    folders = {name: folder for name, folder in splits.values()}
    run_preprocess(inputs.cleaned_data, inputs.split, inputs.seed, {**folders, "spec": outputs.preprocessing},
                   inputs.preprocessing_settings, inputs.augmentation)
    return StepResult(metadata={
        output: {artifacts.META_SPLIT: name, artifacts.META_ROWS: Split.open(folder).rows}
        for output, (name, folder) in splits.items()
    })
