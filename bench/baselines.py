"""scikit-learn baselines fitted on the exact splits a tunepipe run wrote.

The baselines: logistic regression (classification) or ridge regression, an RBF SVM, a random
forest and gradient-boosted trees (``HistGradientBoostingClassifier`` / ``Regressor``). Each is
a scikit-learn pipeline (scaling and one-hot encoding fitted inside it) with a small grid
searched by k-fold cross-validation (5 folds by default, stratified for classification) on the
training and validation splits together: tunepipe learns from the same rows (it trains on the
training split and uses the validation split for tuning and early stopping), so both see the
same labelled data. The refitted best estimator is scored once, on the run's test split.

Image data (the digits) are flattened to one feature per pixel and standardized. A date column
(days since the epoch) comes with the calendar features tunepipe's model computes from it.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tunepipe import artifacts
from tunepipe.data.dates import CALENDAR, calendar_features
from tunepipe.data.features import PreprocessingSpec, label_values, model_inputs
from tunepipe.data.split import Split

# The grids: a few values each around scikit-learn's defaults, so one search takes seconds.
CLASSIFIER_GRIDS: dict[str, tuple[str, dict[str, list[Any]]]] = {
    "logistic regression": ("logistic", {"model__C": [0.1, 1.0, 10.0]}),
    "RBF SVM": ("svc", {"model__C": [1.0, 10.0, 100.0], "model__gamma": ["scale", 0.01]}),
    "random forest": ("forest", {"model__n_estimators": [200], "model__max_features": ["sqrt", 0.2],
                                 "model__min_samples_leaf": [1, 3]}),
    "gradient-boosted trees": ("boosting", {"model__learning_rate": [0.05, 0.1], "model__max_leaf_nodes": [15, 31]}),
}
REGRESSOR_GRIDS: dict[str, tuple[str, dict[str, list[Any]]]] = {
    "ridge regression": ("ridge", {"model__alpha": [0.1, 1.0, 10.0, 100.0]}),
    "RBF SVM": ("svr", {"model__C": [1.0, 10.0, 100.0], "model__gamma": ["scale", 0.01]}),
    "random forest": ("forest", {"model__n_estimators": [200], "model__max_features": [1.0, 0.5],
                                 "model__min_samples_leaf": [1, 3]}),
    "gradient-boosted trees": ("boosting", {"model__learning_rate": [0.05, 0.1], "model__max_leaf_nodes": [15, 31]}),
}
FOLDS = 5
# Speed only, the same fits: the SVM's kernel cache in MB, and grid-search fits run at once (the
# machine's 2 cores; the tunepipe run is over by then). synthetic-regression's seeds 42 and 7, kept on
# 2026-12-04, ran with scikit-learn's defaults (200 MB, one fit at a time).
SVM_CACHE_MB = 1024
SEARCH_JOBS = 2


def _estimator(kind: str, classification: bool, seed: int) -> Any:
    from sklearn.ensemble import (
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
        RandomForestRegressor,
    )
    from sklearn.linear_model import LogisticRegression, Ridge
    from sklearn.svm import SVC, SVR

    if kind == "logistic":
        return LogisticRegression(max_iter=2000)
    if kind == "ridge":
        return Ridge()
    if kind == "svc":  # a 1 GiB kernel cache (default 200 MB): the same fit, much faster on 17,000 rows
        return SVC(kernel="rbf", cache_size=SVM_CACHE_MB)
    if kind == "svr":
        return SVR(kernel="rbf", cache_size=SVM_CACHE_MB)
    if kind == "boosting":  # 100 iterations; early stopping only from 10,000 rows (scikit-learn's "auto")
        boosting = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
        return boosting(random_state=seed)
    forest = RandomForestClassifier if classification else RandomForestRegressor
    return forest(random_state=seed, n_jobs=1)


def _features(frame: pd.DataFrame, spec: PreprocessingSpec) -> pd.DataFrame | np.ndarray:
    if spec.is_image:
        pixels = next(iter(model_inputs(frame, spec).values()))
        return pixels.reshape(len(frame), -1) / 255.0
    columns = [f.column for f in spec.numeric] + [f.column for f in spec.categorical]
    features = frame[columns].copy()
    for feature in spec.categorical:
        features[feature.column] = features[feature.column].astype(str)
    for column in spec.dates:  # the calendar features tunepipe's model computes, so both see the same
        for name, values in calendar_features(frame[column].to_numpy()).items():
            features[f"{column}_{name}"] = values
    return features


def _numeric_columns(spec: PreprocessingSpec) -> list[str]:
    return [f.column for f in spec.numeric] + [f"{column}_{name}" for column in spec.dates for name in CALENDAR]


def _pipeline(kind: str, spec: PreprocessingSpec, seed: int) -> Any:
    from sklearn.compose import ColumnTransformer
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    model = _estimator(kind, spec.is_classification, seed)
    if spec.is_image:  # standardized pixels: lbfgs converges in a fraction of the iterations
        return Pipeline([("scale", StandardScaler()), ("model", model)])
    encode = ColumnTransformer([
        ("numeric", StandardScaler(), _numeric_columns(spec)),
        ("categorical", OneHotEncoder(handle_unknown="ignore"), [f.column for f in spec.categorical]),
    ], sparse_threshold=0.0 if kind == "boosting" else 0.3)  # gradient boosting takes dense input only
    return Pipeline([("encode", encode), ("model", model)])


def read_splits(work: Path) -> tuple[PreprocessingSpec, dict[str, pd.DataFrame]]:
    """The specification and the three splits an in-process run wrote under ``work/preprocess``."""
    spec = PreprocessingSpec.load(work / "preprocess" / "preprocessing" / artifacts.PREPROCESSING_SPEC_FILE)
    splits = {name: Split.open(work / "preprocess" / f"{name}_data").frame()
              for name in ("train", "validation", "test")}
    return spec, splits


def score_baselines(work: Path, seed: int, folds: int = FOLDS) -> dict[str, float]:
    """Test accuracy (classification) or R² (regression) of each grid-searched baseline.

    Args:
        work: The folder of an in-process run (``bench/inprocess.py``).
        seed: Seeds the folds and the random forest.
        folds: Cross-validation folds of the grid search (default 5).
    """
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import GridSearchCV, KFold, StratifiedKFold

    spec, splits = read_splits(work)
    learn = pd.concat([splits["train"], splits["validation"]], ignore_index=True)
    x, y = _features(learn, spec), label_values(learn, spec)  # the label's own units
    x_test, y_test = _features(splits["test"], spec), label_values(splits["test"], spec)
    splitter = (StratifiedKFold if spec.is_classification else KFold)(folds, shuffle=True, random_state=seed)
    scoring, score = ("accuracy", accuracy_score) if spec.is_classification else ("r2", r2_score)
    scores = {}
    for name, (kind, grid) in (CLASSIFIER_GRIDS if spec.is_classification else REGRESSOR_GRIDS).items():
        search = GridSearchCV(_pipeline(kind, spec, seed), grid, scoring=scoring, cv=splitter, n_jobs=SEARCH_JOBS)
        with warnings.catch_warnings():  # a small fold may miss a rare class or category
            warnings.simplefilter("ignore")
            search.fit(x, y)
        scores[name] = float(score(y_test, search.predict(x_test)))
    return scores
