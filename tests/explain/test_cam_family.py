"""LayerCAM, HiResCAM, XGradCAM, EigenCAM and Ablation-CAM against their papers' definitions.

The hand-computed model: the explained feature map is the image itself (an identity ``Activation``
after the input) and the head is ``Flatten -> Dense``, so the score is ``y_c = sum_ijk W[ijk, c] x_ijk + b_c``
and its gradient w.r.t. the feature map is ``W[:, c]`` reshaped to the image: every definition is a few
lines of numpy. The map is at image resolution, so the upsampling is the identity.
"""

import keras
import numpy as np
import pytest

from keras_priors.explain import AblationCAM, EigenCAM, GradCAM, HiResCAM, LayerCAM, XGradCAM, get_explainer
from keras_priors.explain._utils import normalize_maps

SIZE, CH, CLASSES = 6, 4, 3


def linear_head_model(seed=0):
    inp = keras.Input((SIZE, SIZE, CH))
    feat = keras.layers.Activation("linear", name="feat")(inp)
    out = keras.layers.Dense(CLASSES, name="logits")(keras.layers.Flatten()(feat))
    model = keras.Model(inp, out)
    rng = np.random.default_rng(seed)
    model.get_layer("logits").set_weights([rng.normal(size=(SIZE * SIZE * CH, CLASSES)).astype("float32"),
                                           rng.normal(size=CLASSES).astype("float32")])
    return model


def inputs(b=4, seed=1):
    # Mixed signs: the relus and the (y - y_k) / y normalisation are all exercised.
    return np.random.default_rng(seed).normal(size=(b, SIZE, SIZE, CH)).astype("float32")


def grads_of(model, targets):
    """d y_c / d A: the Dense kernel's column of each target, as (B, H, W, K)."""
    kernel = model.get_layer("logits").get_weights()[0]
    return np.stack([kernel[:, t].reshape(SIZE, SIZE, CH) for t in targets])


def scores_of(model, x, targets):
    kernel, bias = model.get_layer("logits").get_weights()
    logits = x.reshape(len(x), -1) @ kernel + bias
    return logits[np.arange(len(x)), targets], logits


def expected(cam):
    return normalize_maps(np.maximum(cam, 0.0))


def both_paths(cls, model, x, targets, **kw):
    """(compiled maps, eager maps) for ``targets``."""
    return cls(model, **kw)(x, targets), cls(model, run_eagerly=True, **kw)(x, targets)


TARGETS = [None, np.array([2, 0, 1, 2])]


def resolved(model, x, targets):
    return scores_of(model, x, np.zeros(len(x), int))[1].argmax(-1) if targets is None else targets


@pytest.mark.parity
@pytest.mark.parametrize("targets", TARGETS, ids=["predicted", "given"])
def test_layercam_is_relu_grad_times_activation(targets):
    model, x = linear_head_model(), inputs()
    g = grads_of(model, resolved(model, x, targets))
    want = expected((np.maximum(g, 0.0) * x).sum(-1))
    for maps in both_paths(LayerCAM, model, x, targets):
        np.testing.assert_allclose(maps, want, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("targets", TARGETS, ids=["predicted", "given"])
def test_hirescam_is_grad_times_activation(targets):
    model, x = linear_head_model(), inputs()
    t = resolved(model, x, targets)
    g = grads_of(model, t)
    want = expected((g * x).sum(-1))
    for maps in both_paths(HiResCAM, model, x, targets):
        np.testing.assert_allclose(maps, want, atol=1e-5)
    # Its defining property on a linear head: the pre-relu map sums to the score minus the bias.
    ex = HiResCAM(model, run_eagerly=True)
    acts, grads, _ = ex.activations_and_grads(x, t)
    cam = np.asarray(keras.ops.convert_to_numpy(ex.get_cam_image(x, t, acts, grads)))
    bias = model.get_layer("logits").get_weights()[1]
    np.testing.assert_allclose(cam.sum(axis=(1, 2)), scores_of(model, x, t)[0] - bias[t], rtol=1e-4, atol=1e-4)


@pytest.mark.parity
@pytest.mark.parametrize("targets", TARGETS, ids=["predicted", "given"])
def test_xgradcam_weights_are_activation_weighted_gradients(targets):
    model = linear_head_model()
    x = np.abs(inputs())  # XGradCAM's normalisation divides by sum_ij A_k: post-relu maps, as in the paper
    t = resolved(model, x, targets)
    g = grads_of(model, t)
    weights = (g * x).sum(axis=(1, 2)) / (x.sum(axis=(1, 2)) + 1e-7)
    ex = XGradCAM(model, run_eagerly=True)
    acts, grads, _ = ex.activations_and_grads(x, t)
    np.testing.assert_allclose(np.asarray(keras.ops.convert_to_numpy(ex.get_cam_weights(x, t, acts, grads))),
                               weights, rtol=1e-5, atol=1e-6)
    want = expected(np.einsum("bhwk,bk->bhw", x, weights))
    for maps in both_paths(XGradCAM, model, x, targets):
        np.testing.assert_allclose(maps, want, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("targets", TARGETS, ids=["predicted", "given"])
def test_ablationcam_weights_are_relative_score_drops(targets):
    model, x = linear_head_model(), inputs()
    if targets is not None:  # class 0 gets a negative score on every image: a negative score to divide by
        kernel, bias = model.get_layer("logits").get_weights()
        model.get_layer("logits").set_weights([kernel, bias - np.array([100.0, 0.0, 0.0], "float32")])
        targets = np.array([0, 0, 1, 2])
    t = resolved(model, x, targets)
    y, _ = scores_of(model, x, t)
    if targets is not None:
        assert (y < 0).any() and (y > 0).any()  # both signs of the normalisation are exercised
    g = grads_of(model, t)
    # Zeroing channel k of a linear head removes exactly its contribution sum_ij W[ijk, c] x_ijk.
    y_k = y[:, None] - (g * x).sum(axis=(1, 2))
    weights = (y[:, None] - y_k) / y[:, None]
    want = expected(np.einsum("bhwk,bk->bhw", x, weights))
    for batch_size in (3, 64):  # chunks that split an image's channels, and all pairs of the batch at once
        for maps in both_paths(AblationCAM, model, x, targets, batch_size=batch_size):
            np.testing.assert_allclose(maps, want, atol=1e-5)


@pytest.mark.parity
def test_ablationcam_ablates_through_a_nonlinear_tail():
    # The score of each ablated copy is checked against a forward pass of the model on that copy.
    inp = keras.Input((SIZE, SIZE, CH))
    feat = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="feat")(inp)
    h = keras.layers.Conv2D(6, 1, activation="relu", name="tail")(feat)
    out = keras.layers.Dense(CLASSES, name="logits")(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    trunk = keras.Model(inp, feat)
    tail_in = keras.Input((SIZE, SIZE, 5))
    tail = keras.Model(tail_in, model.get_layer("logits")(keras.layers.GlobalAveragePooling2D()(
        model.get_layer("tail")(tail_in))))
    x = np.abs(inputs(2))
    targets = np.array([1, 2])
    acts = keras.ops.convert_to_numpy(trunk(x))
    ex = AblationCAM(model, layer="feat", batch_size=4, run_eagerly=True)
    weights = ex.get_cam_weights(x, targets, acts, None)
    for b in range(2):
        y = keras.ops.convert_to_numpy(tail(acts[b:b + 1]))[0, targets[b]]
        for k in range(5):
            ablated = acts[b:b + 1].copy()
            ablated[..., k] = 0.0
            y_k = keras.ops.convert_to_numpy(tail(ablated))[0, targets[b]]
            np.testing.assert_allclose(weights[b, k], (y - y_k) / y, rtol=1e-4, atol=1e-5)
    compiled = AblationCAM(model, layer="feat", batch_size=4)(x, targets)
    np.testing.assert_allclose(compiled, AblationCAM(model, layer="feat", run_eagerly=True)(x, targets), atol=1e-5)


def _eigen_reference(acts):
    """pytorch-grad-cam's get_2d_projection (numpy SVD of the centred cells x channels matrix), sign fixed."""
    out = []
    for a in acts:
        flat = a.reshape(-1, a.shape[-1]).astype(np.float64)
        flat = flat - flat.mean(axis=0)
        _, _, vt = np.linalg.svd(flat, full_matrices=False)
        proj = flat @ vt[0]
        proj = proj * (1.0 if proj[np.argmax(np.abs(proj))] >= 0 else -1.0)
        out.append(proj.reshape(a.shape[:2]))
    return np.stack(out).astype(np.float32)


@pytest.mark.parity
def test_eigencam_of_a_rank_one_map_is_its_spatial_factor():
    # A = u v^T + c: centred, it is (u - mean u) v^T, whose first principal direction is v / |v|; the
    # projection is (u - mean u) |v|, oriented so that the cell of largest magnitude (the peak of u) is positive.
    rng = np.random.default_rng(0)
    u = rng.uniform(size=(2, SIZE * SIZE))
    u[0, 8], u[1, 20] = 5.0, 4.0
    v = rng.normal(size=(2, CH))
    x = (u[:, :, None] * v[:, None, :] + 0.3).reshape(2, SIZE, SIZE, CH).astype("float32")
    want = expected((u - u.mean(axis=1, keepdims=True)).reshape(2, SIZE, SIZE))
    model = linear_head_model()
    for maps in both_paths(EigenCAM, model, x, None):
        np.testing.assert_allclose(maps, want, atol=1e-5)
        assert maps[0].reshape(-1).argmax() == 8 and maps[1].reshape(-1).argmax() == 20


@pytest.mark.parity
def test_eigencam_is_the_first_principal_component_and_ignores_the_class():
    model, x = linear_head_model(), inputs()
    want = expected(_eigen_reference(x))
    for maps in both_paths(EigenCAM, model, x, None):
        np.testing.assert_allclose(maps, want, atol=1e-4)
    np.testing.assert_allclose(EigenCAM(model)(x, targets=2), want, atol=1e-4)
    # The sign is fixed: the same map for the negated activations' mirror (-A projects to the same cells).
    np.testing.assert_allclose(EigenCAM(model)(-x), want, atol=1e-4)


def test_layercam_matches_tf_keras_vis():
    tkv = pytest.importorskip("tf_keras_vis")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf-keras-vis runs on TensorFlow only")
    from tf_keras_vis.layercam import Layercam
    from tf_keras_vis.utils.scores import CategoricalScore

    keras.utils.set_random_seed(0)
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(4, 3, padding="same", activation="relu", name="c1")(inp)
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="c2")(x)
    out = keras.layers.Dense(CLASSES, name="logits")(keras.layers.Flatten()(x))
    model = keras.Model(inp, out)
    images = np.random.default_rng(2).uniform(size=(3, 8, 8, 3)).astype("float32")
    targets = [2, 0, 1]
    theirs = Layercam(model, clone=True)(CategoricalScore(targets), images, penultimate_layer="c2",
                                         expand_cam=False, normalize_cam=False)
    theirs = np.asarray(theirs, np.float32)
    assert theirs.shape == (3, 8, 8) and theirs.max() > 0, tkv.__version__
    ex = LayerCAM(model, layer="c2", run_eagerly=True)
    np.testing.assert_allclose(ex.raw_maps(images, np.array(targets)), theirs, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(LayerCAM(model, layer="c2")(images, targets), normalize_maps(theirs), atol=1e-5)


@pytest.mark.parity
def test_hirescam_and_xgradcam_equal_gradcam_on_a_gap_head():
    from explain._models import flat_model, images

    model, x = flat_model(), images(3)
    reference = GradCAM(model)(x, targets=[0, 1, 2])
    for cls in (HiResCAM, XGradCAM):
        np.testing.assert_allclose(cls(model)(x, targets=[0, 1, 2]), reference, atol=1e-5)


def test_registry_and_bad_arguments():
    for name, cls in (("LayerCAM", LayerCAM), ("HiResCAM", HiResCAM), ("XGrad-CAM", XGradCAM),
                      ("Eigen-CAM", EigenCAM), ("Ablation-CAM", AblationCAM)):
        assert get_explainer(name) is cls
    with pytest.raises(ValueError, match=r"`batch_size`.*Received: batch_size=0"):
        AblationCAM(linear_head_model(), batch_size=0)


@pytest.mark.parity
def test_eigencam_with_more_channels_than_cells():
    # 2 x 2 cells, 6 channels: the projection comes from the cells' Gram matrix instead of the channels'.
    inp = keras.Input((2, 2, 6))
    feat = keras.layers.Activation("linear", name="feat")(inp)
    model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(feat)))
    x = np.random.default_rng(3).normal(size=(3, 2, 2, 6)).astype("float32")
    want = expected(_eigen_reference(x))
    for maps in both_paths(EigenCAM, model, x, None):
        np.testing.assert_allclose(maps, want, atol=1e-4)


def _spectrum_matrices(ratios, n=24, seed=4, rest=0.5):
    """PSD (B, n, n) = Q diag(lambda) Q^T with lambda_1 = 10, lambda_2 = ratio * 10, the rest below ``rest`` of it."""
    rng = np.random.default_rng(seed)
    mats, tops = [], []
    for r in ratios:
        q, _ = np.linalg.qr(rng.normal(size=(n, n)))
        lam = np.concatenate([[10.0, 10.0 * r], rng.uniform(0, 10.0 * r * rest, size=n - 2)])
        mats.append((q * lam) @ q.T)
        tops.append(q[:, 0])
    return np.stack(mats).astype("float32"), np.stack(tops)


@pytest.mark.parity
def test_top_eigenpair_by_power_iteration_matches_eigh(monkeypatch):
    from keras_priors.explain import eigen_cam

    gram, top = _spectrum_matrices([0.3, 0.6, 0.8, 0.89], n=64, rest=0.8)
    # lambda_2 / lambda_1 <= 0.89 (a random conv net's last feature map), 62 more eigenvalues up to 0.8 lambda_2:
    # the certified power iteration answers alone.
    # eigh is made to answer garbage, so the test fails if the batch fell back to it (both branches are traced
    # on JAX, so it cannot raise).
    monkeypatch.setattr(eigen_cam.ops, "eigh", lambda x: (keras.ops.zeros(x.shape[:-1]), keras.ops.zeros(x.shape)))
    value, vec = (keras.ops.convert_to_numpy(t) for t in eigen_cam.top_eigenpair(gram))
    np.testing.assert_allclose(value, 10.0, rtol=1e-5)
    np.testing.assert_allclose(np.abs(np.sum(vec * top, axis=1)), 1.0, atol=1e-6)


@pytest.mark.parity
def test_top_eigenpair_falls_back_to_eigh_on_a_near_degenerate_top():
    from keras_priors.explain import eigen_cam

    # lambda_2 / lambda_1 = 0.99 in one image: v is not provably within 1e-4 of v_1, so the batch takes eigh.
    gram, top = _spectrum_matrices([0.3, 0.99])
    value, vec = (keras.ops.convert_to_numpy(t) for t in eigen_cam.top_eigenpair(gram))
    np.testing.assert_allclose(value, 10.0, rtol=1e-5)
    np.testing.assert_allclose(np.abs(np.sum(vec * top, axis=1)), 1.0, atol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("stage", ["first", "both"])
@pytest.mark.parametrize("n", [2, 7, 64, 300])
def test_the_power_iteration_certifies_only_vectors_within_its_bound(n, stage):
    # Random spectra from well separated to degenerate: whatever the certificate accepts is within 1e-4 rad of
    # v_1 (float64 eigh), and the well-separated cases are accepted, so the check is not vacuous. The first
    # stage's certificate (G^2) on its own, and the whole iteration (the second stage's, G^8, where the first
    # is not certified).
    from keras_priors.explain import eigen_cam

    rng = np.random.default_rng(n)
    ratios = np.concatenate([rng.uniform(0.0, 0.5, 6), rng.uniform(0.5, 1.0, 12), [1.0, 1.0 - 1e-6]])
    accepted = []
    for r in ratios:
        gram, _ = _spectrum_matrices([r], n=n, seed=int(rng.integers(1 << 30)), rest=rng.uniform(0.1, 1.0))
        if stage == "first":
            result = eigen_cam._power_stage(gram, *eigen_cam._first_power(gram), 4)
        else:
            result = eigen_cam._certified_power_iteration(gram)
        rho, vec, ok = (keras.ops.convert_to_numpy(t) for t in result)
        if bool(ok):
            true = np.linalg.eigh(gram[0].astype("float64"))[1][:, -1]
            v = vec[0].astype("float64") / np.linalg.norm(vec[0].astype("float64"))
            sine = np.linalg.norm(v - np.dot(v, true) * true)  # arccos(|cos|) loses precision near 0
            assert sine <= 1e-4, (r, sine)
        accepted.append(bool(ok))
    assert all(accepted[:6]) and not accepted[-1] and not accepted[-2]


@pytest.mark.parity
def test_the_power_iteration_does_not_certify_a_flat_or_zero_spectrum():
    from keras_priors.explain import eigen_cam

    # 1000 equal eigenvalues: (1/n)^16 would underflow float32 without the rescaling; equal top eigenvalues have
    # no v_1 to certify. A zero matrix (a dead feature map) has none either.
    grams = np.stack([np.eye(1000, dtype="float32"), np.zeros((1000, 1000), "float32")])
    *_, ok = eigen_cam._certified_power_iteration(grams)
    assert not bool(keras.ops.convert_to_numpy(ok))
    value, vec = (keras.ops.convert_to_numpy(t) for t in eigen_cam.top_eigenpair(grams[1:]))
    assert np.all(np.isfinite(vec)) and float(value[0]) == 0.0


def test_fused_is_one_xla_function_on_tensorflow_only():
    from keras_priors.explain._compile import fused
    from keras_priors.explain.eigen_cam import _certified_power_iteration

    f = fused(_certified_power_iteration)
    assert fused(_certified_power_iteration) is f  # compiled once per function
    if keras.backend.backend() == "tensorflow":
        assert getattr(f, "_jit_compile", None) is True
    else:
        assert f is _certified_power_iteration


def _centred_spectrum_maps(spectra, seed=7):
    """(B, SIZE, SIZE, CH) feature maps whose centred cells x channels matrix has the eigenvalues ``spectra[b]``
    (of its channels' Gram matrix), each channel shifted by a random offset that the centring removes."""
    rng = np.random.default_rng(seed)
    out = []
    for lam in spectra:
        u = rng.normal(size=(SIZE * SIZE, CH))
        u, _ = np.linalg.qr(u - u.mean(axis=0))  # orthonormal columns, each of mean 0
        v, _ = np.linalg.qr(rng.normal(size=(CH, CH)))
        out.append(((u * np.sqrt(lam)) @ v.T + rng.normal(size=CH)).reshape(SIZE, SIZE, CH))
    return np.stack(out).astype("float32")


@pytest.mark.parity
@pytest.mark.parametrize("second", [0.3, 0.8, 0.97])
def test_eigencam_maps_again_from_the_features_where_the_power_iteration_is_not_certified(second):
    # lambda_2 / lambda_1 = 0.3 in both images: the power iteration's first stage is certified; 0.8 in one
    # image: its second stage; both in one compiled call. 0.97: not certified, so the compiled call's features
    # are mapped again by the whole top_eigenpair (eigh). The map is the SVD definition in every case.
    from keras_priors.explain import _compile

    x = _centred_spectrum_maps([[10.0, 3.0, 1.0, 0.5], [10.0, 10.0 * second, 1.0, 0.5]])
    ex = EigenCAM(linear_head_model())
    want = expected(_eigen_reference(x))
    np.testing.assert_allclose(ex(x), want, atol=1e-4)
    np.testing.assert_allclose(EigenCAM(linear_head_model(), run_eagerly=True)(x), want, atol=1e-4)
    if _compile.can_compile():
        assert (("maps_from_features", (SIZE, SIZE)) in ex._compiled) == (second > 0.9)


@pytest.mark.parity
def test_eigencam_on_a_conv_model_matches_the_svd_definition():
    # Real (random-weight) conv activations have a clear top component: the power-iteration path.
    keras.utils.set_random_seed(0)
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Conv2D(16, 3, padding="same", activation="relu")(inp)
    x = keras.layers.MaxPooling2D(2)(x)
    feat = keras.layers.Conv2D(32, 3, padding="same", activation="relu", name="feat")(x)
    model = keras.Model(inp, keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(feat)))
    images = np.random.default_rng(5).uniform(size=(6, 32, 32, 3)).astype("float32")
    acts = keras.ops.convert_to_numpy(keras.Model(inp, feat)(images))
    from keras_priors.explain.resize_cam import resize_cam

    want = normalize_maps(np.asarray(resize_cam(np.maximum(_eigen_reference(acts), 0.0), (32, 32))))
    for maps in both_paths(EigenCAM, model, images, None, layer="feat"):
        np.testing.assert_allclose(maps, want, atol=1e-4)
