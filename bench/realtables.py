"""Generated tables with the traits of real ones, for the quality benchmark (issue 31).

Each is generated from a fixed seed (the benchmark seeds vary the split, the search and
training), written as CSV, and has one trait the shipped and bundled sets lack:

- ``duplicates``: 1,000 passengers described by four coarse columns (class, sex, port, child),
  36 possible rows, so almost every row is an exact copy of another: natural duplicates.
- ``id-column``: 2,000 customers, six numeric features, three classes, plus a customer number
  (an auto-increment key with gaps) and a customer name (unique text).
- ``date-column``: 2,000 sales with a timestamp (ISO text) whose season, weekday and trend drive
  the amount, plus two numeric features (regression).
- ``rare-class``: 4,000 transactions, eight numeric features, 2.5% of them in the rare class.
- ``skewed-price``: 3,000 houses whose price is log-normal (a long right tail) given area, rooms,
  age and district (regression, R² on the price itself).

No threshold of tunepipe's rules was chosen from these tables; they only exercise them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from synthetic import Dataset

DATA_SEED = 31  # the number: any fixed value would do


def _sigmoid(values: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-values))


def write_duplicates(folder: Path, rows: int = 1_000) -> Dataset:
    """Few coarse columns: most rows repeat another exactly (natural duplicates)."""
    rng = np.random.default_rng(DATA_SEED)
    pclass = rng.choice([1, 2, 3], rows, p=[0.25, 0.2, 0.55])
    female = rng.random(rows) < 0.35
    port = rng.choice(["C", "Q", "S"], rows, p=[0.2, 0.1, 0.7])
    child = (rng.random(rows) < 0.1).astype(int)
    logit = 2.4 * female - 1.0 * (pclass - 2) + 0.4 * (port == "C") + 1.0 * child - 0.9
    survived = rng.random(rows) < _sigmoid(logit)
    frame = pd.DataFrame({"pclass": pclass, "sex": np.where(female, "female", "male"), "port": port,
                          "child": child, "survived": np.where(survived, "yes", "no")})
    path = folder / "duplicates.csv"
    frame.to_csv(path, index=False)
    repeats = int(frame.duplicated().sum())
    return Dataset("duplicates", str(path), "survived", "classification",
                   f"{rows} rows, 4 coarse features (36 possible rows), {repeats} rows repeat an earlier one "
                   "exactly, 2 classes (generated)")


def write_id_column(folder: Path, rows: int = 2_000) -> Dataset:
    """Six informative numeric features, three classes, a customer number and a customer name."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=6, n_informative=4, n_redundant=1, n_classes=3,
                               random_state=DATA_SEED)
    rng = np.random.default_rng(DATA_SEED)
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])
    frame.insert(0, "customer_id", 100_000 + np.sort(rng.choice(int(rows * 1.3), rows, replace=False)))
    frame.insert(1, "name", [f"customer-{value:06x}" for value in rng.choice(16**6, rows, replace=False)])
    frame["segment"] = [f"s{value}" for value in y]
    path = folder / "id_column.csv"
    frame.to_csv(path, index=False)
    return Dataset("id-column", str(path), "segment", "classification",
                   f"{rows} rows, 6 numeric features, an integer customer number and a unique name, 3 classes "
                   "(`make_classification`)")


def write_date_column(folder: Path, rows: int = 2_000) -> Dataset:
    """Sales whose amount follows the season, the weekend and a trend of their timestamp."""
    rng = np.random.default_rng(DATA_SEED)
    start = pd.Timestamp("2021-01-01")
    stamps = start + pd.to_timedelta(rng.uniform(0, 4 * 365, rows), unit="D")
    stamps = stamps.floor("min")
    season = np.sin(2 * np.pi * stamps.dayofyear.to_numpy() / 365.25)
    weekend = (stamps.dayofweek.to_numpy() >= 5).astype(float)
    evening = ((stamps.hour.to_numpy() >= 17) & (stamps.hour.to_numpy() <= 21)).astype(float)
    trend = (stamps - start).days.to_numpy() / 365.25
    x1, x2 = rng.normal(size=rows), rng.normal(size=rows)
    amount = 50 + 8 * season + 6 * weekend + 4 * evening + 3 * trend + 5 * x1 + rng.normal(0, 3, rows)
    frame = pd.DataFrame({"sold_at": stamps.strftime("%Y-%m-%d %H:%M"), "x1": x1, "x2": x2,
                          "amount": amount.round(2)})
    path = folder / "date_column.csv"
    frame.to_csv(path, index=False)
    return Dataset("date-column", str(path), "amount", "regression",
                   f"{rows} rows, a timestamp (ISO text: season, weekend, evening and a trend drive the amount) "
                   "and 2 numeric features (generated)")


def write_rare_class(folder: Path, rows: int = 4_000) -> Dataset:
    """Eight numeric features, 2.5% of the rows in the rare class."""
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=rows, n_features=8, n_informative=5, n_redundant=1, n_classes=2,
                               weights=[0.975], flip_y=0.0, class_sep=1.0, random_state=DATA_SEED)
    frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(x.shape[1])])
    frame["outcome"] = np.where(y == 1, "fraud", "ok")
    path = folder / "rare_class.csv"
    frame.to_csv(path, index=False)
    return Dataset("rare-class", str(path), "outcome", "classification",
                   f"{rows} rows, 8 numeric features, {int(y.sum())} rows ({y.mean():.1%}) in the rare class "
                   "(`make_classification`)", rare=True)


def write_skewed_price(folder: Path, rows: int = 3_000) -> Dataset:
    """House prices: log-normal given area, rooms, age and district."""
    rng = np.random.default_rng(DATA_SEED)
    area = rng.lognormal(np.log(90), 0.45, rows).round(1)
    rooms = np.clip(np.round(area / 30 + rng.normal(0, 0.8, rows)), 1, 8).astype(int)
    age = rng.integers(0, 100, rows)
    district = rng.choice([f"d{i}" for i in range(6)], rows)
    effect = dict(zip([f"d{i}" for i in range(6)], [0.0, 0.25, -0.2, 0.5, -0.35, 0.1], strict=True))
    log_price = (10.5 + 0.9 * np.log(area) + 0.04 * rooms - 0.004 * age
                 + np.array([effect[name] for name in district]) + rng.normal(0, 0.3, rows))
    frame = pd.DataFrame({"area": area, "rooms": rooms, "age": age, "district": district,
                          "price": np.exp(log_price).round(0)})
    path = folder / "skewed_price.csv"
    frame.to_csv(path, index=False)
    skew = float(pd.Series(frame["price"]).skew())
    return Dataset("skewed-price", str(path), "price", "regression",
                   f"{rows} rows, area, rooms, age and a district; a log-normal price (skewness {skew:.1f}), R² on "
                   "the price itself (generated)")


WRITERS = (write_duplicates, write_id_column, write_date_column, write_rare_class, write_skewed_price)


def write_real_tables(folder: Path) -> list[Dataset]:
    """Every table of this module, written to ``folder``."""
    return [write(folder) for write in WRITERS]
