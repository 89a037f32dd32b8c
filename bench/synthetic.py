"""Synthetic tabular datasets for the quality and tuning benchmarks, written as CSV files.

Both are generated with scikit-learn (a dev dependency) from a fixed ``random_state``, so the
data are the same in every run; the benchmark seeds vary the split, the search and training.

- ``classification``: ``make_classification`` with 20 features (10 informative, 4 redundant
  linear combinations of them, 6 pure noise), 5 classes of 2 clusters each, class shares
  45/25/15/10/5 % (a 9:1 majority/minority ratio) and 2 % of the labels flipped at random.
  Labels are written as text (``class_0`` ... ``class_4``) so the task is unambiguous.
- ``regression``: Friedman's #1 problem (``make_friedman1``): ``y = 10 sin(pi x0 x1) +
  20 (x2 - 0.5)^2 + 10 x3 + 5 x4 + noise`` with 10 uniform features, 5 of them pure noise,
  and Gaussian noise of standard deviation 1, so the best possible R² is about 0.96. It is
  non-linear, so a linear baseline cannot win by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

CLASS_WEIGHTS = (0.45, 0.25, 0.15, 0.10, 0.05)
DATA_SEED = 7


@dataclass(frozen=True)
class Dataset:
    """One benchmark dataset: where it is, what it predicts and how it was made.

    Attributes:
        name: short name used in tables.
        uri: what ``data.uri`` is set to (``sample://...`` or a CSV path).
        label: the label column.
        task: ``classification`` or ``regression``.
        about: one line for the page: rows, features, what is special about it.
        images: an image folder (the goal there is to match or beat the best baseline, not to come within a point).
        rare: a binary table with a rare class: its F1 and recall are measured too (``bench/quality_real.py``).
    """

    name: str
    uri: str
    label: str
    task: str
    about: str
    images: bool = False
    rare: bool = False


def write_classification(folder: Path, rows: int) -> Dataset:
    """Writes the 20-feature, 5-class imbalanced classification data set to ``folder``."""
    from sklearn.datasets import make_classification

    x, y = make_classification(
        n_samples=rows, n_features=20, n_informative=10, n_redundant=4, n_classes=5, n_clusters_per_class=2,
        weights=list(CLASS_WEIGHTS), flip_y=0.02, class_sep=1.0, random_state=DATA_SEED,
    )
    frame = pd.DataFrame(x, columns=[f"f{i:02d}" for i in range(x.shape[1])])
    frame["label"] = [f"class_{value}" for value in y]
    path = folder / "synthetic_classification.csv"
    frame.to_csv(path, index=False)
    counts = np.bincount(y, minlength=len(CLASS_WEIGHTS))
    return Dataset("synthetic-classification", str(path), "label", "classification",
                   f"{rows} rows, 20 features (10 informative), 5 classes of {'/'.join(map(str, counts))} rows, "
                   "2% labels flipped (`make_classification`)")


def write_regression(folder: Path, rows: int) -> Dataset:
    """Writes Friedman #1 (10 features, noise std 1) to ``folder``."""
    from sklearn.datasets import make_friedman1

    x, y = make_friedman1(n_samples=rows, n_features=10, noise=1.0, random_state=DATA_SEED)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame["y"] = y
    path = folder / "synthetic_regression.csv"
    frame.to_csv(path, index=False)
    return Dataset("synthetic-regression", str(path), "y", "regression",
                   f"{rows} rows, Friedman #1: 10 uniform features (5 used, non-linearly), "
                   "Gaussian noise std 1 (`make_friedman1`)")


# Public datasets bundled inside scikit-learn (read from the installed package, never downloaded):
# name -> (loader, task, what the page says about it).
BUNDLED = {
    "iris": ("load_iris", "classification", "150 rows, 4 features, 3 classes (Fisher's iris, `sklearn.datasets`)"),
    "wine": ("load_wine", "classification", "178 rows, 13 features, 3 classes (UCI wine, `sklearn.datasets`)"),
    "breast-cancer": ("load_breast_cancer", "classification",
                      "569 rows, 30 features, 2 classes (Wisconsin diagnostic, `sklearn.datasets`)"),
    "diabetes": ("load_diabetes", "regression",
                 "442 rows, 10 features (scaled), disease progression (Efron et al., `sklearn.datasets`)"),
}


def write_bundled(folder: Path, name: str) -> Dataset:
    """Writes one of :data:`BUNDLED` to ``folder`` as CSV; class labels as their names (text)."""
    from sklearn import datasets

    loader, task, about = BUNDLED[name]
    bunch = getattr(datasets, loader)(as_frame=True)
    frame = bunch.frame.rename(columns={"target": "label"})
    if task == "classification":
        frame["label"] = [str(bunch.target_names[value]) for value in frame["label"]]
    path = folder / f"{name}.csv"
    frame.to_csv(path, index=False)
    return Dataset(name, str(path), "label", task, about)
