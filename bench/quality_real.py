"""What the quality section measures beyond accuracy and R² on the real-table traits (issue 31).

- **Rare class**: the rare class's F1 and recall on the test split, for tunepipe's default run and
  for logistic regression with balanced class weights, grid-searched on the rare class's F1 with
  the section's folds on the run's train + validation splits (the issue's reference).
- **Cross-validation against the test split**: on small data, the folds' mean score and its
  standard error next to the test split's score and its binomial standard error; they agree when
  the difference is within 1.96 standard errors of the difference (both sources of noise).
"""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from baselines import read_splits
from common import table

from tunepipe.data.features import targets

RARE_GRID = {"model__C": [0.1, 1.0, 10.0]}


def rare_class(work: Path) -> tuple[int, str]:
    """The rare class's id and name: the class with the fewest training rows."""
    spec, splits = read_splits(work)
    rare = int(np.argmin(np.bincount(targets(splits["train"], spec), minlength=len(spec.classes))))
    return rare, spec.classes[rare]


def tunepipe_rare_scores(work: Path) -> dict[str, float]:
    """The rare class's F1 and recall of the run's evaluated model (evaluate's per-class table)."""
    _, name = rare_class(work)
    evaluation = json.loads((work / "evaluate" / "evaluation" / "evaluation.json").read_text())
    row = next(entry for entry in evaluation["per_class"] if entry["class"] == name)
    return {"f1": float(row["f1"]), "recall": float(row["recall"])}


def balanced_logistic_scores(work: Path, seed: int, folds: int) -> dict[str, float]:
    """The rare class's F1 and recall of balanced logistic regression, tuned on that F1."""
    import pandas as pd
    from baselines import _features, _pipeline
    from sklearn.metrics import f1_score, make_scorer, recall_score
    from sklearn.model_selection import GridSearchCV, StratifiedKFold

    spec, splits = read_splits(work)
    rare, _ = rare_class(work)
    learn = pd.concat([splits["train"], splits["validation"]], ignore_index=True)
    pipeline = _pipeline("logistic", spec, seed)
    pipeline.set_params(model__class_weight="balanced")
    scorer = make_scorer(f1_score, pos_label=rare, average="binary")
    search = GridSearchCV(pipeline, RARE_GRID, scoring=scorer,
                          cv=StratifiedKFold(folds, shuffle=True, random_state=seed), n_jobs=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        search.fit(_features(learn, spec), targets(learn, spec))
    y_test = targets(splits["test"], spec)
    predicted = search.predict(_features(splits["test"], spec))
    return {"f1": float(f1_score(y_test, predicted, pos_label=rare, average="binary")),
            "recall": float(recall_score(y_test, predicted, pos_label=rare, average="binary"))}


def cv_against_test(cv: dict[str, Any], test_score: float, test_rows: int) -> dict[str, Any]:
    """The folds' mean and standard error beside the test score and its binomial standard error."""
    values = [value for value in cv["values"] if not math.isnan(value)]
    cv_error = float(np.std(values, ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    test_error = math.sqrt(max(test_score * (1 - test_score), 1e-12) / max(test_rows, 1))
    gap = abs(cv["mean"] - test_score)
    return {"cv_mean": cv["mean"], "cv_error": cv_error, "test": test_score, "test_error": test_error,
            "agree": bool(gap <= 1.96 * math.hypot(cv_error, test_error))}


def render(results: list[Any]) -> list[str]:
    """The section's extra tables: rare-class scores and cross-validation against the test split."""
    parts: list[str] = []
    rare = [r for r in results if r.rare]
    if rare:
        rows = []
        for result in rare:
            for name in result.rare[0]:
                f1 = [scores[name]["f1"] for scores in result.rare]
                recall = [scores[name]["recall"] for scores in result.rare]
                rows.append([result.dataset.name, name, _mean(f1), _mean(recall)])
        parts += ["", "Rare class (its F1 and recall on the test split; tunepipe's default run, which weighs the "
                  "classes and chooses its threshold for F1 on validation, against logistic regression with "
                  f"balanced class weights, `{RARE_GRID}` searched on the rare class's F1):", "",
                  table(["dataset", "model", "rare-class F1", "rare-class recall"], rows)]
    agreed = [r for r in results if r.cv_agreement]
    if agreed:
        rows = [[r.dataset.name, f"seed {seed}", f"{a['cv_mean']:.3f} ± {a['cv_error']:.3f}",
                 f"{a['test']:.3f} ± {a['test_error']:.3f}", "yes" if a["agree"] else "**no**"]
                for r in agreed for seed, a in r.cv_agreement]
        parts += ["", "Cross-validation against the test split (accuracy; the folds' mean ± its standard error, "
                  "the single model's test score ± its binomial standard error; they agree when the difference is "
                  "within 1.96 standard errors of the difference):", "",
                  table(["dataset", "seed", "cross-validation", "test split", "agree"], rows)]
    return parts


def _mean(values: list[float]) -> str:
    return f"{np.mean(values):.3f}" if len(values) == 1 else f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"
