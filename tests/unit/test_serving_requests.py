"""Prediction requests decoded without HTTP: names or columns, missing values, conversions, refusals."""

import base64
import io
import math
import re

import numpy as np
import pytest
from PIL import Image

from tunepipe.errors import BadRequest
from tunepipe.publishing.serving import DEFAULT_SIGNATURE, FLOAT_PIXELS_SIGNATURE, PIXELS_SIGNATURE
from tunepipe.serving import contract as c
from tunepipe.serving.images import image_size
from tunepipe.serving.requests import decode_request, prediction_rows
from tunepipe.serving.settings import Limits

pytestmark = pytest.mark.unit

TABULAR = c.contract_of(
    {DEFAULT_SIGNATURE: {"bill_length_mm": c.TensorInfo("float32", (None,)),
                         "island": c.TensorInfo("string", (None,))}},
    {"inputs": {"bill_length_mm": {"column": "bill length (mm)"}, "island": {"column": "island"}}},
)
IMAGE = c.contract_of({
    DEFAULT_SIGNATURE: {"image_bytes": c.TensorInfo("string", (None,))},
    PIXELS_SIGNATURE: {"image": c.TensorInfo("uint8", (None, None, None, 3))},
    FLOAT_PIXELS_SIGNATURE: {"image": c.TensorInfo("float32", (None, None, None, 3))},
}, {})
LIMITS = Limits()


def encoded(height: int = 5, width: int = 7, fmt: str = "PNG") -> str:
    buffer = io.BytesIO()
    Image.fromarray(np.full((height, width, 3), 100, np.uint8)).save(buffer, format=fmt)
    return base64.b64encode(buffer.getvalue()).decode()


def test_tabular_rows_by_input_name_or_column_with_missing_values_and_strings() -> None:
    feeds = decode_request({"instances": [
        {"bill_length_mm": 39.5, "island": "Dream"},
        {"bill length (mm)": "41.25", "island": None},
        {"island": "Atlantis"},
        {"bill_length_mm": "", "island": 7},
    ]}, TABULAR, LIMITS)
    assert feeds.signature == DEFAULT_SIGNATURE and feeds.rows == 4
    numbers = feeds.inputs["bill_length_mm"]
    assert numbers.dtype == np.float32 and numbers[:2].tolist() == [39.5, 41.25]
    assert math.isnan(numbers[2]) and math.isnan(numbers[3])
    assert feeds.inputs["island"].tolist() == ["Dream", "", "Atlantis", "7"]


@pytest.mark.parametrize(("instance", "named"), [
    ({"bill_length_mm": "forty"}, "instance 0, input 'bill_length_mm': expected a number, got the string 'forty'"),
    ({"bill_length_mm": True}, "input 'bill_length_mm': expected a number, got True"),
    ({"island": 1.5}, "input 'island': expected a string (a category), got 1.5"),
    ({"flipper": 3}, "instance 0: unknown input 'flipper'"),
    ({"island": "Dream", "bill_length_mm": 1, "bill length (mm)": 2}, "input 'bill_length_mm' is given twice"),
])
def test_tabular_refusals_name_the_input_and_value(instance: dict, named: str) -> None:
    with pytest.raises(BadRequest, match=re.escape(named)):
        decode_request({"instances": [instance]}, TABULAR, LIMITS)


@pytest.mark.parametrize(("body", "named"), [
    ([1, 2], "must be a JSON object"),
    ({"inputs": {"island": ["Dream"]}}, 'no "instances" list'),
    ({"instances": []}, "non-empty list"),
    ({"instances": [3]}, "instance 0: expected a JSON object"),
])
def test_malformed_bodies_are_refused(body: object, named: str) -> None:
    with pytest.raises(BadRequest, match=named):
        decode_request(body, TABULAR, LIMITS)


def test_images_as_bytes_in_both_spellings() -> None:
    data = encoded()
    feeds = decode_request({"instances": [{"image_bytes": {"b64": data}}, {"b64": encoded(fmt="JPEG")}]}, IMAGE, LIMITS)
    assert feeds.signature == DEFAULT_SIGNATURE and feeds.rows == 2
    assert feeds.inputs["image_bytes"][0] == base64.b64decode(data)


def test_images_as_pixels_pick_the_uint8_or_float_signature() -> None:
    whole = decode_request({"instances": [{"image": np.full((4, 6, 3), 9).tolist()}]}, IMAGE, LIMITS)
    assert whole.signature == PIXELS_SIGNATURE and whole.inputs["image"].dtype == np.uint8
    assert whole.inputs["image"].shape == (1, 4, 6, 3)
    fractional = decode_request({"instances": [{"image": np.full((4, 6, 3), 9.5).tolist()}]}, IMAGE, LIMITS)
    assert fractional.signature == FLOAT_PIXELS_SIGNATURE and fractional.inputs["image"].dtype == np.float32


@pytest.mark.parametrize(("instance", "limits", "named"), [
    ({"image_bytes": {"b64": "!!!"}}, LIMITS, "input 'image_bytes': not valid base64"),
    ({"image_bytes": {"b64": base64.b64encode(b"RIFF....WEBPVP8 ").decode()}}, LIMITS, "not a JPEG, PNG, GIF or BMP"),
    ({"image_bytes": "abc"}, LIMITS, 'expected {"b64"'),
    ({"image_bytes": {"b64": encoded()[:60]}}, LIMITS, "image does not decode|truncated"),
    ({"image_bytes": {"b64": encoded(50, 50)}}, Limits(max_image_pixels=2000), "50x50 = 2500 pixels is over"),
    ({"image_bytes": {"b64": encoded()}}, Limits(max_image_bytes=10), "bytes is over the limit of 10 bytes"),
    ({"image": [[[1, 2]]]}, LIMITS, r"expected pixels \[height\]\[width\]\[3\], got shape \[1, 1, 2\]"),
    ({"image": [[[1, 2, 300]]]}, LIMITS, "pixel values must lie in 0-255"),
    ({"image": [[[1, 2, 3]], [[1, 2]]]}, LIMITS, "pixel rows of different lengths|got shape"),
    ({"image": [[["a", "b", "c"]]]}, LIMITS, "expected nested lists of numbers"),
    ({"pixels": [[[1, 2, 3]]]}, LIMITS, "unknown input 'pixels'"),
    ({}, LIMITS, "expected one input"),
])
def test_image_refusals_name_the_input(instance: dict, limits: Limits, named: str) -> None:
    with pytest.raises(BadRequest, match=named):
        decode_request({"instances": [instance]}, IMAGE, limits)


def test_one_request_sends_images_one_way_and_one_size() -> None:
    with pytest.raises(BadRequest, match="the same way"):
        decode_request({"instances": [{"b64": encoded()}, {"image": [[[1, 2, 3]]]}]}, IMAGE, LIMITS)
    with pytest.raises(BadRequest, match="share one size"):
        decode_request({"instances": [{"image": [[[1, 2, 3]]]}, {"image": [[[1, 2, 3], [1, 2, 3]]]}]}, IMAGE, LIMITS)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP"])
def test_image_size_is_read_from_the_header(fmt: str) -> None:
    assert image_size(base64.b64decode(encoded(13, 21, fmt)), "x") == (13, 21)


def test_prediction_rows_are_one_object_per_row() -> None:
    rows = prediction_rows({"probabilities": np.asarray([[0.25, 0.75], [1.0, 0.0]], np.float32),
                            "predicted_class": np.asarray([b"b", b"a"], object)})
    assert rows == [{"predicted_class": "b", "probabilities": [0.25, 0.75]},
                    {"predicted_class": "a", "probabilities": [1.0, 0.0]}]


def test_an_identifier_column_the_card_names_is_accepted_and_ignored() -> None:
    """Ingest left 'customer_id' out of the model (an identifier): clients keep sending whole rows."""
    with_id = c.contract_of(
        {DEFAULT_SIGNATURE: {"island": c.TensorInfo("string", (None,))}},
        {"inputs": {"island": {"column": "island"}}, "ignored_columns": ["customer_id"]},
    )
    feeds = decode_request({"instances": [{"customer_id": 1017, "island": "Dream"}, {"island": "Biscoe"}]},
                           with_id, LIMITS)
    assert list(feeds.inputs) == ["island"] and feeds.inputs["island"].tolist() == ["Dream", "Biscoe"]
    with pytest.raises(BadRequest, match="unknown input 'customer_id'"):
        decode_request({"instances": [{"customer_id": 1017, "island": "Dream"}]}, TABULAR, LIMITS)
