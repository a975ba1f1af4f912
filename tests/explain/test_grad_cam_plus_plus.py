import keras
import numpy as np
import pytest
from explain._models import flat_model, images, nested_model, np_features

from keras_priors.explain import GradCAMPlusPlus


def authors_grad_cam_plus_plus(conv_output, grads, score):
    """A numpy port of grad_CAM_plus in adityac94/Grad_CAM_plus_plus misc/utils.py, for one image.

    conv_output, grads: (h, w, K) feature map and d score / d feature map; score: the class logit.
    Returns their map before resizing (relu, divided by its maximum) and their channel weights.
    """
    e = np.exp(score)
    conv_first_grad, conv_second_grad, conv_third_grad = e * grads, e * grads**2, e * grads**3
    K = conv_first_grad.shape[2]
    global_sum = np.sum(conv_output.reshape((-1, K)), axis=0)
    alpha_num = conv_second_grad
    alpha_denom = conv_second_grad * 2.0 + conv_third_grad * global_sum.reshape((1, 1, K))
    alpha_denom = np.where(alpha_denom != 0.0, alpha_denom, np.ones(alpha_denom.shape))
    alphas = alpha_num / alpha_denom
    weights = np.maximum(conv_first_grad, 0.0)
    alpha_normalization_constant = np.sum(np.sum(alphas, axis=0), axis=0)
    alphas /= alpha_normalization_constant.reshape((1, 1, K))
    deep_linearization_weights = np.sum((weights * alphas).reshape((-1, K)), axis=0)
    grad_CAM_map = np.sum(deep_linearization_weights * conv_output, axis=2)
    cam = np.maximum(grad_CAM_map, 0)
    return cam / np.max(cam), deep_linearization_weights


def linear_head_model(acts_shape, grads_by_class, bias):
    """Input (h, w, K) -> identity layer 'feat' -> Flatten -> Dense: d logit_c / d feat = grads_by_class[c]."""
    inp = keras.Input(acts_shape)
    x = keras.layers.Activation("linear", name="feat")(inp)
    x = keras.layers.Flatten()(x)
    dense = keras.layers.Dense(len(grads_by_class), name="logits")
    out = dense(x)
    model = keras.Model(inp, out)
    dense.set_weights([np.stack([g.reshape(-1) for g in grads_by_class], axis=1).astype("float32"), bias])
    return model


def hand_built_case():
    """Feature maps A (2, 5, 6, 3) >= 0 and spatially varying gradients of 2 classes, signs mixed."""
    rng = np.random.default_rng(3)
    acts = rng.uniform(0.0, 2.0, size=(2, 5, 6, 3)).astype("float32")
    acts[0, :2, :, :] = 0.0          # a dead band: the map is 0 there, so min-max equals their /max
    acts[1, :, :2, :] = 0.0
    grads = rng.normal(0.0, 0.05, size=(2, 5, 6, 3)).astype("float32")
    grads[0, :, :, 2] = np.abs(grads[0, :, :, 2])      # class 0, channel 2: all positive
    grads[1, 1:3, 1:4, 0] = 0.0                        # class 1, channel 0: some exact zeros
    return acts, grads, np.array([0.3, -0.2], "float32")


@pytest.mark.parity
def test_gradcam_plus_plus_none_weights_match_numpy_formula():
    # GAP + Dense: g = W[k, c] / (h*w) everywhere, so w_k = h*w * relu(g) * g^2 / (2 g^2 + sum(A_k) g^3).
    model = flat_model()
    x = images(2)
    t = np.array([0, 2])
    ex = GradCAMPlusPlus(model, alpha_normalization="none")
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
    model.get_layer("logits").set_weights([np.array([[1, 0], [-1, 0], [-1, 0], [0, 0]], "float32"),
                                           np.zeros(2, "float32")])
    x = np.zeros((1, 8, 8, 3), "float32")
    x[0, :, :4, 0] = 1.0
    x[0, :, :, 1] = 0.5
    ex = GradCAMPlusPlus(model)
    acts, grads, _ = ex.activations_and_grads(x, np.array([0]))
    w = keras.ops.convert_to_numpy(ex.get_cam_weights(x, np.array([0]), acts, grads))  # a tensor on torch
    assert w[0, 0] > 0 and np.all(w[0, 1:] == 0)  # negative gradients get no weight
    m = ex(x, targets=0)[0]
    assert m[:, :3].min() > 0.9 and m[:, 5:].max() < 1e-6


def test_gradcam_plus_plus_nested_runs():
    maps = GradCAMPlusPlus(nested_model(), layer="backbone/feat")(images(), targets=[0, 1, 2])
    assert maps.shape == (3, 8, 8) and np.isfinite(maps).all()
    assert maps.min() >= 0 and maps.max() <= 1


@pytest.mark.parity
@pytest.mark.parametrize("run_eagerly", [False, True])
def test_gradcam_plus_plus_equals_port_of_authors_code(run_eagerly):
    acts, grads, bias = hand_built_case()
    model = linear_head_model(acts.shape[1:], grads, bias)
    ex = GradCAMPlusPlus(model, layer="feat", run_eagerly=run_eagerly)
    assert ex.alpha_normalization == "authors"  # the default
    for targets in ([0, 1], [1, 0]):
        got_acts, got_grads, _ = ex.activations_and_grads(acts, np.array(targets))
        np.testing.assert_allclose(got_acts, acts, atol=1e-6)
        np.testing.assert_allclose(got_grads, grads[targets], atol=1e-6)
        maps = ex(acts, targets=targets)
        weights = np.asarray(ex.get_cam_weights(acts, targets, got_acts, got_grads))
        for b, c in enumerate(targets):
            score = float((acts[b] * grads[c]).sum() + bias[c])
            want_map, want_w = authors_grad_cam_plus_plus(acts[b].astype("float64"), grads[c].astype("float64"), score)
            # Their weights carry the factor exp(score), which the map's normalisation removes.
            np.testing.assert_allclose(weights[b] * np.exp(score), want_w, rtol=1e-5, atol=1e-7)
            np.testing.assert_allclose(maps[b], want_map, atol=1e-5)


@pytest.mark.parity
def test_gradcam_plus_plus_authors_differs_from_none_and_none_keeps_old_formula():
    acts, grads, bias = hand_built_case()
    model = linear_head_model(acts.shape[1:], grads, bias)
    old = GradCAMPlusPlus(model, layer="feat", alpha_normalization="none")
    new = GradCAMPlusPlus(model, layer="feat")
    t = np.array([0, 1])
    a, g, _ = old.activations_and_grads(acts, t)
    s = a.sum(axis=(1, 2), keepdims=True)
    alpha = np.where(g != 0, g**2 / (2 * g**2 + s * g**3 + 1e-7), 0.0)
    want = (np.maximum(g, 0) * alpha).sum(axis=(1, 2))
    np.testing.assert_allclose(old.get_cam_weights(acts, t, a, g), want, rtol=1e-5, atol=1e-8)
    cam = np.maximum(np.einsum("bhwk,bk->bhw", a, want), 0)
    np.testing.assert_allclose(old(acts, t), cam / cam.max(axis=(1, 2), keepdims=True), atol=1e-5)
    # The spatially varying gradients make the two normalisations give different maps.
    assert np.abs(old(acts, t) - new(acts, t)).max() > 0.05


def test_gradcam_plus_plus_zero_gradient_channel_gets_weight_zero():
    acts, grads, bias = hand_built_case()
    grads[0, :, :, 1] = 0.0  # the authors' code divides 0 by 0 here (NaN)
    model = linear_head_model(acts.shape[1:], grads, bias)
    ex = GradCAMPlusPlus(model, layer="feat")
    a, g, _ = ex.activations_and_grads(acts, np.array([0, 0]))
    w = np.asarray(ex.get_cam_weights(acts, [0, 0], a, g))
    assert np.isfinite(w).all() and np.all(w[:, 1] == 0)
    assert np.isfinite(ex(acts, targets=0)).all()


def test_gradcam_plus_plus_gap_head_authors_weights_are_relu_of_dense_weights():
    # Constant gradients W[k, c] / (h w): the normalised alphas are 1 / (h w), the weights relu(W[k, c]) / (h w).
    model = flat_model()
    x = images(2)
    t = np.array([0, 2])
    ex = GradCAMPlusPlus(model)
    acts, grads, _ = ex.activations_and_grads(x, t)
    want = np.maximum(model.get_layer("logits").get_weights()[0][:, t].T, 0) / 16.0
    np.testing.assert_allclose(ex.get_cam_weights(x, t, acts, grads), want, rtol=1e-4, atol=1e-7)


def test_gradcam_plus_plus_rejects_unknown_alpha_normalization():
    with pytest.raises(ValueError, match=r"GradCAMPlusPlus: Expected `alpha_normalization` to be one of "
                                         r"\['authors', 'none'\]. Received: alpha_normalization='paper'"):
        GradCAMPlusPlus(flat_model(), alpha_normalization="paper")
