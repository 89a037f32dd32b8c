"""``tunepipe serve`` over HTTP: answers equal the SavedModel's in-process, bad requests get 400
naming the input and the server keeps serving, readiness follows loading, and a champion change
under load fails no request."""

from __future__ import annotations

import base64
import io
import math
import time
from pathlib import Path

import numpy as np
import pytest
import requests
import tensorflow as tf
from conftest import Load, Server, start_server
from PIL import Image
from serving_models import publish

pytestmark = pytest.mark.serving
TOLERANCE = 1e-5
MAX_BODY = 100_000
MAX_PIXELS = 64 * 64


@pytest.fixture(scope="module")
def tabular(tmp_path_factory: pytest.TempPathFactory, server_factory: list[Server]) -> Server:
    """A server started before any version exists (not ready), then version 1 published."""
    root = tmp_path_factory.mktemp("tabular")
    server = start_server(root, "penguins", root / "serve.log", "--max-body-bytes", str(MAX_BODY))
    server_factory.append(server)
    server.wait_listening()
    assert requests.get(f"{server.url}/", timeout=5).status_code == 200  # alive
    assert server.ready() == 503  # no champion yet: not ready
    publish(server.model_dir, 1)
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory, server_factory: list[Server]) -> Server:
    root = tmp_path_factory.mktemp("image")
    (root / "digits").mkdir()
    publish(root / "digits", 1, kind="image")
    server = start_server(root, "digits", root / "serve.log", "--max-image-pixels", str(MAX_PIXELS))
    server_factory.append(server)
    server.wait_ready()
    return server


def in_process(folder: Path, signature: str, **inputs: object) -> dict[str, np.ndarray]:
    function = tf.saved_model.load(str(folder)).signatures[signature]
    return {name: value.numpy() for name, value in function(**{k: tf.constant(v) for k, v in inputs.items()}).items()}


def post(server: Server, body: object) -> requests.Response:
    return requests.post(server.predict_url, json=body, timeout=30)


def png(pixels: np.ndarray) -> str:
    buffer = io.BytesIO()
    Image.fromarray(pixels.squeeze(-1) if pixels.shape[-1] == 1 else pixels).save(buffer, format="PNG")
    return base64.b64encode(buffer.getvalue()).decode()


def test_tabular_answers_equal_the_saved_model_in_process(tabular: Server) -> None:
    rows = [{"bill_length_mm": 39.1, "island": "Torgersen"},
            {"bill length (mm)": "47.5", "island": None},  # column name, number as a string, missing category
            {"island": "Atlantis"},  # unseen category, missing number
            {"bill_length_mm": None, "island": "Dream"}]
    response = post(tabular, {"instances": rows})
    assert response.status_code == 200, response.text
    answer = response.json()
    expected = in_process(tabular.model_dir / "1", "serving_default",
                          bill_length_mm=np.asarray([39.1, 47.5, math.nan, math.nan], np.float32),
                          island=["Torgersen", "", "Atlantis", "Dream"])
    assert answer["model_version"] == 1 and len(answer["predictions"]) == 4
    for row, prediction in enumerate(answer["predictions"]):
        assert np.allclose(prediction["probabilities"], expected["probabilities"][row], atol=TOLERANCE)
        assert prediction["predicted_class"] == expected["predicted_class"][row].decode()


@pytest.mark.parametrize(("body", "named"), [
    ({"instances": [{"bill_length_mm": "forty", "island": "Dream"}]}, "input 'bill_length_mm'"),
    ({"instances": [{"bill_length_mm": 40, "flipper_length_mm": 3}]}, "unknown input 'flipper_length_mm'"),
    ({"instances": [{"island": ["Dream"]}]}, "input 'island'"),
    ({"rows": []}, '"instances"'),
])
def test_tabular_bad_requests_get_400_naming_the_input_and_the_next_succeeds(
        tabular: Server, body: object, named: str) -> None:
    response = post(tabular, body)
    assert response.status_code == 400 and named in response.json()["error"], response.text
    assert post(tabular, {"instances": [{"bill_length_mm": 40.0}]}).status_code == 200


def test_bodies_over_the_limit_get_400_declared_or_chunked(tabular: Server) -> None:
    big = b'{"instances": [' + b",".join([b'{"island": "Dream"}'] * 8000) + b"]}"
    assert len(big) > MAX_BODY
    declared = requests.post(tabular.predict_url, data=big, headers={"content-type": "application/json"}, timeout=30)
    assert declared.status_code == 400 and "over the limit of 100000 bytes" in declared.json()["error"]
    chunked = requests.post(tabular.predict_url, data=iter([big[:60_000], big[60_000:]]),
                            headers={"content-type": "application/json"}, timeout=30)
    assert chunked.status_code == 400 and "--max-body-bytes" in chunked.json()["error"]
    small = requests.post(tabular.predict_url, data=iter([b'{"instances": ', b'[{"island": "Dream"}]}']),
                          headers={"content-type": "application/json"}, timeout=30)
    assert small.status_code == 200, small.text


def test_image_bytes_and_pixels_equal_the_saved_model_in_process(image: Server) -> None:
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (2, 12, 10, 1), dtype=np.uint8)
    encoded = [png(p) for p in pixels]
    by_bytes = post(image, {"instances": [{"image_bytes": {"b64": encoded[0]}}, {"b64": encoded[1]}]})
    by_pixels = post(image, {"instances": [{"image": p.tolist()} for p in pixels]})
    by_floats = post(image, {"instances": [{"image": (p.astype(np.float32) * 0.99 + 0.5).tolist()} for p in pixels]})
    assert by_bytes.status_code == by_pixels.status_code == by_floats.status_code == 200
    folder = image.model_dir / "1"
    expectations = [
        (by_bytes, in_process(folder, "serving_default", image_bytes=[base64.b64decode(e) for e in encoded])),
        (by_pixels, in_process(folder, "pixels", image=pixels)),
        (by_floats, in_process(folder, "float_pixels", image=pixels.astype(np.float32) * 0.99 + 0.5)),
    ]
    for response, expected in expectations:
        for row, prediction in enumerate(response.json()["predictions"]):
            assert np.allclose(prediction["probabilities"], expected["probabilities"][row], atol=TOLERANCE)
            assert prediction["predicted_class"] == expected["predicted_class"][row].decode()


@pytest.mark.parametrize(("instance", "named"), [
    ({}, "image_bytes"),
    ({"image_bytes": {"b64": base64.b64encode(b"\x89PNG\r\n\x1a\nbroken").decode()}}, "input 'image_bytes'"),
    ({"image_bytes": {"b64": png(np.zeros((80, 80, 1), np.uint8))}}, "80x80 = 6400 pixels is over the limit"),
    ({"image": np.zeros((80, 80, 1)).tolist()}, "input 'image': image of 80x80"),
    ({"image": [[["a"]]]}, "input 'image'"),
])
def test_image_bad_requests_get_400_naming_the_input_and_the_next_succeeds(
        image: Server, instance: dict, named: str) -> None:
    response = post(image, {"instances": [instance]})
    assert response.status_code == 400 and named in response.json()["error"], response.text
    assert post(image, {"instances": [{"b64": png(np.zeros((8, 8, 1), np.uint8))}]}).status_code == 200


def test_a_champion_change_under_load_fails_no_request(tabular: Server) -> None:
    """Runs last on the tabular server: it moves its champion to version 2."""
    body = {"instances": [{"bill_length_mm": 45.0, "island": "Biscoe"}]}
    with Load(tabular, body, clients=2) as load:
        time.sleep(1.0)
        publish(tabular.model_dir, 2, shift=0.5)
        load.wait_for_version(2)
        time.sleep(1.0)
    failures, versions = load.failures, load.versions
    assert failures == []
    assert versions[0] == 1 and versions[-1] == 2 and versions.count(2) > 0
    assert versions.index(2) + versions[versions.index(2):].count(2) == len(versions)  # never back to 1
    answer = post(tabular, body).json()["predictions"][0]
    expected = in_process(tabular.model_dir / "2", "serving_default",
                          bill_length_mm=np.asarray([45.0], np.float32), island=["Biscoe"])
    assert np.allclose(answer["probabilities"], expected["probabilities"][0], atol=TOLERANCE)
