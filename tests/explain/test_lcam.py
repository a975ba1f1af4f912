import keras
import numpy as np
import pytest
from explain._models import flat_model, images, nested_model, np_features, np_logits

from keras_priors.explain import LCAM, lcam_objective
from keras_priors.explain._utils import interpolation_matrix


def np_objective(labels, logits, a, ce=1.5, area=2.0, tv=0.01):
    z = logits - logits.max(-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(-1, keepdims=True))
    ce_v = -logp[np.arange(len(labels)), labels].mean()
    area_v = np.mean((a + 5e-4) ** 0.3)
    dy = ((a[:, 1:] - a[:, :-1]) ** 2).sum()
    dx = ((a[:, :, 1:] - a[:, :, :-1]) ** 2).sum()
    border = (a[:, -1] ** 2).sum() + (a[:, 0] ** 2).sum() + (a[:, :, -1] ** 2).sum() + (a[:, :, 0] ** 2).sum()
    return ce * ce_v + area * area_v + tv * (dy + dx + 0.3 * border) / (2 * len(labels))


@pytest.mark.parity
def test_objective_hand_case():
    a = np.full((1, 2, 2), 0.5, "float32")
    got = float(keras.ops.convert_to_numpy(lcam_objective(np.array([0]), np.zeros((1, 2), "float32"), a)))
    # CE = ln 2; area = 0.5005 ** 0.3; TV = 0.3 * (4 border rows/cols * 2 * 0.25) / 2 = 0.3.
    want = 1.5 * np.log(2.0) + 2.0 * 0.5005**0.3 + 0.01 * 0.3
    np.testing.assert_allclose(got, want, atol=1e-5)


@pytest.mark.parity
def test_objective_random_case_and_weights():
    rng = np.random.default_rng(0)
    a = rng.uniform(size=(3, 4, 5)).astype("float32")
    logits = rng.normal(size=(3, 6)).astype("float32")
    y = np.array([0, 5, 2])
    got = lcam_objective(y, logits, a, ce_weight=1.0, area_weight=0.5, tv_weight=2.0)
    np.testing.assert_allclose(float(keras.ops.convert_to_numpy(got)), np_objective(y, logits, a, 1.0, 0.5, 2.0),
                               atol=1e-5)


def np_lcam_loss(lcam, model, x, y):
    wa, ba = lcam.trainer.attention.get_weights()
    f = np_features(model, x)  # (B, 4, 4, 4)
    c = f @ wa[0, 0] + ba
    a = 1.0 / (1.0 + np.exp(-c[np.arange(len(y)), :, :, y]))  # (B, 4, 4)
    wd, bd = model.get_layer("logits").get_weights()
    if lcam.variant == "Fm":
        logits = (f * a[..., None]).mean(axis=(1, 2)) @ wd + bd
    else:
        m = interpolation_matrix(8, 4)
        up = np.einsum("Hh,bhw,Ww->bHW", m, a, m)
        logits = np_logits(model, x * up[..., None])
    return np_objective(y, logits, a), c


@pytest.mark.parity
@pytest.mark.parametrize("variant", ["Fm", "Img"])
def test_lcam_trains_with_fit_and_matches_numpy(variant):
    model = flat_model()
    x = images(6)
    y = np.array([0, 1, 2, 0, 1, 2])
    lcam = LCAM(model, variant=variant)
    frozen = [w.copy() for w in model.get_weights()]
    lcam.trainer(x[:1])  # build
    want, c = np_lcam_loss(lcam, model, x, y)
    lcam.compile(keras.optimizers.Adam(0.05))
    hist = lcam.fit(x, y, batch_size=6, epochs=4, verbose=0).history["loss"]
    np.testing.assert_allclose(hist[0], want, atol=1e-5)  # first step's loss: initial weights
    assert hist[-1] < hist[0]
    for before, after in zip(frozen, model.get_weights()):
        np.testing.assert_array_equal(before, after)  # classifier stays frozen
    # Inference: the target channel's pre-sigmoid attention, upsampled and min-max normalised.
    _, c = np_lcam_loss(lcam, model, x, y)
    from keras_priors.explain import resize_cam
    from keras_priors.explain._utils import normalize_maps

    np.testing.assert_allclose(lcam(x, targets=y), normalize_maps(resize_cam(c[np.arange(6), :, :, y], (8, 8))),
                               atol=1e-5)


def test_lcam_nested_model_and_default_targets():
    model = nested_model()
    lcam = LCAM(model, variant="Fm", layer="backbone/pool")
    lcam.fit(images(4), np.array([0, 1, 2, 0]), epochs=1, batch_size=4, verbose=0)
    maps = lcam(images(4))
    assert maps.shape == (4, 8, 8) and maps.min() >= 0 and maps.max() <= 1


def test_lcam_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        LCAM(flat_model(), variant="Feature")
    with pytest.raises(ValueError, match="area_weight"):
        LCAM(flat_model(), area_weight=-1.0)
    with pytest.raises(ValueError, match=r"targets"):
        LCAM(flat_model())(images(2), targets=5)
