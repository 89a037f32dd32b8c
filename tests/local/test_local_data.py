"""Image folders and data checks through the whole pipeline (kfp.local via the CLI).

The image run uses the shipped digits sample (src/tunepipe/datasets/README.md: 500 PNGs made
from scikit-learn's copy of the UCI handwritten digits); budgets are tiny, so what is checked
is the plumbing: the CNN is chosen, the data report is an HTML artifact, and the exported
SavedModel takes raw images of any size and reproduces the evaluated model.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from test_local_pipeline import TINY_CONFIG, exported_path, model_card, ok, tunepipe

from tunepipe.datasets import resolve

pytestmark = pytest.mark.local

IMAGE_CONFIG = {
    **TINY_CONFIG,
    "search_space": {"conv_blocks": {"min": 1, "max": 2}, "filters": {"min": 8, "max": 16, "step": 8},
                     "kernel_size": [3], "dense_units": {"min": 32, "max": 32}, "batch_size": [32]},
    "training": {"max_epochs": 6, "patience": 3},
    "augmentation": {"flip": "none", "rotation": 0.02},
}


@pytest.fixture(scope="module")
def image_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("images")
    (folder / "tiny.yaml").write_text(yaml.safe_dump(IMAGE_CONFIG))
    stdout = ok(tunepipe("run", "--data", "sample://digits", "--config", "tiny.yaml", "--output", "out", cwd=folder))
    return stdout, folder


def test_image_folder_run_exports_a_cnn_taking_raw_images(image_run: tuple[str, Path]) -> None:
    import tensorflow as tf
    from PIL import Image

    stdout, _ = image_run
    card = model_card(stdout)
    assert card["model_name"] == "digits" and card["task"] == "classification"
    assert card["classes"] == [str(digit) for digit in range(10)]
    assert {"conv_blocks", "filters", "kernel_size", "dense_units"} <= set(card["hyperparameters"])
    assert card["signature"]["inputs"]["image_bytes"]["dtype"] == "string"
    assert card["signature"]["signatures"]["pixels"]["inputs"]["image"]["shape"] == [None, None, None, 1]
    assert card["verification"]["max_abs_difference"] <= 1e-5
    signatures = tf.saved_model.load(str(exported_path(stdout))).signatures  # the version root is the SavedModel
    digit = np.asarray(Image.open(Path(resolve("sample://digits")) / "7" / "7_000.png"), np.float32)
    for size in (32, 64):  # the shipped size and a larger one: the model resizes inside
        pixels = np.asarray(Image.fromarray(digit.astype(np.uint8)).resize((size, size)), np.uint8)
        encoded = tf.io.encode_png(pixels[:, :, None])
        answers = [signatures["serving_default"](image_bytes=tf.reshape(encoded, [1])),
                   signatures["pixels"](image=tf.constant(pixels[None, :, :, None])),
                   signatures["float_pixels"](image=tf.constant(pixels[None, :, :, None].astype(np.float32)))]
        for answer in answers:
            np.testing.assert_allclose(answer["probabilities"].numpy(), answers[0]["probabilities"].numpy(),
                                       atol=1e-5)
            assert answer["predicted_class"].numpy()[0].decode() in card["classes"]
        probabilities = answers[0]["probabilities"]
        assert probabilities.shape == (1, 10)
        assert float(np.sum(probabilities.numpy())) == pytest.approx(1.0, abs=1e-4)


def test_image_run_writes_an_html_data_report(image_run: tuple[str, Path]) -> None:
    _, folder = image_run
    pages = list((folder / "out" / "pipeline_root").rglob("data_report"))
    assert pages, "the ingest step's HTML artifact"
    page = next(path for path in pages if path.is_file()).read_text()
    assert page.startswith("<!doctype html>") and "Images" in page and "Label distribution" in page
    assert "data:image/png;base64," in page


def test_fatal_drift_against_a_baseline_fails_before_training(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    data = pd.DataFrame({"x": rng.normal(size=80), "colour": rng.choice(["red", "blue"], 80),
                         "y": rng.choice(["a", "b"], 80)})
    data.to_csv(tmp_path / "first.csv", index=False)
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    baseline = tmp_path / "baseline.json"
    from tunepipe.data.ingest import clean

    baseline.write_text(json.dumps(clean(data, "y").schema))
    data.drop(columns=["colour"]).to_csv(tmp_path / "second.csv", index=False)
    result = tunepipe("run", "--data", "second.csv", "--label", "y", "--baseline-schema", str(baseline),
                      "--config", "tiny.yaml", "--output", "drift", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "column 'colour' of the baseline schema is missing" in output
    assert "Traceback" not in output
    assert not list((tmp_path / "drift" / "models").rglob("model_card.json"))


def test_refused_input_stops_the_run_and_exports_nothing(tmp_path: Path) -> None:
    (tmp_path / "header.csv").write_text("x,y\n")
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(TINY_CONFIG))
    result = tunepipe("run", "--data", "header.csv", "--label", "y", "--config", "tiny.yaml", "--output", "bad",
                      cwd=tmp_path)
    assert result.returncode != 0
    assert "header.csv: has a header but no data rows" in result.stdout + result.stderr
    assert not list((tmp_path / "bad").rglob("model_card.json"))


def test_data_over_a_size_limit_stops_the_run_and_exports_nothing(tmp_path: Path) -> None:
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump({**TINY_CONFIG, "data": {"max_rows": 100}}))
    result = tunepipe("run", "--data", "sample://penguins", "--config", "tiny.yaml", "--output", "big", cwd=tmp_path)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "344 rows, more than data.max_rows=100" in output, output[-3000:]
    assert not list((tmp_path / "big").rglob("model_card.json"))


def test_unsupported_scheme_is_refused_before_running(tmp_path: Path) -> None:
    result = tunepipe("run", "--data", "http://example.com/d.csv", "--label", "y", "--output", "x", cwd=tmp_path)
    assert result.returncode == 2 and "unsupported scheme http://" in result.stderr
    assert not (tmp_path / "x").exists()
