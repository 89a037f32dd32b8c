"""Image folders, the CNN hypermodel and its serving wrapper; min-max, embeddings, noise, oversampling."""

from __future__ import annotations

from pathlib import Path

import keras
import keras_tuner
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from tunepipe.config import AugmentationConfig, ImageConfig, SearchSpace
from tunepipe.data.features import CategoricalFeature, ImageFeature, NumericFeature, PreprocessingSpec, model_inputs
from tunepipe.data.images import decode_all, image_files, read_image_folder
from tunepipe.data.preprocess import oversample
from tunepipe.datasets import resolve
from tunepipe.modelling.chooser import hypermodel_for
from tunepipe.modelling.image_model import ImageHyperModel, augmentation_layers, image_serving_model
from tunepipe.modelling.model import TabularHyperModel, embedding_dim

pytestmark = pytest.mark.unit


def test_shipped_digits_sample() -> None:
    frame, report = read_image_folder(Path(resolve("sample://digits")), "label", ImageConfig())
    assert len(frame) == 500 and report["corrupt_skipped"] == []
    assert frame["label"].value_counts().to_dict() == {str(d): 50 for d in range(10)}
    assert report["channels"] == 1 and len(frame["image"].iloc[0]) == 32 * 32


def test_mixed_modes_become_rgb_and_are_resized(tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    Image.new("L", (20, 10), 200).save(tmp_path / "a" / "gray.png")
    Image.new("RGB", (7, 9), (255, 0, 0)).save(tmp_path / "b" / "red.jpg")
    frame, report = read_image_folder(tmp_path, "label", ImageConfig(height=8, width=16))
    assert report["channels"] == 3
    pixels = np.frombuffer(frame["image"].iloc[0], np.uint8).reshape(8, 16, 3)
    assert (pixels == 200).all()  # gray replicated into three channels
    red = np.frombuffer(frame["image"].iloc[1], np.uint8).reshape(8, 16, 3)
    assert red[..., 0].min() > 200 and red[..., 1].max() < 30


def test_parallel_decoding_equals_serial() -> None:
    paths = [str(path) for _, path in image_files(Path(resolve("sample://digits")))]
    assert decode_all(paths, 16, 16, workers=2) == decode_all(paths, 16, 16, workers=1)


def _image_spec(augmentation: dict | None = None) -> PreprocessingSpec:
    return PreprocessingSpec("classification", "label", classes=["a", "b", "c"],
                             image=ImageFeature("image", "image", 16, 16, 1), augmentation=augmentation or {})


def test_image_spec_picks_the_cnn_and_hyperparameters_round_trip() -> None:
    spec = _image_spec()
    assert isinstance(hypermodel_for(spec, SearchSpace()), ImageHyperModel)
    hp = keras_tuner.HyperParameters()
    model = hypermodel_for(spec, SearchSpace()).build(hp)
    assert {"conv_blocks", "filters", "kernel_size", "dense_units", "dropout"} <= set(hp.values)
    again = keras_tuner.HyperParameters.from_config(hp.get_config())
    rebuilt = hypermodel_for(spec, SearchSpace()).build(again)
    assert rebuilt.count_params() == model.count_params()
    assert PreprocessingSpec.from_json(spec.to_json()) == spec


def test_augmentation_layers_follow_the_config_and_are_inactive_at_inference() -> None:
    names = [layer.name for layer in augmentation_layers({"flip": "horizontal", "contrast": 0.0})]
    assert names == ["random_flip", "random_rotation", "random_zoom", "random_translation"]
    assert augmentation_layers(AugmentationConfig(rotation=0, zoom=0, translation=0, contrast=0).model_dump()) == []
    keras.utils.set_random_seed(0)
    model = ImageHyperModel(_image_spec({"flip": "horizontal_and_vertical"}), SearchSpace()).build(
        keras_tuner.HyperParameters())
    images = np.random.default_rng(0).uniform(0, 255, (4, 16, 16, 1)).astype("float32")
    first = model.predict({"image": images}, verbose=0)
    np.testing.assert_array_equal(first, model.predict({"image": images}, verbose=0))
    trained_mode = np.asarray(model({"image": images}, training=True))
    assert not np.allclose(trained_mode, first)  # augmentation (and dropout) act in training


def test_serving_wrapper_resizes_any_image_size_and_matches_at_the_trained_size() -> None:
    spec = _image_spec()
    model = ImageHyperModel(spec, SearchSpace()).build(keras_tuner.HyperParameters())
    served = image_serving_model(model, spec)
    images = np.random.default_rng(1).uniform(0, 255, (3, 16, 16, 1)).astype("float32")
    np.testing.assert_allclose(served.predict({"image": images}, verbose=0),
                               model.predict({"image": images}, verbose=0), atol=1e-6)
    larger = served.predict({"image": np.zeros((2, 40, 30, 1), "float32")}, verbose=0)
    assert larger.shape == (2, 3)


def _table_spec(**overrides) -> PreprocessingSpec:
    numeric = [NumericFeature("x", "x", mean=5.0, variance=4.0, minimum=0.0, maximum=10.0)]
    categorical = [CategoricalFeature("c", "c", [f"v{i}" for i in range(30)])]
    return PreprocessingSpec("classification", "y", numeric, categorical, classes=["a", "b"], **overrides)


def _normalized(spec: PreprocessingSpec, value: float) -> float:
    model = TabularHyperModel(spec, SearchSpace()).build(keras_tuner.HyperParameters())
    layer = model.get_layer("normalize")
    return float(np.asarray(layer(np.array([[value]], "float32")))[0, 0])


def test_zscore_and_minmax_normalization() -> None:
    assert _normalized(_table_spec(), 9.0) == pytest.approx((9 - 5) / 2)
    assert _normalized(_table_spec(normalization="minmax"), 9.0) == pytest.approx(0.9)


def test_large_vocabularies_are_embedded_small_ones_one_hot() -> None:
    embedded = TabularHyperModel(_table_spec(), SearchSpace()).build(keras_tuner.HyperParameters())
    assert embedded.get_layer("embed_c").output_dim == embedding_dim(31)
    one_hot = TabularHyperModel(_table_spec(max_one_hot=50), SearchSpace()).build(keras_tuner.HyperParameters())
    assert one_hot.get_layer("onehot_c") is not None
    with pytest.raises(ValueError):
        one_hot.get_layer("embed_c")


def test_gaussian_noise_only_when_configured_and_only_in_training() -> None:
    plain = TabularHyperModel(_table_spec(), SearchSpace()).build(keras_tuner.HyperParameters())
    assert "gaussian_noise" not in [layer.name for layer in plain.layers]
    noisy = TabularHyperModel(_table_spec(augmentation={"gaussian_noise": 0.5}), SearchSpace()).build(
        keras_tuner.HyperParameters())
    layer = noisy.get_layer("gaussian_noise")
    values = np.zeros((100, 1), "float32")
    assert np.asarray(layer(values, training=False)).std() == 0.0
    assert np.asarray(layer(values, training=True)).std() > 0.1


def test_oversampling_balances_classes_with_a_seed() -> None:
    frame = pd.DataFrame({"x": np.arange(12.0), "y": ["a"] * 9 + ["b"] * 3})
    balanced = oversample(frame, "y", seed=0)
    assert balanced["y"].value_counts().to_dict() == {"a": 9, "b": 9}
    assert set(balanced.loc[balanced["y"] == "b", "x"]) == {9.0, 10.0, 11.0}
    pd.testing.assert_frame_equal(balanced, oversample(frame, "y", seed=0))


def test_model_inputs_for_images_are_pixels() -> None:
    spec = _image_spec()
    frame = pd.DataFrame({"image": [bytes(range(256))] * 2, "label": ["a", "b"]})
    pixels = model_inputs(frame, spec)["image"]
    assert pixels.shape == (2, 16, 16, 1) and pixels.dtype == np.float32 and pixels.max() == 255.0
