"""Effective receptive field (Luo et al. 2016): gradient maps and their summaries."""

import os

import keras
import numpy as np
import pytest

from keras_priors.receptive_field import (
    ERFImages,
    compute_receptive_fields,
    effective_receptive_field,
    input_gradients,
    plot_erf,
)

L = keras.layers


def _linear_stack(size=16, depth=3, channels=1):
    x = keras.Input((size, size, channels))
    y = x
    for i in range(depth):
        y = L.Conv2D(1, 3, kernel_initializer="ones", use_bias=False, name=f"c{i + 1}")(y)
    return keras.Model(x, y)


def _box_conv(k, depth):
    v = np.ones(1)
    for _ in range(depth):
        v = np.convolve(v, np.ones(k))
    return v


@pytest.mark.parity
def test_linear_stack_erf_is_convolution_of_boxes():
    # Three 3x3 all-ones convs, no nonlinearity: d out / d in is the 2-D outer
    # product of box*box*box = [1, 3, 6, 7, 6, 3, 1], whatever the input.
    model = _linear_stack()
    res = effective_receptive_field(model, "c3", num_samples=4)
    v = _box_conv(3, 3)
    np.testing.assert_allclose(v, [1, 3, 6, 7, 6, 3, 1])
    expected = np.zeros((16, 16))
    expected[5:12, 5:12] = np.outer(v, v)  # output 10x10, centre unit (5, 5) sees rows 5..11
    assert res.unit == (5, 5) and res.center == (8, 8)
    np.testing.assert_allclose(res.map, expected, atol=1e-5)
    assert res.mass_inside_rf == pytest.approx(1.0, abs=1e-6)
    # Gaussian fit by moments: variance of a sum of 3 uniforms on {-1, 0, 1} = 3 * 2/3.
    np.testing.assert_allclose(res.mean, (8, 8), atol=1e-5)
    np.testing.assert_allclose(res.std, (np.sqrt(2), np.sqrt(2)), atol=1e-5)
    # mass within Chebyshev radius 1: (19/27)^2 = 0.495 < 0.5; radius 2: (25/27)^2 >= 0.5
    assert res.radius_50_px == 2 and res.radius_90_px == 3
    np.testing.assert_allclose([res.radius_50, res.radius_90], [2 / 3.5, 3 / 3.5], atol=1e-6)


@pytest.mark.parity
def test_erf_off_centre_unit_same_padding_and_channels():
    # 'same' padding, 2 input channels: unit (0, 0) of a 5x5 all-ones conv sees rows 0..2.
    x = keras.Input((8, 8, 2))
    y = L.Conv2D(3, 5, padding="same", kernel_initializer="ones", use_bias=False, name="c")(x)
    res = effective_receptive_field(keras.Model(x, y), "c", unit=(0, 0), num_samples=2)
    expected = np.zeros((8, 8))
    expected[:3, :3] = 2 * 3  # 2 input channels summed, 3 output channels summed
    np.testing.assert_allclose(res.map, expected, atol=1e-5)
    assert res.center == (0, 0) and res.receptive_field.box(0, 0) == (-2, -2, 2, 2)


def _relu_net():
    x = keras.Input((20, 20, 2))
    y = L.Conv2D(4, 3, padding="same", activation="relu", name="a")(x)
    y = L.MaxPooling2D(2, name="p")(y)
    y = L.Conv2D(4, 3, padding="same", activation="relu", name="b")(y)
    y = L.GlobalAveragePooling2D(name="gap")(y)
    return keras.Model(x, L.Dense(2, name="out")(y))


def test_erf_support_inside_theoretical_rf_and_batching():
    model = _relu_net()
    x = np.random.default_rng(1).uniform(size=(4, 20, 20, 2)).astype("float32")
    res = effective_receptive_field(model, "b", inputs=x, num_samples=4)
    rf = compute_receptive_fields(model)["b"]
    assert res.receptive_field == rf and rf.size == (8, 8)
    assert res.mass_inside_rf == pytest.approx(1.0, abs=1e-6)
    assert res.map.max() > 0
    # One batched call == average of the per-sample gradients.
    sub = keras.Model(model.inputs, model.get_layer("b").output)
    per_sample = [np.abs(input_gradients(sub, x[i:i + 1], res.unit)).sum(-1)[0] for i in range(4)]
    np.testing.assert_allclose(res.map, np.mean(per_sample, axis=0), rtol=1e-5, atol=1e-7)
    # Default layer: the last spatial layer.
    assert effective_receptive_field(model, inputs=x, num_samples=2).layer == "b"
    # Signed gradient.
    signed = effective_receptive_field(model, "b", inputs=x, num_samples=4, absolute=False)
    assert not signed.absolute and np.all(np.abs(signed.map) <= res.map + 1e-6)


def test_erf_accepts_dataset_of_dicts_and_nested_layers():
    import tensorflow as tf

    inner_in = keras.Input((12, 12, 3))
    h = L.Conv2D(2, 3, padding="same", activation="relu", name="conv1")(inner_in)
    backbone = keras.Model(inner_in, L.Conv2D(2, 3, padding="same", name="conv2")(h), name="backbone")
    x = keras.Input((12, 12, 3))
    model = keras.Model(x, L.GlobalAveragePooling2D()(backbone(x)))
    images = np.random.default_rng(0).uniform(size=(6, 12, 12, 3)).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices({"image": images, "label": np.zeros(6, "int32")}).batch(2)
    res = effective_receptive_field(model, "backbone/conv2", inputs=ds, num_samples=4)
    direct = effective_receptive_field(backbone, "conv2", inputs=images, num_samples=4)
    assert res.num_samples == 4 and res.receptive_field.name == "backbone/conv2"
    np.testing.assert_allclose(res.map, direct.map, rtol=1e-5, atol=1e-7)


def test_erf_bad_inputs():
    model = _relu_net()
    with pytest.raises(ValueError, match="No layer named 'nope'"):
        effective_receptive_field(model, "nope", num_samples=1)
    with pytest.raises(ValueError, match="global"):
        effective_receptive_field(model, "gap", num_samples=1)
    with pytest.raises(ValueError, match="unit"):
        effective_receptive_field(model, "b", unit=(10, 0), num_samples=1)
    with pytest.raises(ValueError, match="num_samples"):
        effective_receptive_field(model, "b", num_samples=0)
    with pytest.raises(ValueError, match="rank"):
        effective_receptive_field(model, "b", inputs=np.zeros((20, 20)), num_samples=1)
    x = keras.Input((None, None, 1))
    free = keras.Model(x, L.Conv2D(1, 3, name="c")(x))
    with pytest.raises(ValueError, match="input_shape"):
        effective_receptive_field(free, "c", num_samples=1)
    assert effective_receptive_field(free, "c", num_samples=1, input_shape=(9, 9, 1)).map.shape == (9, 9)


def test_plot_erf_writes_png(tmp_path):
    res = effective_receptive_field(_linear_stack(), "c2", num_samples=1)
    path = plot_erf(res, str(tmp_path / "erf.png"))
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"


def _frozen_conv_classifier():
    x = keras.Input((10, 10, 1))
    y = L.Conv2D(1, 3, kernel_initializer="ones", use_bias=False, trainable=False, name="c1")(x)
    y = L.Conv2D(1, 3, kernel_initializer="ones", use_bias=False, trainable=False, name="c2")(y)
    y = L.Flatten()(y)
    return keras.Model(x, L.Dense(2, name="head")(y))


@pytest.mark.parity
def test_erf_images_callback_logs_maps(tmp_path):
    # Frozen all-ones convs: the map stays outer(box*box) = outer([1, 2, 3, 2, 1]) while the head trains.
    model = _frozen_conv_classifier()
    model.compile(optimizer="sgd", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    log_dir = str(tmp_path / "erf")
    cb = ERFImages("c2", log_dir=log_dir, every_n_epochs=2, num_samples=2)
    x = np.random.default_rng(0).uniform(size=(8, 10, 10, 1)).astype("float32")
    y = np.arange(8) % 2
    model.fit(x, y, epochs=3, batch_size=4, verbose=0, callbacks=[cb])
    assert [e for e, _ in cb.history] == [0, 2]
    v = _box_conv(3, 2)
    expected = np.zeros((10, 10))
    expected[3:8, 3:8] = np.outer(v, v)  # output 6x6, centre unit (3, 3) sees rows 3..7
    assert cb.history[-1][1].center == (5, 5)
    np.testing.assert_allclose(cb.history[-1][1].map, expected, atol=1e-5)
    events = [f for f in os.listdir(log_dir) if "tfevents" in f]
    assert events, "no TensorBoard event file written"
    from tensorflow.compat.v1 import train as v1train

    tags = set()
    for ev in v1train.summary_iterator(os.path.join(log_dir, events[0])):
        for val in ev.summary.value:
            tags.add(val.tag)
    assert {"erf/c2", "erf/c2/radius_50", "erf/c2/radius_90"} <= tags
    assert ERFImages.from_config(cb.get_config()).get_config() == cb.get_config()


def test_erf_images_bad_arguments():
    with pytest.raises(ValueError, match="every_n_epochs"):
        ERFImages("c", log_dir="/tmp/x", every_n_epochs=0)
    with pytest.raises(ValueError, match="layer"):
        ERFImages("", log_dir="/tmp/x")
    with pytest.raises(ValueError, match="log_dir"):
        ERFImages("c", log_dir="")
