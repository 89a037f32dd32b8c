"""The shipped penguins, ingested and split as the pipeline does, for tests that train or tune on them."""

from __future__ import annotations

import json
from pathlib import Path

import keras_tuner

from tunepipe import artifacts
from tunepipe.config import SearchSpace, SplitConfig
from tunepipe.data.ingest import run_ingest
from tunepipe.data.preprocess import run_preprocess
from tunepipe.modelling.model import TabularHyperModel


def penguin_splits(root: Path) -> dict[str, Path | str]:
    """Ingests and splits (seed 0) the penguins under ``root``: the train, validation, test and spec
    folders by name, and the data's ``fingerprint``."""
    result = run_ingest("sample://penguins", "species", "auto", root / "cleaned")
    outputs = {name: root / name for name in (artifacts.TRAIN, artifacts.VALIDATION, artifacts.TEST, "spec")}
    run_preprocess(root / "cleaned", SplitConfig(), 0, outputs)
    return {**outputs, "fingerprint": result.schema["fingerprint"]}


def write_best(root: Path, space: SearchSpace) -> Path:
    """Writes ``space``'s first configuration as ``root/best``'s best hyperparameters (the spec is
    ``root/spec``); returns the folder."""
    from tunepipe.data.preprocess import read_spec

    hp = keras_tuner.HyperParameters()
    TabularHyperModel(read_spec(root / "spec"), space).build(hp)  # registers the values
    (root / "best").mkdir(exist_ok=True)
    (root / "best" / artifacts.BEST_HYPERPARAMETERS_FILE).write_text(json.dumps(hp.get_config()))
    return root / "best"
