"""TensorFlow Serving's warm-up file: requests it replays when it loads a version.

TF Serving reads ``assets.extra/tf_serving_warmup_requests``, a TFRecord file of
``tensorflow.serving.PredictionLog`` messages, and runs each request before it marks the
version available, so the first real request does not pay for graph tracing. The messages are
encoded here by hand (field numbers of ``tensorflow_serving/apis/prediction_log.proto``,
``predict.proto`` and ``model.proto``): the ``tensorflow-serving-api`` package requires the full
``tensorflow`` package, which would sit beside ``tensorflow-cpu``. The tensors themselves are
TensorFlow's own ``TensorProto``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# PredictionLog.predict_log = 6; PredictLog.request = 1; PredictRequest.model_spec = 1, inputs = 2
# (map<string, TensorProto>: entries with key = 1, value = 2); ModelSpec.name = 1, signature_name = 3.
PREDICTION_LOG_PREDICT_LOG = 6
PREDICT_LOG_REQUEST = 1
PREDICT_REQUEST_MODEL_SPEC = 1
PREDICT_REQUEST_INPUTS = 2
MAP_KEY, MAP_VALUE = 1, 2
MODEL_SPEC_NAME = 1
MODEL_SPEC_SIGNATURE_NAME = 3
LENGTH_DELIMITED = 2  # protobuf wire type of strings, bytes and messages


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte, value = value & 0x7F, value >> 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    return _varint(number << 3 | LENGTH_DELIMITED) + _varint(len(payload)) + payload


def prediction_log(model_name: str, signature_name: str, tensors: Mapping[str, bytes]) -> bytes:
    """One serialized ``PredictionLog`` holding a ``PredictRequest`` of serialized ``TensorProto``s."""
    spec = _field(MODEL_SPEC_NAME, model_name.encode()) + _field(MODEL_SPEC_SIGNATURE_NAME, signature_name.encode())
    request = _field(PREDICT_REQUEST_MODEL_SPEC, spec)
    for name, tensor in sorted(tensors.items()):
        request += _field(PREDICT_REQUEST_INPUTS, _field(MAP_KEY, name.encode()) + _field(MAP_VALUE, tensor))
    return _field(PREDICTION_LOG_PREDICT_LOG, _field(PREDICT_LOG_REQUEST, request))


def write_warmup(path: Path, model_name: str, requests: Sequence[tuple[str, Mapping[str, Any]]]) -> None:
    """Writes ``requests`` (signature name, inputs as arrays) as TF Serving's warm-up TFRecord file."""
    import tensorflow as tf  # TensorProto and the TFRecord writer are TensorFlow's

    path.parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for signature_name, inputs in requests:
            tensors = {name: tf.make_tensor_proto(value).SerializeToString() for name, value in inputs.items()}
            writer.write(prediction_log(model_name, signature_name, tensors))
