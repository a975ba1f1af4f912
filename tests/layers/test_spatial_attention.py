import numpy as np
import pytest
from keras import ops

from harness import run_layer_test
from keras_priors.layers import SpatialAttention


@pytest.mark.parametrize("kernel_size, n_weights", [(1, 2), (3, 2)])
def test_layer_contract(kernel_size, n_weights):
    run_layer_test(
        SpatialAttention, {"kernel_size": kernel_size}, input_shape=(2, 4, 4, 3),
        expected_output_shape={"features": (2, 4, 4, 3), "attention": (2, 4, 4, 1)},
        expected_num_trainable_weights=n_weights,
    )


@pytest.mark.parity
def test_matches_numpy(rng):
    x = rng.normal(size=(2, 3, 3, 4)).astype("float32")
    layer = SpatialAttention(kernel_size=1, bias_initializer="ones")
    layer.build(x.shape)
    kernel = rng.normal(size=(1, 1, 4, 1)).astype("float32")
    layer.set_weights([kernel, np.array([0.5], "float32")])
    out = layer(x)
    a = 1.0 / (1.0 + np.exp(-(x @ kernel[0, 0] + 0.5)))
    np.testing.assert_allclose(ops.convert_to_numpy(out["attention"]), a, atol=1e-5)
    np.testing.assert_allclose(ops.convert_to_numpy(out["features"]), x * a, atol=1e-5)


def test_attention_can_be_supervised_by_a_mask(grad, rng):
    x = rng.normal(size=(1, 4, 4, 3)).astype("float32")
    mask = np.zeros((1, 4, 4, 1), "float32")
    mask[0, 1:3, 1:3] = 1.0
    layer = SpatialAttention(kernel_size=3)
    layer(x)

    def bce(features):
        a = layer(features)["attention"]
        m = ops.convert_to_tensor(mask)  # torch cannot multiply an ndarray by a tensor
        return -ops.mean(m * ops.log(a + 1e-7) + (1 - m) * ops.log(1 - a + 1e-7))

    (g,) = grad(bce, x)
    assert np.all(np.isfinite(g)) and np.abs(g).max() > 0


def test_errors():
    with pytest.raises(ValueError,
                       match="SpatialAttention: Expected `kernel_size` to be an integer >= 1. Received: kernel_size=0"):
        SpatialAttention(kernel_size=0)
    with pytest.raises(ValueError, match=r"Expected `features` to have rank 4. Received: .*rank 2"):
        SpatialAttention()(np.ones((2, 3), "float32"))
