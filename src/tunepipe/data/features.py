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

from tunepipe.data.sketches import QUANTILE_SAMPLE, CategorySketch, NumericSketch
from tunepipe.data.target import LOG, label_transform_for, to_model_scale
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
    :class:`~tunepipe.config.AugmentationConfig` values; ``ignored_columns`` are the columns ingest
    left out as identifiers (:mod:`tunepipe.data.identifiers`), which a served request may send.
    ``class_counts``, ``imbalanced`` and ``weigh_classes`` are what
    :func:`tunepipe.modelling.imbalance.class_weights` decides the loss's class weights from;
    ``decision`` is the binary decision rule train chose (never in preprocess's file: train records
    it in its history, and evaluate and export put it here). ``label_transform`` is the regression
    label's scale (:mod:`tunepipe.data.target`); ``label_mean`` and ``label_std`` are on that scale.
    ``dates`` are the numeric columns that hold dates (:mod:`tunepipe.data.dates`): the model adds
    their calendar features.
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
    ignored_columns: list[str] = field(default_factory=list)
    class_counts: list[int] = field(default_factory=list)  # training rows per class, in ``classes`` order
    imbalanced: bool = False  # the data report flags the label (cleaning.imbalance_ratio)
    weigh_classes: bool = True  # preprocessing.class_weights
    decision: dict[str, Any] | None = None  # train's binary decision rule, set where it is read back
    label_transform: str = "none"  # regression: ``log`` learns the log of the label (tunepipe.data.target)
    label_skewness: float | None = None  # the training labels' skewness it was decided on
    dates: list[str] = field(default_factory=list)  # numeric columns holding days since the epoch

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


class SpecFitter:
    """The one specification fitter: sketches of the training rows, updated batch by batch.

    A split held in memory is one batch, a streamed one many; the sketches
    (:mod:`tunepipe.data.sketches`) give the same numbers either way where they are exact: means,
    variances (population, ``ddof=0``), minima and maxima of numeric features and of a regression
    label (on one batch bit for bit numpy's), and exact counts for vocabularies and classes (up
    to :data:`~tunepipe.data.sketches.MAX_TRACKED_CATEGORIES` distinct values per column).
    Missing (NaN) and infinite values are left out; the rows preprocess passes in are filled.

    Vocabularies are ordered by frequency (then value) so the most common categories get the
    lowest indices; the label's classes are sorted so class ids are stable across runs.
    """

    def __init__(self, schema: dict[str, Any]) -> None:
        self.schema = schema
        self.rng = np.random.default_rng(0)  # seeds the regression label's sample (its skewness)
        image = bool(schema.get("image"))
        self.numeric = {} if image else {column: NumericSketch(sample_size=0) for column in schema["numeric"]}
        self.text = {} if image else {column: CategorySketch() for column in schema["categorical"]}
        self.label = CategorySketch() if schema["task"] == "classification" else None
        regression = schema["task"] == "regression"
        # the label's sample decides its scale (tunepipe.data.target); its log's moments are the model's
        self.target = NumericSketch(sample_size=QUANTILE_SAMPLE) if regression else None
        self.log_target = NumericSketch(sample_size=0) if regression else None

    def update(self, frame: pd.DataFrame) -> SpecFitter:
        """Adds one batch of training rows; returns the fitter, so one batch reads ``SpecFitter(s).update(f)``."""
        for column, sketch in self.numeric.items():
            sketch.update(frame[column].to_numpy(dtype=np.float64), self.rng)
        for column, text in self.text.items():
            text.update(frame[column])
        labels = frame[self.schema["label"]]
        if self.label is not None:
            self.label.update(labels)
        if self.target is not None and self.log_target is not None:
            numbers = labels.to_numpy(dtype=np.float64)
            self.target.update(numbers, self.rng)
            with np.errstate(divide="ignore", invalid="ignore"):  # a label <= 0 rules the log out anyway
                self.log_target.update(np.log(numbers), self.rng)
        return self

    def spec(self, normalization: str = "zscore", max_one_hot: int = 20,
             augmentation: dict[str, Any] | None = None, class_weights: bool = True,
             label_transform: str = "auto") -> PreprocessingSpec:
        """The specification of every row added so far.

        Args:
            normalization: ``zscore`` (default) or ``minmax``, recorded for the model.
            max_one_hot: Largest vocabulary one-hot encoded (default 20); larger ones are embedded.
            augmentation: :class:`~tunepipe.config.AugmentationConfig` values, recorded for the model.
            class_weights: ``preprocessing.class_weights`` (default true), recorded for the model.
            label_transform: ``preprocessing.label_transform`` (default ``auto``), decided by
                :func:`~tunepipe.data.target.label_transform_for` from the training labels.
        """

        schema = self.schema
        task, label, fills = schema["task"], schema["label"], schema.get("fill_values", {})
        options: dict[str, Any] = {"normalization": normalization, "max_one_hot": max_one_hot,
                                   "augmentation": dict(augmentation or {}),
                                   "ignored_columns": list(schema.get("ignored_columns", [])),
                                   "dates": list(schema.get("dates", []))}
        if self.label is not None:
            options["classes"] = sorted(self.label.counts)
            options.update(class_counts=[int(self.label.counts[name]) for name in options["classes"]],
                           imbalanced=bool(schema.get("label_imbalanced", False)), weigh_classes=class_weights)
        if schema.get("image"):
            image = schema["image"]
            feature = ImageFeature(image["column"], "image", image["height"], image["width"], image["channels"])
            return PreprocessingSpec(task, label, image=feature, **options)
        taken: set[str] = set()
        numeric = [NumericFeature(column, input_name(column, taken), sketch.mean, sketch.variance, sketch.minimum,
                                  sketch.maximum, None if fills.get(column) is None else float(fills[column]))
                   for column, sketch in self.numeric.items()]
        categorical = [CategoricalFeature(column, input_name(column, taken), [value for value, _ in text.ordered()],
                                          None if fills.get(column) is None else str(fills[column]))
                       for column, text in self.text.items()]
        if self.target is not None and self.log_target is not None:
            transform, skew = label_transform_for(self.target.values, label_transform, label)
            moments = self.log_target if transform == LOG else self.target
            options.update(label_mean=moments.mean, label_std=float(np.sqrt(moments.variance)) or 1.0,
                           label_transform=transform, label_skewness=skew)
        return PreprocessingSpec(task, label, numeric, categorical, **options)


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
    """The label as the network learns it: class ids (classification) or float32 values on the
    specification's scale (regression: the log of the label for ``label_transform: log``)."""
    if not spec.is_classification:
        return to_model_scale(label_values(frame, spec), spec.label_transform).astype(np.float32)
    return label_values(frame, spec)


def label_values(frame: pd.DataFrame, spec: PreprocessingSpec) -> np.ndarray:
    """The label as it is scored: class ids (classification) or float64 values in the label's units."""
    labels = _column(frame, spec.label)
    if not spec.is_classification:
        return labels.to_numpy(np.float64)
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
