import keras
import numpy as np
import pytest
from keras import ops

from harness import run_layer_test
from keras_priors.layers import ClassActivationMap, cam_from_dense


def test_layer_contract_per_sample_kernel():
    run_layer_test(
        ClassActivationMap, {}, input_shape=[(2, 3, 3, 4), (2, 4, 3)], expected_output_shape=(2, 3, 3, 3)
    )


def test_layer_contract_normalized_upsampled_one_class():
    run_layer_test(
        ClassActivationMap, {"normalize": "minmax", "upsample_size": (6, 6), "class_id": 2},
        input_shape=[(2, 3, 3, 4), (2, 4, 3)], expected_output_shape=(2, 6, 6, 1),
    )


@pytest.mark.parity
def test_shared_kernel_hand_computed():
    features = np.array([[[[1.0, 0.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, 3.0]]]], "float32")
    kernel = np.array([[1.0, -1.0], [2.0, 0.5]], "float32")
    cam = ops.convert_to_numpy(ClassActivationMap()([features, kernel]))
    want = np.array([[[[1.0, -1.0], [2.0, 0.5]], [[4.0, -1.5], [7.0, 0.5]]]], "float32")
    np.testing.assert_allclose(cam, want, atol=1e-5)
    relu = ops.convert_to_numpy(ClassActivationMap(normalize="relu")([features, kernel]))
    np.testing.assert_allclose(relu, np.maximum(want, 0), atol=1e-5)
    relu_max = ops.convert_to_numpy(ClassActivationMap(normalize="relu_max")([features, kernel]))
    np.testing.assert_allclose(relu_max[..., 0], want[..., 0] / 7.0, atol=1e-5)
    np.testing.assert_allclose(relu_max[..., 1], np.maximum(want[..., 1], 0) / 0.5, atol=1e-5)
    minmax = ops.convert_to_numpy(ClassActivationMap(normalize="minmax")([features, kernel]))
    np.testing.assert_allclose(minmax[..., 0], (want[..., 0] - 1.0) / 6.0, atol=1e-5)
    np.testing.assert_allclose(minmax[..., 1], (want[..., 1] + 1.5) / 2.0, atol=1e-5)


@pytest.mark.parity
def test_per_sample_kernel_matches_numpy(rng):
    features = rng.normal(size=(3, 4, 5, 6)).astype("float32")
    kernel = rng.normal(size=(3, 6, 2)).astype("float32")
    cam = ops.convert_to_numpy(ClassActivationMap()([features, kernel]))
    np.testing.assert_allclose(cam, np.einsum("bhwc,bck->bhwk", features, kernel), atol=1e-5)


@pytest.mark.parity
def test_class_id_multiclass_and_single_logit(rng):
    features = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    kernel = rng.normal(size=(4, 3)).astype("float32")
    full = features @ kernel
    one = ops.convert_to_numpy(ClassActivationMap(class_id=1)([features, kernel]))
    np.testing.assert_allclose(one, full[..., 1:2], atol=1e-5)
    # Single-logit binary head: class 1 evidence is the map, class 0 evidence its negation.
    w = kernel[:, :1]
    pos = ops.convert_to_numpy(ClassActivationMap(class_id=1)([features, w]))
    neg = ops.convert_to_numpy(ClassActivationMap(class_id=0)([features, w]))
    np.testing.assert_allclose(pos, features @ w, atol=1e-5)
    np.testing.assert_allclose(neg, -(features @ w), atol=1e-5)
    # Same as a 2-way softmax head with kernel [0, w]: class-0 minus class-1 evidence.
    two = np.concatenate([np.zeros_like(w), w], axis=1)
    cam2 = features @ two
    np.testing.assert_allclose(neg, cam2[..., :1] - cam2[..., 1:], atol=1e-5)


@pytest.mark.parity
def test_cam_from_dense_mean_plus_bias_is_the_logit(rng):
    features = rng.normal(size=(2, 4, 4, 5)).astype("float32")
    dense = keras.layers.Dense(3, bias_initializer="random_normal")
    logits = ops.convert_to_numpy(dense(features.mean(axis=(1, 2))))
    cam = ops.convert_to_numpy(cam_from_dense(features, dense))
    bias = ops.convert_to_numpy(dense.bias)
    np.testing.assert_allclose(cam.mean(axis=(1, 2)) + bias, logits, atol=1e-5)
    up = cam_from_dense(features, dense, normalize="minmax", upsample_size=(8, 8), class_id=0)
    up = ops.convert_to_numpy(up)
    assert up.shape == (2, 8, 8, 1)
    np.testing.assert_allclose(up.min(axis=(1, 2, 3)), 0.0, atol=1e-5)
    np.testing.assert_allclose(up.max(axis=(1, 2, 3)), 1.0, atol=1e-5)


def test_cam_from_dense_errors():
    with pytest.raises(TypeError, match="CAMHead"):
        cam_from_dense(keras.Input((4, 4, 5)), keras.layers.Dense(2))
    with pytest.raises(ValueError, match="built layer with a `kernel`"):
        cam_from_dense(np.ones((1, 4, 4, 5), "float32"), keras.layers.Dense(2))


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match="Expected `normalize` to be one of"):
        ClassActivationMap(normalize="softmax")
    with pytest.raises(ValueError, match="class_id"):
        ClassActivationMap(class_id=-1)
    features = np.ones((1, 2, 2, 3), "float32")
    with pytest.raises(ValueError, match=r"as many rows as `features` has channels. Received: features channels=3"):
        ClassActivationMap()([features, np.ones((4, 2), "float32")])
    with pytest.raises(ValueError, match="Expected `class_id` < 2"):
        ClassActivationMap(class_id=2)([features, np.ones((3, 2), "float32")])
    with pytest.raises(ValueError, match="Expected `features` to have rank 4"):
        ClassActivationMap()([np.ones((1, 3), "float32"), np.ones((3, 2), "float32")])
    with pytest.raises(ValueError, match="list of 2 tensors"):
        ClassActivationMap()(features)
