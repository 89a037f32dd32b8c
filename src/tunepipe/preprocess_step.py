"""The preprocess step's entry point: the splits and the preprocessing specification.

Nothing here imports Keras or TensorFlow, directly or through another module: the preprocess
component runs in a process of its own and should start fast (see the overhead section of
docs/benchmarks.md).
"""

from __future__ import annotations

from typing import Any

from tunepipe.artifacts import PathLike
from tunepipe.config import AugmentationConfig, PreprocessingConfig, SplitConfig, validate_section
from tunepipe.data.features import PreprocessingSpec
from tunepipe.data.preprocess import read_split, run_preprocess

# The component counts each split's rows with read_split (it imports nothing but this module).
__all__ = ["preprocess_step", "read_split"]


def preprocess_step(
    cleaned_dir: PathLike, split: dict[str, Any], seed: int, output_dirs: dict[str, PathLike],
    preprocessing: dict[str, Any], augmentation: dict[str, Any],
) -> PreprocessingSpec:
    """Validates the split, encoding and augmentation settings, then splits and fits the specification."""
    source = "pipeline parameters"
    return run_preprocess(
        cleaned_dir, validate_section(SplitConfig, split, source), seed, dict(output_dirs),
        validate_section(PreprocessingConfig, preprocessing, source),
        validate_section(AugmentationConfig, augmentation, "augmentation parameter"),
    )
