import numpy as np
import pytest
from explain._models import flat_model, images, nested_model, np_features

from keras_priors.explain import GradCAMPlusPlus


@pytest.mark.parity
def test_gradcam_plus_plus_weights_match_numpy_formula():
    # GAP + Dense: g = W[k, c] / (h*w) everywhere, so w_k = h*w * relu(g) * g^2 / (2 g^2 + sum(A_k) g^3).
    model = flat_model()
    x = images(2)
    t = np.array([0, 2])
    ex = GradCAMPlusPlus(model)
    acts, grads, _ = ex.activations_and_grads(x, t)
    f = np_features(model, x)
    np.testing.assert_allclose(acts, f, atol=1e-5)
    g = model.get_layer("logits").get_weights()[0][:, t].T / 16.0  # (B, K)
    s = f.sum(axis=(1, 2))
    alpha = g**2 / (2 * g**2 + s * g**3 + 1e-7)
    want = 16.0 * np.maximum(g, 0) * np.where(g != 0, alpha, 0)
    np.testing.assert_allclose(ex.get_cam_weights(x, t, acts, grads), want, rtol=1e-4, atol=1e-6)


def test_gradcam_plus_plus_positive_where_evidence_is():
    # Only channel 0 has a positive weight, and channel 0 is only active in the left half.
    model = flat_model(num_classes=2)
    conv = model.get_layer("feat")
    conv.set_weights([np.eye(3, 4)[None, None].astype("float32"), np.zeros(4, "float32")])
    model.get_layer("logits").set_weights([np.array([[1, 0], [-1, 0], [-1, 0], [0, 0]], "float32"), np.zeros(2, "float32")])
    x = np.zeros((1, 8, 8, 3), "float32")
    x[0, :, :4, 0] = 1.0
    x[0, :, :, 1] = 0.5
    ex = GradCAMPlusPlus(model)
    acts, grads, _ = ex.activations_and_grads(x, np.array([0]))
    w = ex.get_cam_weights(x, np.array([0]), acts, grads)
    assert w[0, 0] > 0 and np.all(w[0, 1:] == 0)  # negative gradients get no weight
    m = ex(x, targets=0)[0]
    assert m[:, :3].min() > 0.9 and m[:, 5:].max() < 1e-6


def test_gradcam_plus_plus_nested_runs():
    maps = GradCAMPlusPlus(nested_model(), layer="backbone/feat")(images(), targets=[0, 1, 2])
    assert maps.shape == (3, 8, 8) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1
