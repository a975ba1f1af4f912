import keras
import numpy as np
import pytest
from keras import ops

from harness import run_layer_test
from keras_priors.layers import AuxiliaryHead, exclude_from_auxiliary


@pytest.mark.parametrize(
    "kwargs, shape, n_weights",
    [
        ({"num_classes": 4}, (2, 3, 3, 5), 2),
        ({"num_classes": 4, "hidden_units": 6, "dropout": 0.25}, (2, 5), 4),
    ],
)
def test_layer_contract(kwargs, shape, n_weights):
    run_layer_test(AuxiliaryHead, kwargs, input_shape=shape, expected_output_shape=(2, 4),
                   expected_num_trainable_weights=n_weights)


@pytest.mark.parity
def test_logits_match_numpy(rng):
    features = rng.normal(size=(2, 3, 3, 5)).astype("float32")
    head = AuxiliaryHead(num_classes=3, hidden_units=4)
    out = ops.convert_to_numpy(head(features))
    k1, b1, k2, b2 = (ops.convert_to_numpy(w) for w in head.weights)
    hidden = np.maximum(features.mean(axis=(1, 2)) @ k1 + b1, 0)
    np.testing.assert_allclose(out, hidden @ k2 + b2, atol=1e-5)


@pytest.mark.parity
def test_exclude_from_auxiliary():
    aux = np.array([0, 3, 2, 1, 4])
    primary = np.array([0, 1, 1, 2, 0])
    np.testing.assert_array_equal(ops.convert_to_numpy(exclude_from_auxiliary(aux, primary, [0])), [-1, 3, 2, 1, -1])
    np.testing.assert_array_equal(
        ops.convert_to_numpy(exclude_from_auxiliary(aux, primary, [0, 2], ignore_value=-7)), [-7, 3, 2, -7, -7]
    )
    np.testing.assert_array_equal(ops.convert_to_numpy(exclude_from_auxiliary(aux, primary, [])), aux)


@pytest.mark.parity
def test_excluded_sample_has_zero_loss_and_zero_gradient(grad, rng):
    logits = rng.normal(size=(4, 3)).astype("float32")
    labels = exclude_from_auxiliary(np.array([2, 1, 0, 1]), np.array([1, 0, 1, 1]), exclude_classes=[0])
    loss_fn = keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1, reduction=None)
    per_sample = ops.convert_to_numpy(loss_fn(labels, logits))
    log_softmax = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    want = -log_softmax[[0, 2, 3], [2, 0, 1]]
    np.testing.assert_allclose(per_sample[[0, 2, 3]], want, atol=1e-5)
    assert per_sample[1] == 0.0
    (g,) = grad(lambda z: ops.sum(loss_fn(labels, z)), logits)
    np.testing.assert_array_equal(g[1], np.zeros(3, "float32"))
    assert np.abs(g[[0, 2, 3]]).min() > 0
    # Gradient of the kept samples is softmax - one_hot, as for the plain loss.
    softmax = np.exp(log_softmax)
    np.testing.assert_allclose(g[0], softmax[0] - np.eye(3)[2], atol=1e-5)


def test_errors():
    with pytest.raises(ValueError,
                       match="AuxiliaryHead: Expected `num_classes` to be an integer >= 1. Received: num_classes=0"):
        AuxiliaryHead(num_classes=0)
    with pytest.raises(ValueError, match="hidden_units"):
        AuxiliaryHead(num_classes=2, hidden_units=0)
    with pytest.raises(ValueError, match="dropout"):
        AuxiliaryHead(num_classes=2, dropout=-0.5)
    with pytest.raises(ValueError, match=r"Expected `features` to have rank 2 or 4. Received: .*rank 3"):
        AuxiliaryHead(num_classes=2)(np.ones((2, 3, 4), "float32"))
