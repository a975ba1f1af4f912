import numpy as np
import pytest
from keras import ops

from harness import run_layer_test
from keras_priors.layers import MaskDecoderHead


def test_layer_contract_three_levels():
    run_layer_test(
        MaskDecoderHead, {"filters": 4, "output_size": (16, 16)},
        input_shape=[(2, 8, 8, 3), (2, 4, 4, 5), (2, 2, 2, 6)],
        expected_output_shape=(2, 16, 16, 1), expected_num_trainable_weights=10,
    )


def test_layer_contract_single_level_two_masks():
    run_layer_test(MaskDecoderHead, {"filters": 4, "num_masks": 2}, input_shape=(2, 4, 4, 3),
                   expected_output_shape=(2, 4, 4, 2), expected_num_trainable_weights=6)


@pytest.mark.parity
def test_hand_computed_with_ones_kernels():
    p3 = np.ones((1, 4, 4, 2), "float32")
    p4 = 2.0 * np.ones((1, 2, 2, 3), "float32")
    out = ops.convert_to_numpy(MaskDecoderHead(filters=1, kernel_initializer="ones")([p3, p4]))
    # laterals: 2 * 1 = 2 and 3 * 2 = 6 -> upsampled constant 6 + 2 = 8; 3x3 ones conv with zero
    # padding: 9 * 8 inside, 6 * 8 on edges, 4 * 8 in corners; then the 1x1 ones conv keeps it.
    want = np.array([[32, 48, 48, 32], [48, 72, 72, 48], [48, 72, 72, 48], [32, 48, 48, 32]], "float32")
    np.testing.assert_allclose(out[0, ..., 0], want, atol=1e-4)


def test_gradient_reaches_every_level(grad, rng):
    levels = [rng.normal(size=s).astype("float32") for s in [(1, 8, 8, 2), (1, 4, 4, 3), (1, 2, 2, 4)]]
    head = MaskDecoderHead(filters=4, output_size=(16, 16))
    head(levels)
    grads = grad(lambda a, b, c: ops.sum(ops.square(head([a, b, c]))), *levels)
    assert all(np.abs(g).max() > 0 for g in grads)


def test_errors():
    with pytest.raises(ValueError,
                       match="MaskDecoderHead: Expected `filters` to be an integer >= 1. Received: filters=0"):
        MaskDecoderHead(filters=0)
    with pytest.raises(ValueError, match="num_masks"):
        MaskDecoderHead(num_masks=0)
    with pytest.raises(ValueError, match="output_size"):
        MaskDecoderHead(output_size=(4, -1))
    with pytest.raises(ValueError, match=r"ordered fine to coarse.*inputs\[0\] with shape \(1, 2, 2, 3\)"):
        MaskDecoderHead()([np.ones((1, 2, 2, 3), "float32"), np.ones((1, 4, 4, 3), "float32")])
    with pytest.raises(ValueError, match=r"Expected `inputs\[1\]` to have rank 4"):
        MaskDecoderHead()([np.ones((1, 4, 4, 3), "float32"), np.ones((1, 3), "float32")])
