import numpy as np
import pytest
from keras import ops

from harness import run_layer_test
from keras_priors.layers import CAMHead


def test_layer_contract():
    run_layer_test(
        CAMHead, {"num_classes": 3}, input_shape=(2, 4, 4, 5),
        expected_output_shape={"logits": (2, 3), "cam": (2, 4, 4, 3)},
        expected_num_trainable_weights=2,
    )


def test_layer_contract_binary_upsampled_with_dropout():
    run_layer_test(
        CAMHead, {"num_classes": 1, "dropout": 0.5, "upsample_size": (8, 8), "use_bias": False},
        input_shape=(2, 4, 4, 5),
        expected_output_shape={"logits": (2, 1), "cam": (2, 8, 8, 1)},
        expected_num_trainable_weights=1,
    )


@pytest.mark.parity
def test_hand_computed_2x2x2():
    # features[0]: position (i, j) has channels [f0, f1]
    features = np.array([[[[1.0, 0.0], [0.0, 1.0]], [[2.0, 1.0], [1.0, 3.0]]]], "float32")  # (1, 2, 2, 2)
    kernel = np.array([[1.0, -1.0], [2.0, 0.5]], "float32")  # (C=2, K=2)
    bias = np.array([0.5, -0.25], "float32")
    head = CAMHead(num_classes=2)
    head.build((None, 2, 2, 2))
    head.set_weights([kernel, bias])
    out = head(features)
    # cam[i, j, k] = f0 * kernel[0, k] + f1 * kernel[1, k], by hand:
    want_cam = np.array([[[[1.0, -1.0], [2.0, 0.5]], [[4.0, -1.5], [7.0, 0.5]]]], "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(out["cam"]), want_cam, atol=1e-5)
    # logits = mean over the 4 positions + bias: (14 / 4 + 0.5, -1.5 / 4 - 0.25)
    np.testing.assert_allclose(ops.convert_to_numpy(out["logits"]), [[4.0, -0.625]], atol=1e-5)


@pytest.mark.parity
def test_logits_equal_mean_cam_plus_bias_and_gap_dense(rng):
    features = rng.normal(size=(3, 5, 4, 6)).astype("float32")
    head = CAMHead(num_classes=4, dropout=0.3, bias_initializer="random_normal")
    out = head(features, training=False)
    kernel, bias = (ops.convert_to_numpy(w) for w in head.weights)
    cam = ops.convert_to_numpy(out["cam"])
    logits = ops.convert_to_numpy(out["logits"])
    np.testing.assert_allclose(logits, cam.mean(axis=(1, 2)) + bias, atol=1e-5)
    np.testing.assert_allclose(logits, features.mean(axis=(1, 2)) @ kernel + bias, atol=1e-5)
    np.testing.assert_allclose(cam, features @ kernel, atol=1e-5)


def test_dropout_only_in_training(rng):
    features = rng.normal(size=(2, 4, 4, 16)).astype("float32")
    head = CAMHead(num_classes=2, dropout=0.5)
    train = ops.convert_to_numpy(head(features, training=True)["cam"])
    infer = ops.convert_to_numpy(head(features, training=False)["cam"])
    assert not np.allclose(train, infer)
    np.testing.assert_allclose(infer, ops.convert_to_numpy(head(features)["cam"]), atol=1e-6)


@pytest.mark.parity
def test_upsampled_cam_keeps_low_res_logits(rng):
    features = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    plain = CAMHead(num_classes=2)
    up = CAMHead(num_classes=2, upsample_size=(8, 8))
    plain.build(features.shape)
    up.build(features.shape)
    up.set_weights(plain.get_weights())
    a, b = plain(features), up(features)
    np.testing.assert_allclose(ops.convert_to_numpy(a["logits"]), ops.convert_to_numpy(b["logits"]), atol=1e-5)
    assert tuple(b["cam"].shape) == (2, 8, 8, 2)
    # A constant map stays constant under bilinear upsampling.
    const = np.ones((1, 4, 4, 3), "float32")
    value = ops.convert_to_numpy(plain(const)["cam"])[0, 0, 0]  # (K,)
    np.testing.assert_allclose(ops.convert_to_numpy(up(const)["cam"]), np.broadcast_to(value, (1, 8, 8, 2)), atol=1e-5)


@pytest.mark.parity
def test_gradient_of_logit_wrt_features(grad, rng):
    features = rng.normal(size=(1, 2, 3, 4)).astype("float32")
    head = CAMHead(num_classes=3)
    head.build(features.shape)
    kernel = ops.convert_to_numpy(head.kernel)
    (g,) = grad(lambda f: ops.sum(head(f)["logits"][:, 1]), features)
    # d logit_1 / d features[b, i, j, c] = kernel[c, 1] / (h * w) at every position.
    np.testing.assert_allclose(g, np.broadcast_to(kernel[:, 1] / 6.0, g.shape), atol=1e-6)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"num_classes": 0}, "CAMHead: Expected `num_classes` to be an integer >= 1. Received: num_classes=0"),
        ({"num_classes": 2, "dropout": 1.5}, "dropout"),
        ({"num_classes": 2, "dropout": 1.0}, r"dropout` in \[0, 1\)"),
        ({"num_classes": 2, "upsample_size": (0, 4)}, "upsample_size"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        CAMHead(**kwargs)


def test_bad_rank():
    with pytest.raises(ValueError, match=r"CAMHead: Expected `features` to have rank 4. Received: .*rank 2"):
        CAMHead(num_classes=2)(np.ones((2, 5), "float32"))
