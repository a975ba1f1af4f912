import numpy as np
import pytest

from keras_priors.explain import resize_cam
from keras_priors.explain._utils import interpolation_matrix, normalize_maps


@pytest.mark.parity
def test_interpolation_matrix_hand_values():
    # Upsampling x2 with half-pixel centres: out = [a, .75a+.25b, .25a+.75b, b] for in = [a, b].
    np.testing.assert_allclose(interpolation_matrix(4, 2), [[1, 0], [0.75, 0.25], [0.25, 0.75], [0, 1]], atol=1e-7)


def test_resize_matches_tf_image_resize():
    import tensorflow as tf

    m = np.random.default_rng(0).uniform(size=(2, 4, 5)).astype("float32")
    want = tf.image.resize(m[..., None], (16, 11), method="bilinear").numpy()[..., 0]
    np.testing.assert_allclose(resize_cam(m, (16, 11)), want, atol=1e-5)


@pytest.mark.parity
def test_normalize_maps():
    m = np.array([[[1.0, 3.0], [2.0, 5.0]], [[2.0, 2.0], [2.0, 2.0]]], "float32")
    out = normalize_maps(m)
    np.testing.assert_allclose(out[0], [[0, 0.5], [0.25, 1]], atol=1e-7)
    np.testing.assert_allclose(out[1], 0.0)  # a constant map becomes zeros


def test_resize_cam_is_one_resize_for_arrays_tensors_and_class_axes():
    import tensorflow as tf
    from keras import ops

    m = np.random.default_rng(1).normal(size=(2, 4, 5, 3)).astype("float32")
    per_class = np.stack([resize_cam(m[..., k], (16, 11)) for k in range(3)], axis=-1)
    np.testing.assert_array_equal(resize_cam(m, (16, 11)), per_class)
    as_tensor = resize_cam(ops.convert_to_tensor(m), (16, 11))
    assert ops.is_tensor(as_tensor)
    np.testing.assert_allclose(ops.convert_to_numpy(as_tensor), per_class, atol=1e-6)
    # The export's former ops.image.resize gives the same maps, up to float32 rounding.
    want = tf.image.resize(m, (16, 11), method="bilinear").numpy()
    np.testing.assert_allclose(per_class, want, atol=1e-5)
    assert resize_cam(m[..., 0], (4, 5)).shape == (2, 4, 5)
    with pytest.raises(ValueError, match=r"Expected `cam` of shape \(B, h, w\) or \(B, h, w, K\)"):
        resize_cam(np.ones((4, 5), "float32"), (8, 8))
    with pytest.raises(ValueError, match=r"Expected `size` \(H, W\)"):
        resize_cam(m, (8,))
