import math

import keras
import numpy as np
import pytest
from keras import ops

from harness import run_layer_test
from keras_priors.layers import PartCrop


def _coords(lo, hi, size, n):
    if n > 1:
        return [lo * (size - 1) + i * (hi - lo) * (size - 1) / (n - 1) for i in range(n)]
    return [0.5 * (lo + hi) * (size - 1)]


def reference_crop(images, boxes, out_size, extrapolation_value=0.0):
    """Loop reference of tf.image.crop_and_resize (bilinear), written from its documentation."""
    b_, h_, w_, c_ = images.shape
    out = np.zeros((b_,) + tuple(out_size) + (c_,), "float64")
    for b in range(b_):
        y1, x1, y2, x2 = boxes[b]
        for i, y in enumerate(_coords(y1, y2, h_, out_size[0])):
            for j, x in enumerate(_coords(x1, x2, w_, out_size[1])):
                if y < 0 or y > h_ - 1 or x < 0 or x > w_ - 1:
                    out[b, i, j] = extrapolation_value
                    continue
                t, bo, dy = math.floor(y), math.ceil(y), y - math.floor(y)
                le, ri, dx = math.floor(x), math.ceil(x), x - math.floor(x)
                top = images[b, t, le] * (1 - dx) + images[b, t, ri] * dx
                bottom = images[b, bo, le] * (1 - dx) + images[b, bo, ri] * dx
                out[b, i, j] = top * (1 - dy) + bottom * dy
    return out


def test_layer_contract():
    run_layer_test(PartCrop, {"output_size": (4, 5)}, input_shape=[(2, 8, 8, 3), (2, 4)],
                   expected_output_shape=(2, 4, 5, 3), expected_num_trainable_weights=0)


@pytest.mark.parity
def test_whole_box_and_quadrant_by_hand(rng):
    images = rng.uniform(size=(2, 8, 8, 3)).astype("float32")
    whole = np.array([[0, 0, 1, 1]] * 2, "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(PartCrop((8, 8))([images, whole])), images, atol=1e-6)
    # Rows/cols 0..3 sit at 0 .. 3/7 in normalised coordinates: the top-left quadrant, pixel for pixel.
    q = 3.0 / 7.0
    quad = np.array([[0, 0, q, q], [4 / 7, 4 / 7, 1, 1]], "float32")
    out = ops.convert_to_numpy(PartCrop((4, 4))([images, quad]))
    np.testing.assert_allclose(out[0], images[0, :4, :4], atol=1e-5)
    np.testing.assert_allclose(out[1], images[1, 4:, 4:], atol=1e-5)
    # Whole box, smaller output: samples at rows 0, 7/3, 14/3, 7 -> bilinear by hand on a ramp image.
    ramp = np.broadcast_to(np.arange(8, dtype="float32")[None, :, None, None], (2, 8, 8, 3)).copy()  # value = row
    out = ops.convert_to_numpy(PartCrop((4, 4))([ramp, whole]))
    np.testing.assert_allclose(out[:, :, 0, 0], [[0.0, 7 / 3, 14 / 3, 7.0]] * 2, atol=1e-5)


@pytest.mark.parity
def test_matches_loop_reference(rng):
    # Same shapes as the other parity tests (JAX compiles once per shape); the second box is
    # flipped, the third leaves the image (extrapolation).
    images = rng.uniform(size=(2, 8, 8, 3)).astype("float32")
    boxes = np.array([[0.8, 0.6, 0.2, 0.1], [-0.2, 0.3, 0.5, 1.3]], "float32")
    for size, extrap in [((4, 4), 0.0), ((4, 4), -1.0), ((1, 4), 0.0)]:
        out = ops.convert_to_numpy(PartCrop(size, extrapolation_value=extrap)([images, boxes]))
        np.testing.assert_allclose(out, reference_crop(images, boxes, size, extrap), atol=1e-5)


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="compares with tf.image.crop_and_resize")
def test_matches_tf_crop_and_resize(rng):
    import tensorflow as tf

    images = rng.uniform(size=(4, 12, 10, 3)).astype("float32")
    boxes = rng.uniform(-0.2, 1.2, size=(4, 4)).astype("float32")
    boxes[0] = [0.0, 0.0, 1.0, 1.0]
    for size, extrap in [((6, 5), 0.0), ((3, 8), 0.5)]:
        want = tf.image.crop_and_resize(images, boxes, tf.range(4), size, extrapolation_value=extrap).numpy()
        got = ops.convert_to_numpy(PartCrop(size, extrapolation_value=extrap)([images, boxes]))
        np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parity
def test_image_gradient_is_the_interpolation_weights(grad, rng):
    images = rng.uniform(size=(2, 8, 8, 3)).astype("float32")
    boxes = np.array([[0.13, 0.21, 0.77, 0.69], [0.0, 0.0, 1.0, 1.0]], "float32")
    layer = PartCrop((4, 4))
    g_img, _ = grad(lambda im, bx: ops.sum(layer([im, bx])), images, boxes)
    # Every in-image sample spreads weight 1 over its neighbours: 4 * 4 per channel and image.
    np.testing.assert_allclose(g_img.sum(axis=(1, 2)), np.full((2, 3), 16.0), atol=1e-4)


def test_box_gradient_nonzero_and_matches_finite_differences(grad):
    # A horizontal ramp: moving the box right raises every sample.
    images = np.tile(np.arange(8, dtype="float32")[None, None, :, None], (1, 8, 1, 1)) / 7.0
    boxes = np.array([[0.2, 0.15, 0.7, 0.55]], "float32")
    layer = PartCrop((3, 3))
    f = lambda bx: ops.sum(layer([images, bx]))  # noqa: E731
    _, g_box = grad(lambda im, bx: ops.sum(layer([im, bx])), images, boxes)
    assert np.abs(g_box).max() > 0
    # d sum / d x1 = sum over samples of (1 - t_j) and d / d x2 of t_j (ramp slope 1 per unit x): 3*(1+0.5+0) each.
    np.testing.assert_allclose(g_box[0], [0.0, 4.5, 0.0, 4.5], atol=1e-4)
    eps = 1e-2
    for k in range(4):
        d = np.zeros_like(boxes)
        d[0, k] = eps
        fd = (float(ops.convert_to_numpy(f(boxes + d))) - float(ops.convert_to_numpy(f(boxes - d)))) / (2 * eps)
        np.testing.assert_allclose(g_box[0, k], fd, atol=1e-3)


def test_errors():
    with pytest.raises(ValueError, match="PartCrop: Expected `output_size` to be a pair of integers >= 1"):
        PartCrop((0, 4))
    with pytest.raises(ValueError, match="output_size"):
        PartCrop(None)
    images = np.ones((1, 8, 8, 3), "float32")
    with pytest.raises(ValueError, match=r"Expected `boxes` of shape \(B, 4\).*Received: boxes with shape \(1, 3\)"):
        PartCrop((4, 4))([images, np.ones((1, 3), "float32")])
    with pytest.raises(ValueError, match="Expected `images` to have rank 4"):
        PartCrop((4, 4))([np.ones((8, 8, 3), "float32"), np.ones((1, 4), "float32")])
    with pytest.raises(ValueError, match="list of 2 tensors"):
        PartCrop((4, 4))(images)
