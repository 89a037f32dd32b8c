"""The preprocess step's entry point: the splits and the preprocessing specification.

Nothing here imports Keras or TensorFlow, directly or through another module: the preprocess
component runs in a process of its own and should start fast (see the overhead section of
docs/benchmarks.md).
"""

from __future__ import annotations

from tunepipe.artifacts import PathLike
from tunepipe.config import AugmentationConfig, PreprocessingConfig, SplitConfig
from tunepipe.data.preprocess import SPLITS, run_preprocess
from tunepipe.data.split import Split


def preprocess_step(
    cleaned_dir: PathLike, split: SplitConfig, seed: int, output_dirs: dict[str, PathLike],
    preprocessing: PreprocessingConfig, augmentation: AugmentationConfig,
) -> dict[str, int]:
    """Splits the cleaned data and fits the specification with the sections the component validated.

    Args:
        output_dirs: A folder for each split (``train``, ``validation``, ``test``) and ``spec``.

    Returns:
        Each split's row count (after oversampling, for the training split), by split name.
    """
    run_preprocess(cleaned_dir, split, seed, dict(output_dirs), preprocessing, augmentation)
    return {name: Split.open(output_dirs[name]).rows for name in SPLITS}
