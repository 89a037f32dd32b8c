"""Preprocess component: cleaned data -> train/validation/test splits and statistics."""

from kfp.dsl import Artifact, Dataset, Input, Output


def preprocess(
    cleaned_data: Input[Dataset],
    seed: int,
    split: dict,
    preprocessing_settings: dict,
    augmentation: dict,
    train_data: Output[Dataset],
    validation_data: Output[Dataset],
    test_data: Output[Dataset],
    preprocessing: Output[Artifact],
) -> None:
    """Splits the data (stratified for classification) and fits normalization statistics
    (zscore or minmax) and vocabularies on the training split only; records the encoding and
    augmentation settings for the model, and oversamples the training split if asked.

    Args:
        cleaned_data: Ingest's cleaned Parquet, schema (with the fill values) and data report.
        seed: Seed of the split and of oversampling.
        split: The split section (val_fraction, test_fraction).
        preprocessing_settings: The pipeline's preprocessing section (normalization,
            max_one_hot); named apart from the preprocessing output artifact.
        augmentation: The augmentation section (recorded for the model; oversample acts here).
        train_data: Output: the training split (Parquet).
        validation_data: Output: the validation split (Parquet).
        test_data: Output: the test split (Parquet).
        preprocessing: Output: the preprocessing spec (statistics, vocabularies, fill values, classes).
    """
    from tunepipe import artifacts
    from tunepipe.config import section
    from tunepipe.preprocess_step import preprocess_step
    from tunepipe.step_logging import configure_logging

    configure_logging()
    outputs = {
        artifacts.TRAIN: train_data, artifacts.VALIDATION: validation_data, artifacts.TEST: test_data,
    }
    rows = preprocess_step(
        cleaned_data.path, section("split", split), seed,
        {**{name: out.path for name, out in outputs.items()}, "spec": preprocessing.path},
        section("preprocessing", preprocessing_settings), section("augmentation", augmentation),
    )
    for name, out in outputs.items():
        out.metadata[artifacts.META_SPLIT] = name
        out.metadata[artifacts.META_ROWS] = rows[name]
