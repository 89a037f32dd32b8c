"""The preprocessing specification: what the model needs to turn raw columns into numbers.

It holds statistics of numeric features (mean and variance for z-score, minimum and maximum
for min-max normalization) and vocabularies of categorical ones, fitted on the training
split only, plus the label's classes (classification) or mean and standard deviation
(regression); for image data, the image size and channels. It also carries the encoding
choices and the augmentation settings, so tuning and training build the same model. The
model applies all of it inside itself (see :mod:`tunepipe.modelling.model`), so serving takes raw
values and there is no training/serving skew.

Categorical features reach the trainable model as integer indices (0 = out of vocabulary,
``i + 1`` = ``vocabulary[i]``), the convention of ``keras.layers.StringLookup`` with one
out-of-vocabulary index. :func:`model_inputs` applies it with pandas for training, and the
exported model applies it with ``StringLookup`` for serving; a test proves the two agree.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunepipe.errors import DataError
from tunepipe.storage import atomic


@dataclass(frozen=True)
class NumericFeature:
    """A numeric column, its model input name and training-split statistics."""

    column: str
    input_name: str
    mean: float
    variance: float
    minimum: float = 0.0
    maximum: float = 1.0
    fill: float | None = None  # what ingest fills a missing value with; the served model does the same


@dataclass(frozen=True)
class CategoricalFeature:
    """A categorical column, its model input name and training-split vocabulary."""

    column: str
    input_name: str
    vocabulary: list[str]
    fill: str | None = None  # what ingest fills a missing value with; the served model does the same


@dataclass(frozen=True)
class ImageFeature:
    """The image column: raw ``uint8`` pixels of ``height`` x ``width`` x ``channels``."""

    column: str
    input_name: str
    height: int
    width: int
    channels: int


@dataclass(frozen=True)
class PreprocessingSpec:
    """Everything fitted on the training split that the model bakes in.

    ``normalization`` is ``zscore`` or ``minmax``; categoricals with more than ``max_one_hot``
    values are embedded instead of one-hot encoded; ``augmentation`` holds
    :class:`~tunepipe.config.AugmentationConfig` values.
    """

    task: str
    label: str
    numeric: list[NumericFeature] = field(default_factory=list)
    categorical: list[CategoricalFeature] = field(default_factory=list)
    classes: list[str] = field(default_factory=list)
    label_mean: float = 0.0
    label_std: float = 1.0
    image: ImageFeature | None = None
    normalization: str = "zscore"
    max_one_hot: int = 20
    augmentation: dict[str, Any] = field(default_factory=dict)

    @property
    def is_classification(self) -> bool:
        return self.task == "classification"

    @property
    def is_image(self) -> bool:
        return self.image is not None

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)

    @classmethod
    def from_json(cls, text: str) -> PreprocessingSpec:
        raw = json.loads(text)
        raw["numeric"] = [NumericFeature(**item) for item in raw["numeric"]]
        raw["categorical"] = [CategoricalFeature(**item) for item in raw["categorical"]]
        if raw.get("image"):
            raw["image"] = ImageFeature(**raw["image"])
        return cls(**raw)

    def save(self, path: str | Path) -> None:
        atomic.write_text(path, self.to_json())

    @classmethod
    def load(cls, path: str | Path) -> PreprocessingSpec:
        return cls.from_json(Path(path).read_text())


def input_name(column: str, taken: set[str]) -> str:
    """A model input name for a column: letters, digits and ``_`` only, unique within ``taken``.

    Keras input and SavedModel signature names must be identifiers; data columns need not be.
    """
    base = re.sub(r"[^A-Za-z0-9_]", "_", column).strip("_") or "feature"
    if base[0].isdigit():
        base = f"f_{base}"
    name, suffix = base, 1
    while name in taken:
        suffix += 1
        name = f"{base}_{suffix}"
    taken.add(name)
    return name


def fit_spec(
    train: pd.DataFrame, schema: dict[str, Any], normalization: str = "zscore", max_one_hot: int = 20,
    augmentation: dict[str, Any] | None = None,
) -> PreprocessingSpec:
    """Fits statistics and vocabularies on the training split alone.

    Vocabularies are ordered by frequency (then value) so the most common categories get the
    lowest indices; the label's classes are sorted so class ids are stable across runs.
    """
    label, task = schema["label"], schema["task"]
    fills = schema.get("fill_values", {})
    options: dict[str, Any] = {
        "normalization": normalization, "max_one_hot": max_one_hot, "augmentation": dict(augmentation or {}),
    }
    if schema.get("image"):
        image = schema["image"]
        feature = ImageFeature(image["column"], "image", image["height"], image["width"], image["channels"])
        return PreprocessingSpec(task, label, classes=sorted(set(train[label].astype(str))), image=feature, **options)
    taken: set[str] = set()
    numeric = []
    for column in schema["numeric"]:
        values = train[column].to_numpy(dtype=np.float64)
        numeric.append(NumericFeature(
            column, input_name(column, taken), float(values.mean()), float(values.var()),
            float(values.min()), float(values.max()), _float_or_none(fills.get(column)),
        ))
    categorical = []
    for column in schema["categorical"]:
        counts = train[column].astype(str).value_counts()
        ordered = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        categorical.append(
            CategoricalFeature(column, input_name(column, taken), [value for value, _ in ordered],
                               None if fills.get(column) is None else str(fills[column]))
        )
    if task == "classification":
        classes = sorted(set(train[label]))
        return PreprocessingSpec(task, label, numeric, categorical, classes=classes, **options)
    targets = train[label].to_numpy(dtype=np.float64)
    std = float(targets.std()) or 1.0
    return PreprocessingSpec(
        task, label, numeric, categorical, label_mean=float(targets.mean()), label_std=std, **options
    )


def _float_or_none(value: Any) -> float | None:
    return None if value is None else float(value)


def _image_input(frame: pd.DataFrame, spec: PreprocessingSpec) -> dict[str, np.ndarray]:
    from tunepipe.data.images import pixels

    image = spec.image
    assert image is not None
    return {image.input_name: pixels(frame, image.height, image.width, image.channels)}


def _numeric_inputs(frame: pd.DataFrame, spec: PreprocessingSpec) -> dict[str, np.ndarray]:
    """Numeric columns as float32 ``(rows, 1)`` arrays: the trainable and the exported model alike."""
    return {
        feature.input_name: _column(frame, feature.column).to_numpy(np.float32).reshape(-1, 1)
        for feature in spec.numeric
    }


def model_inputs(frame: pd.DataFrame, spec: PreprocessingSpec) -> dict[str, np.ndarray]:
    """Raw columns as the trainable model's inputs: numeric as float32, categorical as indices,
    images as float32 pixels (0-255)."""
    if spec.is_image:
        return _image_input(frame, spec)
    inputs = _numeric_inputs(frame, spec)
    for cat in spec.categorical:
        index = {value: position + 1 for position, value in enumerate(cat.vocabulary)}
        codes = _column(frame, cat.column).astype(str).map(index).fillna(0)
        inputs[cat.input_name] = codes.to_numpy(np.int32).reshape(-1, 1)
    return inputs


def raw_inputs(frame: pd.DataFrame, spec: PreprocessingSpec) -> dict[str, np.ndarray]:
    """Raw columns as the exported model takes them: numeric float32 (missing: NaN), categorical
    strings (missing: ``""``), images as float32 pixels (0-255)."""
    if spec.is_image:
        return _image_input(frame, spec)
    inputs = _numeric_inputs(frame, spec)
    for cat in spec.categorical:
        column = _column(frame, cat.column)
        text = column.astype(str).where(column.notna(), "")
        inputs[cat.input_name] = text.to_numpy(str).reshape(-1, 1)
    return inputs


def targets(frame: pd.DataFrame, spec: PreprocessingSpec) -> np.ndarray:
    """The label as class ids (classification) or float32 values (regression)."""
    labels = _column(frame, spec.label)
    if not spec.is_classification:
        return labels.to_numpy(np.float32)
    ids = {name: position for position, name in enumerate(spec.classes)}
    mapped = labels.astype(str).map(ids)
    if mapped.isna().any():
        unseen = sorted(set(labels.astype(str)[mapped.isna()]))
        raise DataError(f"label {spec.label!r} has values unseen in training: {unseen[:10]}")
    return mapped.to_numpy(np.int32)


def class_ids_with_unseen(frame: pd.DataFrame, label: str, classes: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    """Class ids of the ``label`` column for scoring, where a value outside ``classes`` is no error.

    Returns:
        The ids, every value the model never learnt getting the extra id ``len(classes)``,
        and those values with their row counts (empty when every label is known).
    """
    ids = {name: position for position, name in enumerate(classes)}
    text = _column(frame, label).astype(str)
    mapped = text.map(ids)
    unknown = mapped.isna()
    counts = text[unknown].value_counts()
    unseen = {str(value): int(count) for value, count in sorted(counts.items(), key=lambda item: str(item[0]))}
    return mapped.fillna(len(classes)).to_numpy(np.int32), unseen


def _column(frame: pd.DataFrame, column: str) -> pd.Series:
    if column not in frame.columns:
        raise DataError(f"column {column!r} is missing from the data")
    return frame[column]
