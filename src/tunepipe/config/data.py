"""Configuration sections about the data: source, cleaning, images, encoding, augmentation, split.

Part of :mod:`tunepipe.config`, which re-exports every class; import them from there.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, model_validator

from tunepipe.config.base import Flip, Missing, Outliers, Task, _Section, location
from tunepipe.storage.uris import check_location, check_roots

# 2 GiB: ingest holds the whole table in memory, where pandas needs several times the bytes
# of a CSV; this fits the CPU pods tunepipe is sized for and still covers millions of rows.
DEFAULT_MAX_BYTES = 2 * 1024**3
# 10 million rows: every split is held as float32 arrays in training; beyond this, sample first.
DEFAULT_MAX_ROWS = 10_000_000
# 64 megapixels: above any camera photo, while one decoded RGB image (192 MB per worker
# process) stays affordable; bigger is a scan to shrink first, or a decompression bomb.
DEFAULT_MAX_PIXELS = 64_000_000
# 256 MiB of source files: above it, ingest and preprocess stream record batches (data.streaming: auto).
# Below it the in-memory path is faster (one read, vectorised over the whole table) and peaks
# near 1 GiB at most; bench/scale.py measures both sides of the switch.
DEFAULT_STREAMING_BYTES = 256 * 1024**2


def _data_location(value: str | None) -> str | None:
    return location(value) if value else value


def _schema_location(value: str) -> str:
    return location(value, samples=False) if value else value


class InputLimits(_Section):
    """What ingest agrees to read: local roots and sizes, checked before the data is read.

    Attributes:
        allowed_roots: Local folders that local data paths (and ``file://`` URIs) must lie in,
            symlinks resolved; empty (default) allows any local path. ``gs://``, ``s3://`` and
            ``sample://`` data are not restricted by it.
        max_rows: Most rows read, over all shards (default 10 million: every split is held
            in memory as float32 arrays during training); Parquet row counts are checked from
            the file footer before reading, image counts before decoding.
        max_bytes: Most bytes of source data (default 2 GiB: ingest holds the table in
            memory, and pandas needs several times a CSV's size), checked from file sizes or
            the object listing before anything is read or downloaded.
        streaming: ``auto`` (default): tables of more than ``streaming_bytes`` of source files
            are cleaned, split and summarised one record batch at a time, in bounded memory
            (:mod:`tunepipe.data.clean`); smaller ones in memory, which is faster there.
            ``always`` or ``never`` force one path. Image folders are always read in memory.
        streaming_bytes: The size from which ``auto`` streams (default 256 MiB).
    """

    allowed_roots: Annotated[list[str], AfterValidator(check_roots)] = Field(default_factory=list)
    max_rows: int = Field(DEFAULT_MAX_ROWS, ge=1)
    max_bytes: int = Field(DEFAULT_MAX_BYTES, ge=1)
    streaming: Literal["auto", "always", "never"] = "auto"
    streaming_bytes: int = Field(DEFAULT_STREAMING_BYTES, ge=0)

    def streams(self, source_bytes: int) -> bool:
        """Whether a table of ``source_bytes`` goes through the streaming path."""
        if self.streaming == "auto":
            return source_bytes > self.streaming_bytes
        return self.streaming == "always"


class DataConfig(InputLimits):
    """Where the data is and what to predict, and the limits of what is read (:class:`InputLimits`).

    Attributes:
        uri: A local file or folder (a plain path or ``file:///path``), a ``gs://bucket/prefix``
            or ``s3://bucket/prefix`` (every object under the prefix is one shard of the
            dataset), or a shipped sample
            (``sample://penguins``, ``sample://digits``). Files: CSV, Parquet, JSONL; folders of
            shards; image folders with one sub-folder per class. ``None`` means
            ``sample://penguins``. Other schemes (``http://``, ``ftp://``), ``..`` segments and
            invalid bucket names are refused (see :mod:`tunepipe.storage.uris`).
        label: Column to predict. Required whenever ``uri`` is set; for an image folder it
            names the column that holds the class (the sub-folder's name).
        task: ``classification``, ``regression`` or ``auto`` (default), which infers it from
            the label: text, boolean or few distinct integers mean classification.
        baseline_schema_uri: A schema written by an earlier ingest (its ``schema.json``, or the
            artifact folder holding it), local, ``gs://`` or ``s3://``. Empty (default): no drift check.
    """

    uri: Annotated[str | None, AfterValidator(_data_location)] = None
    label: str | None = None
    task: Task = "auto"
    baseline_schema_uri: Annotated[str, AfterValidator(_schema_location)] = ""

    @model_validator(mode="after")
    def _inside_allowed_roots(self) -> DataConfig:
        for name, value in (("uri", self.uri), ("baseline_schema_uri", self.baseline_schema_uri)):
            if value and self.allowed_roots:
                check_location(value, f"data.{name}: ", ValueError, self.allowed_roots)
        return self


class ColumnRule(_Section):
    """Cleaning rules for one column; a key left out follows the global setting.

    Attributes:
        missing: How missing values of this column are handled (see :class:`CleaningConfig`).
        fill_value: The value ``missing: constant`` fills in.
        outliers: ``none``, ``iqr`` or ``zscore`` clipping for this column.
        type: ``numeric``, ``categorical`` or ``date`` (numbers then are epoch seconds) forces the
            column's type; ``auto`` infers it (text in ISO 8601 is a date: :mod:`tunepipe.data.dates`).
        drop: Drop the column before anything else (a leak of the label); a served request may not send it.
        identifier: ``None`` (default): detected (a column unique, or nearly, per row:
            :mod:`tunepipe.data.identifiers`); ``true``: an identifier; ``false``: a feature
            whatever it looks like. An identifier is left out of the model, and the served model
            accepts and ignores it.
    """

    missing: Missing | None = None
    fill_value: float | str | None = None
    outliers: Outliers | None = None
    type: Literal["auto", "numeric", "categorical", "date"] = "auto"
    drop: bool = False
    identifier: bool | None = None


class CleaningConfig(_Section):
    """What ingest does to the rows and columns it reads; every action is counted in the report.

    Defaults keep every row that has a label and change as little as possible: missing
    numeric values take the median (robust to outliers) and missing categorical values the
    most frequent value, since dropping rows loses data and means are pulled by outliers.

    Attributes:
        missing: ``median`` (default), ``mean``, ``mode``, ``constant`` or ``drop`` (the row).
            ``mean`` and ``median`` apply to numeric columns; categorical columns then take
            ``mode``.
        fill_value: Value of ``missing: constant`` (default 0; categorical columns take its text).
        infinities: ``missing`` (default: treated as missing values, then handled as above) or
            ``drop`` (the row).
        outliers: ``none`` (default: outliers may be real), ``iqr`` (clip to the quartiles
            ± ``iqr_factor`` × IQR) or ``zscore`` (clip to the mean ± ``zscore_threshold`` std).
        iqr_factor: Tukey's fence factor (default 1.5).
        zscore_threshold: Standard deviations kept by z-score clipping (default 3).
        drop_duplicates: Drop exact duplicate rows (default false). Copies are observations: on a
            table of few columns many real records share one row, and dropping them reweights
            and shrinks the data; the report counts them either way. Drop them only where they
            are known to be double writes of one record.
        drop_constant_columns: Drop columns with a single value (default true): they carry no signal.
        coerce_numeric_text: Turn text columns whose cells mostly parse as numbers into numbers
            (default true); the cells that do not parse become missing and are counted.
        numeric_text_share: Share of non-missing cells that must parse (default 0.9).
        imbalance_ratio: Majority/minority class ratio from which the report flags imbalance
            (default 3).
        columns: Per-column rules (:class:`ColumnRule`) by column name.
    """

    missing: Missing = "median"
    fill_value: float | str = 0.0
    infinities: Literal["missing", "drop"] = "missing"
    outliers: Outliers = "none"
    iqr_factor: float = Field(1.5, gt=0.0)
    zscore_threshold: float = Field(3.0, gt=0.0)
    drop_duplicates: bool = False
    drop_constant_columns: bool = True
    coerce_numeric_text: bool = True
    numeric_text_share: float = Field(0.9, gt=0.0, le=1.0)
    imbalance_ratio: float = Field(3.0, ge=1.0)
    columns: dict[str, ColumnRule] = Field(default_factory=dict)

    def rule(self, column: str) -> ColumnRule:
        """The column's own rule, or an empty one."""
        return self.columns.get(column, ColumnRule())

    def resolve(self, column: str, key: Literal["missing", "fill_value", "outliers"]) -> Any:
        """``key`` for ``column``: its own rule's value where the rule sets it, else the global one."""
        own = getattr(self.rule(column), key)
        return getattr(self, key) if own is None else own


class ImageConfig(_Section):
    """How image folders are decoded.

    Attributes:
        height: Height every image is resized to, in pixels (default 32: small CNNs train in
            minutes on CPUs; raise it for detailed photos).
        width: Width every image is resized to (default 32).
        max_corrupt_fraction: Share of undecodable files tolerated (default 0.05): below it they
            are skipped and listed in the report, above it ingest fails.
        max_pixels: Most pixels (width x height) of one image, read from its header before it
            is decoded (default 64 million: above any camera photo, while a decoded RGB image
            per worker process stays near 200 MB); a larger image fails ingest, naming the
            file, which also stops decompression bombs.
    """

    height: int = Field(32, ge=8, le=1024)
    width: int = Field(32, ge=8, le=1024)
    max_corrupt_fraction: float = Field(0.05, ge=0.0, lt=1.0)
    max_pixels: int = Field(DEFAULT_MAX_PIXELS, ge=64)


class PreprocessingConfig(_Section):
    """How features are encoded inside the model (statistics fitted on the training split).

    Attributes:
        normalization: ``zscore`` (default: (x - mean) / std) or ``minmax`` ((x - min) / (max - min)).
        max_one_hot: Categoricals with at most this many values are one-hot encoded (default 20);
            larger vocabularies get a learned embedding, which stays small.
        class_weights: Weigh each class by ``rows / (classes x its rows)`` in the training loss
            when the data report flags the label as imbalanced (``cleaning.imbalance_ratio``)
            (default true; not with ``augmentation.oversample``): :mod:`tunepipe.modelling.imbalance`.
        label_transform: The regression label's scale: ``auto`` (default: the log of a strictly
            positive label with a long right tail, skewness 1 or more, decided on the training
            split: :mod:`tunepipe.data.target`), ``log`` or ``none``. Predictions stay in the
            label's units either way.
    """

    normalization: Literal["zscore", "minmax"] = "zscore"
    max_one_hot: int = Field(20, ge=1)
    class_weights: bool = True
    label_transform: Literal["auto", "log", "none"] = "auto"


class AugmentationConfig(_Section):
    """Augmentation, active in training only (the Keras layers are identities at inference).

    Image defaults are mild and label-preserving for most data; ``flip`` is off by default
    because mirrored digits and text change meaning (turn it on for natural photos). Tabular
    augmentation is off by default: it changes the data the model sees, so it is opt-in.

    Attributes:
        flip: ``none`` (default), ``horizontal``, ``vertical`` or ``horizontal_and_vertical``.
        rotation: Largest rotation as a fraction of a full turn (default 0.05, about 18°).
        zoom: Largest zoom in or out as a fraction of the size (default 0.1).
        translation: Largest shift as a fraction of height and width (default 0.1).
        contrast: Largest contrast change factor (default 0.1).
        gaussian_noise: Standard deviation of noise added to normalized numeric features
            (default 0: off).
        oversample: Resample minority classes of the training split up to the majority's
            count (default false).
    """

    flip: Flip = "none"
    rotation: float = Field(0.05, ge=0.0, le=0.5)
    zoom: float = Field(0.1, ge=0.0, lt=1.0)
    translation: float = Field(0.1, ge=0.0, lt=1.0)
    contrast: float = Field(0.1, ge=0.0, lt=1.0)
    gaussian_noise: float = Field(0.0, ge=0.0)
    oversample: bool = False


class SplitConfig(_Section):
    """Fractions of the cleaned rows held out; the rest is the training split.

    Defaults of 0.15 each leave 70% for training, enough for the shipped 344-row dataset
    while keeping a test split large enough to compare models.
    """

    val_fraction: float = Field(0.15, gt=0.0, lt=0.5)
    test_fraction: float = Field(0.15, gt=0.0, lt=0.5)
