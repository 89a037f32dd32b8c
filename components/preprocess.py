"""Preprocess component: cleaned data -> train/validation/test splits and statistics."""

from kfp.dsl import Artifact, Dataset, Input, Output


def preprocess(
    cleaned_data: Input[Dataset],
    val_fraction: float,
    test_fraction: float,
    seed: int,
    normalization: str,
    max_one_hot: int,
    augmentation: dict,
    train_data: Output[Dataset],
    validation_data: Output[Dataset],
    test_data: Output[Dataset],
    preprocessing: Output[Artifact],
) -> None:
    """Splits the data (stratified for classification) and fits normalization statistics
    (zscore or minmax) and vocabularies on the training split only; records the encoding and
    augmentation settings for the model, and oversamples the training split if asked."""
    from tunepipe import artifacts
    from tunepipe.preprocess_step import preprocess_step, read_split
    from tunepipe.step_logging import configure_logging

    configure_logging()
    outputs = {
        artifacts.TRAIN: train_data, artifacts.VALIDATION: validation_data, artifacts.TEST: test_data,
    }
    preprocess_step(
        cleaned_data.path, {"val_fraction": val_fraction, "test_fraction": test_fraction}, seed,
        {**{name: out.path for name, out in outputs.items()}, "spec": preprocessing.path},
        {"normalization": normalization, "max_one_hot": max_one_hot}, augmentation,
    )
    for name, out in outputs.items():
        out.metadata[artifacts.META_SPLIT] = name
        out.metadata[artifacts.META_ROWS] = len(read_split(out.path))
