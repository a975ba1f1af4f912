import keras
import numpy as np
import pytest

from keras_priors.explain import ScoreCAM
from keras_priors.explain import resize_cam
from keras_priors.explain._utils import normalize_maps


def quadrant_model():
    """Logit 0 = 20 * mean of the top-left quadrant (channels summed); 9 other classes at 0."""
    inp = keras.Input((16, 16, 3))
    feat = keras.layers.AveragePooling2D(2, name="features")(inp)  # (8, 8, 3)
    x = keras.layers.Cropping2D(((0, 4), (0, 4)))(feat)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(10, name="logits")
    out = dense(x)
    model = keras.Model(inp, out)
    kernel = np.zeros((3, 10), "float32")
    kernel[:, 0] = 20.0
    dense.set_weights([kernel, np.zeros(10, "float32")])
    return model


def quadrant_image():
    x = np.zeros((1, 16, 16, 3), "float32")
    x[0, :8, :8, 0] = 1.0  # channel 0: top-left
    x[0, 8:, 8:, 1] = 1.0  # channel 1: bottom-right
    x[0, :8, 8:, 2] = 1.0  # channel 2: top-right
    return x


@pytest.mark.parity
def test_score_cam_weights_are_masked_softmax_scores():
    model, x = quadrant_model(), quadrant_image()
    ex = ScoreCAM(model, layer="features", batch_size=2)
    acts = np.asarray(keras.ops.convert_to_numpy(ex.runner.features(x)))
    w = ex.get_cam_weights(x, np.array([0]), acts, None)[0]

    def p0(masked):
        logit = 20.0 * masked[:8, :8].sum(-1).mean()
        return np.exp(logit) / (np.exp(logit) + 9.0)

    # Reference: masks = min-max(bilinear-upsampled pooled channel), score = softmax prob of class 0.
    pooled = x[0].reshape(8, 2, 8, 2, 3).mean(axis=(1, 3))
    for k in range(3):
        mask = normalize_maps(resize_cam(pooled[None, :, :, k], (16, 16)))[0]
        np.testing.assert_allclose(w[k], p0(x[0] * mask[..., None]), atol=1e-5)
    assert w[0] > 0.99 and w[1] < 0.2 and w[2] < 0.2


def test_score_cam_map_concentrates_on_the_quadrant_the_model_reads():
    model, x = quadrant_model(), quadrant_image()
    m = ScoreCAM(model, layer="features", batch_size=2)(x, targets=0)[0]
    assert m.shape == (16, 16)
    assert m[:8, :8].sum() / m.sum() > 0.7
    assert np.unravel_index(m.argmax(), m.shape)[0] < 8


def test_score_cam_max_n_keeps_highest_variance_channels():
    model, x = quadrant_model(), quadrant_image()
    ex = ScoreCAM(model, layer="features", max_n=1)
    acts = np.asarray(keras.ops.convert_to_numpy(ex.runner.features(x)))
    w = ex.get_cam_weights(x, np.array([0]), acts, None)[0]
    var = acts[0].reshape(-1, 3).var(0)
    assert w[np.argmax(var)] > 0 and np.count_nonzero(w) == 1


def test_score_cam_bad_arguments():
    with pytest.raises(ValueError, match="batch_size"):
        ScoreCAM(quadrant_model(), batch_size=0)
    with pytest.raises(ValueError, match="max_n"):
        ScoreCAM(quadrant_model(), max_n=-2)
