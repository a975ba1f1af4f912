import os
import tempfile

import keras
import numpy as np
import pytest
from keras import ops

from harness import run_layer_test
from keras_priors.layers import DualStream


def _backbone(channels=4, name="tiny_backbone"):
    inp = keras.Input((None, None, 3))
    x = keras.layers.Conv2D(channels, 3, padding="same", activation="relu", name="conv")(inp)
    return keras.Model(inp, x, name=name)


@pytest.mark.parametrize(
    "kwargs, out_shape, n_weights",
    [
        ({"shared": True, "fusion": "concat"}, (2, 8), 2),
        ({"shared": False, "fusion": "gated"}, (2, 4), 6),
        ({"shared": True, "fusion": "sum", "pooling": "max"}, (2, 4), 2),
    ],
)
def test_layer_contract(kwargs, out_shape, n_weights):
    run_layer_test(
        DualStream, {"backbone": _backbone(), **kwargs}, input_shape=[(2, 8, 8, 3), (2, 4, 4, 3)],
        expected_output_shape=out_shape, expected_num_trainable_weights=n_weights,
    )


def test_shared_and_separate_weights():
    backbone = _backbone()
    shared = DualStream(backbone, shared=True)
    assert shared.part_backbone is shared.backbone
    separate = DualStream(backbone, shared=False, copy_weights=True)
    assert separate.part_backbone is not separate.backbone
    ids = {id(w) for w in separate.backbone.weights}
    assert not ids & {id(w) for w in separate.part_backbone.weights}
    x = np.random.default_rng(0).uniform(size=(1, 6, 6, 3)).astype("float32")
    # copy_weights: both streams start equal, so swapping the inputs keeps a sum fusion unchanged.
    sep = DualStream(backbone, shared=False, copy_weights=True, fusion="sum")
    y = np.zeros_like(x)
    np.testing.assert_allclose(ops.convert_to_numpy(sep([x, y])), ops.convert_to_numpy(sep([y, x])), atol=1e-6)


@pytest.mark.parity
def test_identity_backbone_sum_of_means(rng):
    inp = keras.Input((None, None, 3))
    conv = keras.layers.Conv2D(3, 1, use_bias=False)
    backbone = keras.Model(inp, conv(inp))
    conv.set_weights([np.eye(3, dtype="float32")[None, None]])
    image = rng.uniform(size=(2, 8, 8, 3)).astype("float32")
    part = rng.uniform(size=(2, 4, 4, 3)).astype("float32")
    out = DualStream(backbone, fusion="sum")([image, part])
    np.testing.assert_allclose(ops.convert_to_numpy(out), image.mean((1, 2)) + part.mean((1, 2)), atol=1e-5)


def test_keras_file_keeps_sharing_and_weights(rng):
    image_in, part_in = keras.Input((8, 8, 3)), keras.Input((4, 4, 3))
    for shared in (True, False):
        stream = DualStream(_backbone(), shared=shared, fusion="concat")
        model = keras.Model([image_in, part_in], keras.layers.Dense(2)(stream([image_in, part_in])))
        data = [rng.uniform(size=(2, 8, 8, 3)).astype("float32"), rng.uniform(size=(2, 4, 4, 3)).astype("float32")]
        expected = ops.convert_to_numpy(model(data))
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "m.keras")
            model.save(path)
            reloaded = keras.saving.load_model(path)
        np.testing.assert_allclose(ops.convert_to_numpy(reloaded(data)), expected, atol=1e-6)
        layer = [lyr for lyr in reloaded.layers if isinstance(lyr, DualStream)][0]
        assert (layer.part_backbone is layer.backbone) == shared


def test_errors():
    with pytest.raises(ValueError,
                       match="DualStream: Expected `backbone` to be a keras.Model. Received: backbone of type Dense"):
        DualStream(keras.layers.Dense(2))
    with pytest.raises(ValueError, match="Expected `pooling` to be one of"):
        DualStream(_backbone(), pooling="sum")
    with pytest.raises(ValueError, match="Expected `fusion` to be one of"):
        DualStream(_backbone(), fusion="product")
    with pytest.raises(ValueError, match="Expected `part_crops` to have rank 4"):
        DualStream(_backbone())([np.ones((1, 8, 8, 3), "float32"), np.ones((1, 3), "float32")])
