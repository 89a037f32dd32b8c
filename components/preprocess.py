"""Preprocess component: cleaned data -> train/validation/test splits and statistics."""

from kfp.dsl import Artifact, Dataset, Input, Output


def preprocess(
    cleaned_data: Input[Dataset],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    train_data: Output[Dataset],
    validation_data: Output[Dataset],
    test_data: Output[Dataset],
    preprocessing: Output[Artifact],
) -> None:
    """Splits the data (stratified for classification) and fits normalization statistics
    and vocabularies on the training split only."""
    from tunepipe import artifacts
    from tunepipe.config import SplitConfig, validate_section
    from tunepipe.preprocess import read_split
    from tunepipe.steps import configure_logging, run_preprocess

    configure_logging()
    split = validate_section(
        SplitConfig, {"val_fraction": val_fraction, "test_fraction": test_fraction}, "pipeline parameters"
    )
    outputs = {
        artifacts.TRAIN: train_data, artifacts.VALIDATION: validation_data, artifacts.TEST: test_data,
    }
    run_preprocess(
        cleaned_data.path, split, seed,
        {**{name: out.path for name, out in outputs.items()}, "spec": preprocessing.path},
    )
    for name, out in outputs.items():
        out.metadata[artifacts.META_SPLIT] = name
        out.metadata[artifacts.META_ROWS] = len(read_split(out.path))
