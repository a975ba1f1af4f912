import numpy as np
import pytest

from keras_priors.explain._utils import interpolation_matrix, normalize_maps, resize_maps


@pytest.mark.parity
def test_interpolation_matrix_hand_values():
    # Upsampling x2 with half-pixel centres: out = [a, .75a+.25b, .25a+.75b, b] for in = [a, b].
    np.testing.assert_allclose(interpolation_matrix(4, 2), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]], atol=1e-7)


def test_resize_matches_tf_image_resize():
    import tensorflow as tf

    m = np.random.default_rng(0).uniform(size=(2, 4, 5)).astype("float32")
    want = tf.image.resize(m[..., None], (16, 11), method="bilinear").numpy()[..., 0]
    np.testing.assert_allclose(resize_maps(m, (16, 11)), want, atol=1e-5)


@pytest.mark.parity
def test_normalize_maps():
    m = np.array([[[1.0, 3.0], [2.0, 5.0]], [[2.0, 2.0], [2.0, 2.0]]], "float32")
    out = normalize_maps(m)
    np.testing.assert_allclose(out[0], [[0, 0.5], [0.25, 1]], atol=1e-7)
    np.testing.assert_allclose(out[1], 0.0)  # a constant map becomes zeros
