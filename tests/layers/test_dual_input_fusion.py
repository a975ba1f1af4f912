import numpy as np
import pytest
from keras import ops

from harness import run_layer_test
from keras_priors.layers import DualInputFusion


@pytest.mark.parametrize(
    "kwargs, shapes, out_shape, n_weights",
    [
        ({"fusion": "concat"}, [(2, 3), (2, 5)], (2, 8), 0),
        ({"fusion": "sum"}, [(2, 4), (2, 4)], (2, 4), 0),
        ({"fusion": "gated"}, [(2, 4), (2, 4)], (2, 4), 2),
        ({"fusion": "gated", "projection_dim": 6}, [(2, 3), (2, 5)], (2, 6), 6),
        ({"fusion": "sum", "projection_dim": 4}, [(2, 3, 3, 2), (2, 3, 3, 5)], (2, 3, 3, 4), 4),
    ],
)
def test_layer_contract(kwargs, shapes, out_shape, n_weights):
    run_layer_test(
        DualInputFusion, kwargs, input_shape=shapes, expected_output_shape=out_shape,
        expected_num_trainable_weights=n_weights,
    )


@pytest.mark.parity
def test_concat_and_sum_by_hand():
    a = np.array([[1.0, 2.0]], "float32")
    b = np.array([[10.0, 20.0]], "float32")
    np.testing.assert_allclose(ops.convert_to_numpy(DualInputFusion("concat")([a, b])), [[1, 2, 10, 20]], atol=1e-6)
    np.testing.assert_allclose(ops.convert_to_numpy(DualInputFusion("sum")([a, b])), [[11, 22]], atol=1e-6)


@pytest.mark.parity
def test_gated_matches_numpy(rng):
    a = rng.normal(size=(3, 4)).astype("float32")
    b = rng.normal(size=(3, 4)).astype("float32")
    layer = DualInputFusion("gated")
    layer([a, b])
    kernel = rng.normal(size=(8, 4)).astype("float32")
    bias = rng.normal(size=(4,)).astype("float32")
    layer.set_weights([kernel, bias])
    g = 1.0 / (1.0 + np.exp(-(np.concatenate([a, b], axis=1) @ kernel + bias)))
    np.testing.assert_allclose(ops.convert_to_numpy(layer([a, b])), g * a + (1 - g) * b, atol=1e-5)
    # Zero gate logits: the plain average.
    layer.set_weights([np.zeros_like(kernel), np.zeros_like(bias)])
    np.testing.assert_allclose(ops.convert_to_numpy(layer([a, b])), 0.5 * (a + b), atol=1e-6)


@pytest.mark.parity
def test_projection_then_sum_matches_numpy(rng):
    a = rng.normal(size=(2, 3)).astype("float32")
    b = rng.normal(size=(2, 5)).astype("float32")
    layer = DualInputFusion("sum", projection_dim=2)
    layer([a, b])
    ka, ba, kb, bb = (ops.convert_to_numpy(w) for w in layer.weights)
    np.testing.assert_allclose(ops.convert_to_numpy(layer([a, b])), a @ ka + ba + b @ kb + bb, atol=1e-5)


def test_errors():
    with pytest.raises(ValueError,
                       match=r"Expected `fusion` to be one of \['concat', 'gated', 'sum'\]. Received: fusion='max'"):
        DualInputFusion("max")
    with pytest.raises(ValueError, match="projection_dim"):
        DualInputFusion("sum", projection_dim=0)
    with pytest.raises(ValueError, match=r"fusion='sum' needs inputs of equal width, or set `projection_dim`. "
                                         r"Received: widths 3 and 5"):
        DualInputFusion("sum")([np.ones((2, 3), "float32"), np.ones((2, 5), "float32")])
    with pytest.raises(ValueError, match="gated"):
        DualInputFusion("gated")([np.ones((2, 3), "float32"), np.ones((2, 5), "float32")])
    with pytest.raises(ValueError, match="same rank"):
        DualInputFusion("concat")([np.ones((2, 3), "float32"), np.ones((2, 2, 2, 3), "float32")])
    with pytest.raises(ValueError, match="every axis but the last"):
        DualInputFusion("concat")([np.ones((2, 4, 4, 3), "float32"), np.ones((2, 2, 2, 3), "float32")])
    with pytest.raises(ValueError, match="list of 2 tensors"):
        DualInputFusion("concat")(np.ones((2, 3), "float32"))
