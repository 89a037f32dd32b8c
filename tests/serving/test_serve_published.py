"""``tunepipe serve`` over versions the pipeline itself published (tiny budgets, kfp.local via the CLI):
penguins (tabular) and the shipped digits (images). Every answer is compared with the evaluated
Keras serving model (``assets.extra/model.keras``) on the same rows; a pointer move under load
fails no request."""

from __future__ import annotations

import base64
import math
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import pytest
import requests
import yaml
from conftest import Load, Server, start_server
from PIL import Image

from pipelines.cli import sample_dataset
from tunepipe.datasets import resolve
from tunepipe.publishing import layout
from tunepipe.publishing.publish import update_local_champion

pytestmark = pytest.mark.serving
TOLERANCE = 1e-5
# The local tier's tiny budgets (tests/local): the plumbing is checked, not accuracy.
TINY = {"tuning": {"max_epochs": 2, "patience": 1},
        "search_space": {"hidden_layers": {"min": 1, "max": 1}, "units": {"min": 8, "max": 8}, "batch_size": [32]},
        "training": {"max_epochs": 3, "patience": 1}, "evaluation": {"cv_folds": 2, "force_export": True}}
TINY_IMAGES = {**TINY, "search_space": {"conv_blocks": {"min": 1, "max": 1}, "filters": {"min": 8, "max": 8},
                                        "kernel_size": [3], "dense_units": {"min": 16, "max": 16}, "batch_size": [32]},
               "augmentation": {"flip": "none", "rotation": 0.0}}


def run_pipeline(folder: Path, config: dict[str, Any], *data: str) -> Path:
    """One local pipeline run; the export root it published into."""
    import subprocess
    import sys

    (folder / "tiny.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run([sys.executable, "-m", "pipelines.cli", "run", *data, "--config", "tiny.yaml",
                             "--output", "out"], cwd=folder, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return folder / "out" / "models"


@pytest.fixture(scope="module")
def penguins(tmp_path_factory: pytest.TempPathFactory, server_factory: list[Server]) -> Server:
    root = run_pipeline(tmp_path_factory.mktemp("penguins"), TINY)
    server = start_server(root, "penguins", root / "serve.log")
    server_factory.append(server)
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def digits(tmp_path_factory: pytest.TempPathFactory, server_factory: list[Server]) -> Server:
    root = run_pipeline(tmp_path_factory.mktemp("digits"), TINY_IMAGES, "--data", "sample://digits")
    server = start_server(root, "digits", root / "serve.log")
    server_factory.append(server)
    server.wait_ready()
    return server


def champion_folder(server: Server) -> Path:
    versions = sorted(int(p.name) for p in server.model_dir.iterdir() if p.name.isdigit())
    return server.model_dir / str(versions[-1])


def card_of(folder: Path) -> dict[str, Any]:
    import json

    return json.loads((folder / layout.MODEL_CARD).read_text())


def keras_answers(folder: Path, feeds: dict[str, np.ndarray]) -> np.ndarray:
    """The evaluated Keras serving model on the same rows (tensors: numpy cannot carry strings to Keras)."""
    import tensorflow as tf

    model = keras.models.load_model(folder / layout.KERAS_MODEL, compile=False)
    return np.asarray(model.predict({name: tf.constant(values) for name, values in feeds.items()}, verbose=0))


def test_penguin_rows_equal_the_evaluated_model(penguins: Server) -> None:
    folder = champion_folder(penguins)
    inputs = card_of(folder)["signature"]["inputs"]  # input name -> {"column", "dtype"}
    frame = pd.read_csv(sample_dataset()).head(6).drop(columns=["species"])
    frame.loc[0, "bill_length_mm"] = math.nan  # a missing number
    frame.loc[1, "sex"] = None  # a missing category
    frame.loc[2, "island"] = "Atlantis"  # unseen
    rows = []
    for index, record in enumerate(frame.to_dict("records")):
        row = {}
        for name, entry in inputs.items():
            value = record[entry["column"]]
            value = None if isinstance(value, float) and math.isnan(value) else value
            if index == 3 and entry["dtype"] == "float32" and value is not None:
                value = str(value)  # numbers sent as strings
            row[entry["column"] if index % 2 else name] = value  # columns or input names
        rows.append(row)
    response = requests.post(penguins.predict_url, json={"instances": rows}, timeout=30)
    assert response.status_code == 200, response.text
    feeds = {}
    for name, entry in inputs.items():
        column = frame[entry["column"]]
        if entry["dtype"] == "float32":
            feeds[name] = column.astype("float32").to_numpy()[:, None]
        else:
            feeds[name] = np.asarray([["" if pd.isna(value) else str(value)] for value in column], object)
    expected = keras_answers(folder, feeds)
    for row, prediction in enumerate(response.json()["predictions"]):
        assert np.allclose(prediction["probabilities"], expected[row], atol=TOLERANCE)


def test_digits_as_bytes_and_pixels_equal_the_evaluated_model(digits: Server) -> None:
    folder = champion_folder(digits)
    files = sorted(Path(resolve("sample://digits")).glob("*/*_000.png"))[:3]
    encoded = [base64.b64encode(path.read_bytes()).decode() for path in files]
    pixels = [np.asarray(Image.open(path)) for path in files]
    by_bytes = requests.post(digits.predict_url, json={"instances": [{"b64": e} for e in encoded]}, timeout=30)
    by_pixels = requests.post(digits.predict_url, json={"instances": [{"image": p.tolist()} for p in pixels]},
                              timeout=30)
    assert by_bytes.status_code == by_pixels.status_code == 200, by_bytes.text + by_pixels.text
    name = next(iter(card_of(folder)["signature"]["signatures"]["pixels"]["inputs"]))
    expected = keras_answers(folder, {name: np.stack(pixels).astype(np.float32)[..., None]})
    for response in (by_bytes, by_pixels):
        for row, prediction in enumerate(response.json()["predictions"]):
            assert np.allclose(prediction["probabilities"], expected[row], atol=TOLERANCE)
    bad = requests.post(digits.predict_url, json={"instances": [{"b64": base64.b64encode(b"not an image").decode()}]},
                        timeout=30)
    assert bad.status_code == 400 and "image_bytes" in bad.json()["error"]


def test_a_pointer_move_under_load_fails_no_request(penguins: Server) -> None:
    """The pipeline's version copied as the next one and the pointer moved, as a new publish does."""
    current = champion_folder(penguins)
    body = {"instances": [{"island": "Biscoe", "bill_length_mm": 45.0}]}
    following = int(current.name) + 1
    with Load(penguins, body) as load:
        time.sleep(0.5)
        shutil.copytree(current, penguins.model_dir / f".staging-{following}")
        (penguins.model_dir / f".staging-{following}").rename(penguins.model_dir / str(following))
        update_local_champion(penguins.model_dir, following)
        load.wait_for_version(following)
    failures, versions = load.failures, load.versions
    assert failures == [] and versions[0] == int(current.name) and versions[-1] == following
