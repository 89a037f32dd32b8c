"""Prediction requests to input arrays and outputs back to rows, without HTTP.

The wire format is KServe's protocol v1, which is TensorFlow Serving's REST row format::

    {"instances": [{"bill_length_mm": 39.1, "island": "Biscoe"}, ...]}      tabular
    {"instances": [{"image_bytes": {"b64": "iVBORw0..."}}]}                  image, encoded
    {"instances": [{"b64": "iVBORw0..."}]}                                  image, encoded, bare
    {"instances": [{"image": [[[0, 12, 255], ...], ...]}]}                  image, pixels

(``image`` is the image column's input name, as the model card's signature lists it.)

    {"predictions": [{"probabilities": [0.9, 0.05, 0.05], "predicted_class": "Adelie"}, ...]}

Tabular instances name each feature by its input name or its original column; ``null`` or a
missing key is a missing value (NaN for a number, "" for a category, which the model imputes),
numbers sent as strings are converted, and categories the model never saw are fine (the model's
out-of-vocabulary bucket). Everything else that cannot be answered raises
:class:`~tunepipe.errors.BadRequest` naming the input, instance and value.
"""

from __future__ import annotations

import base64
import binascii
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from tunepipe.errors import BadRequest
from tunepipe.publishing.serving import DEFAULT_SIGNATURE, FLOAT_PIXELS_SIGNATURE, PIXELS_SIGNATURE, date_days
from tunepipe.serving import contract as c
from tunepipe.serving.images import check_encoded, check_pixels
from tunepipe.serving.settings import Limits

B64 = "b64"
INSTANCES = "instances"


@dataclass(frozen=True)
class Feeds:
    """One request, decoded: the signature to call and its input arrays (one row per instance)."""

    signature: str
    inputs: dict[str, np.ndarray]
    rows: int


def instances_of(body: Any) -> list[Any]:
    """The ``instances`` list of a request body.

    Raises:
        BadRequest: Not a JSON object with a non-empty ``instances`` list.
    """
    if not isinstance(body, Mapping):
        raise BadRequest(f'request body must be a JSON object {{"instances": [...]}}, got {type(body).__name__}')
    if INSTANCES not in body:
        found = sorted(body)
        raise BadRequest(f'request body has no "instances" list (keys: {found}); the columnar "inputs" '
                         'format is not served: send one object per row under "instances"')
    instances = body[INSTANCES]
    if not isinstance(instances, list) or not instances:
        raise BadRequest(f'"instances" must be a non-empty list, got {instances!r:.80}')
    return instances


def decode_request(body: Any, contract: c.Contract, limits: Limits) -> Feeds:
    """Decodes a v1 request body for ``contract``'s model.

    Raises:
        BadRequest: The body, an instance or a value cannot be used; the message names it.
    """
    instances = instances_of(body)
    if contract.is_image:
        return image_feeds(instances, contract, limits)
    return Feeds(DEFAULT_SIGNATURE, tabular_inputs(instances, contract), len(instances))


# ---- tabular -------------------------------------------------------------------------------


def _number(value: Any, where: str) -> float:
    if value is None:
        return math.nan
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise BadRequest(f"{where}: expected a number, got {value!r:.80}")
    if isinstance(value, str):
        if not value.strip():
            return math.nan
        try:
            return float(value)
        except ValueError:
            raise BadRequest(f"{where}: expected a number, got the string {value!r:.80}") from None
    return float(value)


def _date(value: Any, where: str) -> float:
    """A date input: days since the epoch as a number, or the date as text (ISO 8601), as ingest reads it."""
    if not isinstance(value, str) or not value.strip():
        return _number(value, where)
    days = date_days(value)
    if math.isnan(days):
        raise BadRequest(f"{where}: expected a date (ISO 8601, e.g. 2024-03-01 14:30) or days since 1970-01-01, "
                         f"got the string {value!r:.80}")
    return float(days)


def _category(value: Any, where: str) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # a category spelled as a whole number, as a CSV file would hold it
    raise BadRequest(f"{where}: expected a string (a category), got {value!r:.80}")


def _named(instance: Any, index: int, contract: c.Contract) -> dict[str, Any]:
    """The instance's values by input name (columns translated), refusing unknown or repeated ones;
    a column the model ignores (an identifier) is accepted and left out."""
    if not isinstance(instance, Mapping):
        raise BadRequest(f"instance {index}: expected a JSON object of input name -> value, got {instance!r:.80}")
    named: dict[str, Any] = {}
    for key, value in instance.items():
        if key in contract.ignored:
            continue
        name = key if key in contract.inputs else contract.columns.get(key)
        if name is None:
            raise BadRequest(f"instance {index}: unknown input {key!r}; expected input names {sorted(contract.inputs)}"
                             f" or columns {sorted(contract.columns)}")
        if name in named:
            raise BadRequest(f"instance {index}: input {name!r} is given twice (by its name and its column)")
        named[name] = value
    return named


def tabular_inputs(instances: Sequence[Any], contract: c.Contract) -> dict[str, np.ndarray]:
    """One ``[rows]`` array per input; missing values as NaN or ""."""
    columns: dict[str, list[Any]] = {name: [] for name in contract.inputs}
    for index, instance in enumerate(instances):
        named = _named(instance, index, contract)
        for name, info in contract.inputs.items():
            where = f"instance {index}, input {name!r}"
            value = named.get(name)
            convert = _category if info.dtype == c.STRING else _date if name in contract.dates else _number
            columns[name].append(convert(value, where))
    return {name: np.asarray(values, dtype=object if contract.inputs[name].dtype == c.STRING else np.float32)
            for name, values in columns.items()}


# ---- images --------------------------------------------------------------------------------


def _encoded(value: Any, where: str, limits: Limits) -> bytes:
    if not (isinstance(value, Mapping) and set(value) == {B64} and isinstance(value[B64], str)):
        raise BadRequest(f'{where}: expected {{"b64": "<base64 of a JPEG, PNG, GIF or BMP file>"}}, got {value!r:.80}')
    try:
        data = base64.b64decode(value[B64], validate=True)
    except (binascii.Error, ValueError):
        raise BadRequest(f"{where}: not valid base64") from None
    check_encoded(data, limits, where)
    return data


def _pixels(value: Any, where: str, contract: c.Contract, limits: Limits) -> np.ndarray:
    try:
        array = np.asarray(value)
    except ValueError:
        raise BadRequest(f"{where}: pixel rows of different lengths") from None
    if array.dtype.kind not in "iuf" or array.dtype == np.bool_:
        raise BadRequest(f"{where}: expected nested lists of numbers 0-255, got {array.dtype} values")
    channels = contract.channels
    if array.ndim == 2 and channels in (1, None):
        array = array[..., np.newaxis]
    if array.ndim != 3 or (channels is not None and array.shape[-1] != channels):
        raise BadRequest(f"{where}: expected pixels [height][width][{channels or 'channels'}], got shape "
                         f"{list(array.shape)}")
    check_pixels(array.shape[0], array.shape[1], limits, where)
    if array.size and (array.min() < 0 or array.max() > 255 or np.isnan(array).any()):
        raise BadRequest(f"{where}: pixel values must lie in 0-255 (found {array.min()} to {array.max()})")
    return array


def _image_value(instance: Any, index: int, contract: c.Contract) -> tuple[str, Any]:
    """Which input an image instance uses (the bytes or the pixel input) and its value."""
    encoded, pixels = str(contract.bytes_input), str(contract.pixel_input)
    if isinstance(instance, Mapping) and set(instance) == {B64}:
        return encoded, instance
    if not isinstance(instance, Mapping) or len(instance) != 1:
        keys = sorted(instance) if isinstance(instance, Mapping) else type(instance).__name__
        raise BadRequest(f'instance {index}: expected one input, "{encoded}" ({{"b64": ...}}) or '
                         f'"{pixels}" (pixel arrays), got {keys}')
    ((name, value),) = instance.items()
    if name not in (encoded, pixels):
        raise BadRequest(f'instance {index}: unknown input {name!r}; expected "{encoded}" or "{pixels}"')
    return name, value


def image_feeds(instances: Sequence[Any], contract: c.Contract, limits: Limits) -> Feeds:
    """Encoded images for ``serving_default``, or pixels for ``pixels`` (whole numbers) / ``float_pixels``."""
    encoded, pixels = str(contract.bytes_input), str(contract.pixel_input)
    named = [_image_value(instance, index, contract) for index, instance in enumerate(instances)]
    kinds = {name for name, _ in named}
    if len(kinds) > 1:
        raise BadRequest(f'one request must send every image the same way: "{encoded}" or "{pixels}", not both')
    if kinds == {encoded}:
        data = [_encoded(value, f"instance {index}, input {encoded!r}", limits)
                for index, (_, value) in enumerate(named)]
        return Feeds(DEFAULT_SIGNATURE, {encoded: np.asarray(data, dtype=object)}, len(data))
    arrays = [_pixels(value, f"instance {index}, input {pixels!r}", contract, limits)
              for index, (_, value) in enumerate(named)]
    shapes = {array.shape for array in arrays}
    if len(shapes) > 1:
        raise BadRequest(f"input {pixels!r}: images of one request must share one size, got "
                         f"{sorted(list(shape) for shape in shapes)}; send one request per size")
    batch = np.stack(arrays)
    whole = bool(np.all(batch == np.round(batch)))
    signature = PIXELS_SIGNATURE if whole else FLOAT_PIXELS_SIGNATURE
    if signature not in contract.signatures:
        raise BadRequest(f"input {pixels!r}: this model has no {signature!r} signature; send encoded images")
    return Feeds(signature, {pixels: batch.astype(np.uint8 if whole else np.float32)}, len(arrays))


# ---- responses -----------------------------------------------------------------------------


def _value(item: Any) -> Any:
    if isinstance(item, bytes):
        return item.decode("utf-8", errors="replace")
    if isinstance(item, np.ndarray):
        return [_value(inner) for inner in item] if item.dtype == object else item.tolist()
    return item.item() if isinstance(item, np.generic) else item


def prediction_rows(outputs: Mapping[str, np.ndarray]) -> list[dict[str, Any]]:
    """One object per row: output name -> that row's value (strings decoded, arrays as lists)."""
    names = sorted(outputs)
    rows = len(next(iter(outputs.values()))) if outputs else 0
    return [{name: _value(outputs[name][row]) for name in names} for row in range(rows)]
