import keras
import numpy as np
import pytest

from keras_priors.explain import average_drop_increase_confidence, deletion_insertion, energy_in_mask, pointing_game
from keras_priors.explain.metrics import rise_blur, rise_kernel


def mean_model(k=4.0):
    """A fixed function: logit 0 = k * mean over pixels of the channel sum, logit 1 = 0."""
    inp = keras.Input((4, 4, 3))
    dense = keras.layers.Dense(2)
    out = dense(keras.layers.GlobalAveragePooling2D()(inp))
    model = keras.Model(inp, out)
    kernel = np.zeros((3, 2), "float32")
    kernel[:, 0] = k
    dense.set_weights([kernel, np.zeros(2, "float32")])
    return model


def p0(x, k=4.0):
    logit = k * x.sum(-1).mean(axis=(1, 2))
    return 1.0 / (1.0 + np.exp(-logit))


@pytest.mark.parity
def test_average_drop_and_increase_in_confidence_against_numpy():
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(3, 4, 4, 3)).astype("float32")
    maps = rng.uniform(size=(3, 4, 4)).astype("float32")
    out = average_drop_increase_confidence(mean_model(), x, maps, targets=0)
    y = p0(x)
    for keep in (1.0, 0.5, 0.15):
        flat = maps.reshape(3, -1)
        n = int(np.ceil(keep * 16))
        th = np.sort(flat, axis=1)[:, -n][:, None, None]  # the n-th largest (maps have no ties)
        o = p0(x * np.where(maps >= th, maps, 0)[..., None])
        pct = int(round(keep * 100))
        np.testing.assert_allclose(out[f"average_drop@{pct}"], 100 * np.mean(np.maximum(0, y - o) / y), atol=1e-5)
        np.testing.assert_allclose(out[f"increase_in_confidence@{pct}"], 100 * np.mean(o > y), atol=1e-5)


@pytest.mark.parity
def test_average_drop_hand_case():
    # Full map of ones keeps the image: no drop, no increase. A map of 0.5 halves the logit.
    x = np.full((1, 4, 4, 3), 0.25, "float32")  # logit 0 = 4 * 0.75 = 3
    ones = average_drop_increase_confidence(mean_model(), x, np.ones((1, 4, 4)), keep=1.0)
    assert ones == {"average_drop@100": pytest.approx(0.0, abs=1e-5), "increase_in_confidence@100": 0.0}
    half = average_drop_increase_confidence(mean_model(), x, np.full((1, 4, 4), 0.5), keep=1.0)
    y, o = 1 / (1 + np.exp(-3.0)), 1 / (1 + np.exp(-1.5))
    np.testing.assert_allclose(half["average_drop@100"], 100 * (y - o) / y, atol=1e-5)
    # Class 1 (logit fixed at 0) gains confidence when the image is darkened.
    inc = average_drop_increase_confidence(mean_model(), x, np.full((1, 4, 4), 0.5), targets=1, keep=1.0)
    assert inc["increase_in_confidence@100"] == 100.0 and inc["average_drop@100"] == 0.0


@pytest.mark.parity
def test_deletion_insertion_curves_against_numpy():
    x = np.ones((1, 4, 4, 3), "float32")
    maps = np.arange(16, dtype="float32").reshape(1, 4, 4)  # deletes from the last pixel backwards
    r = deletion_insertion(mean_model(), x, maps, targets=0, steps=4)
    frac = np.linspace(0, 1, 5)
    # Deleting a fraction f of pixels (zeros baseline) leaves mean channel sum 3 * (1 - f).
    np.testing.assert_allclose(r["deletion_curve"][0], 1 / (1 + np.exp(-12 * (1 - frac))), atol=1e-5)
    np.testing.assert_allclose(r["insertion_curve"][0], 1 / (1 + np.exp(-12 * frac)), atol=1e-5)
    np.testing.assert_allclose(r["deletion_auc"], np.trapezoid(r["deletion_curve"][0], frac), atol=1e-6)
    np.testing.assert_allclose(r["fractions"], frac)


def test_deletion_order_follows_the_map():
    # Channel sum only in the left half: a map pointing there deletes evidence first.
    x = np.zeros((2, 4, 4, 3), "float32")
    x[:, :, :2] = 1.0
    good = np.zeros((4, 4), "float32"); good[:, :2] = 1.0
    bad = 1.0 - good
    r = deletion_insertion(mean_model(), x, np.stack([good, bad]), targets=0, steps=8, baseline="blur", blur_sigma=1.0)
    assert r["deletion_auc"][0] < r["deletion_auc"][1]
    assert r["insertion_auc"][0] > r["insertion_auc"][1]


@pytest.mark.parity
def test_energy_in_mask_and_pointing_game():
    maps = np.zeros((3, 4, 4), "float32")
    maps[0, 0, 0] = 3.0; maps[0, 3, 3] = 1.0
    maps[1, 3, 3] = 1.0
    masks = np.zeros((3, 4, 4, 1), "float32")
    masks[:, :2, :2] = 1.0
    np.testing.assert_allclose(energy_in_mask(maps, masks), [0.75, 0.0, 0.0], atol=1e-7)
    np.testing.assert_array_equal(pointing_game(maps, masks), [1.0, 0.0, 1.0])  # map 2 is flat: argmax (0, 0)
    # (3, 3) is sqrt(8) ~ 2.83 px from the mask corner (1, 1).
    np.testing.assert_array_equal(pointing_game(maps[1:2], masks[1:2], tolerance=2.8), [0.0])
    np.testing.assert_array_equal(pointing_game(maps[1:2], masks[1:2], tolerance=2.9), [1.0])


def test_metric_bad_inputs():
    x = np.ones((1, 4, 4, 3), "float32")
    with pytest.raises(ValueError, match=r"Expected `maps` of shape \(1, 4, 4\)"):
        average_drop_increase_confidence(mean_model(), x, np.ones((1, 3, 3)))
    with pytest.raises(ValueError, match="keep"):
        average_drop_increase_confidence(mean_model(), x, np.ones((1, 4, 4)), keep=1.5)
    with pytest.raises(ValueError, match=r"targets"):
        deletion_insertion(mean_model(), x, np.ones((1, 4, 4)), targets=2)
    with pytest.raises(ValueError, match="baseline"):
        deletion_insertion(mean_model(), x, np.ones((1, 4, 4)), baseline="noise")
    with pytest.raises(ValueError, match="masks"):
        energy_in_mask(np.ones((1, 4, 4)), np.ones((1, 3, 3)))
    with pytest.raises(ValueError, match="tolerance"):
        pointing_game(np.ones((1, 4, 4)), np.ones((1, 4, 4)), tolerance=-1)


# === Softmax outputs and the exact kept area ===
def softmax_model(kind, k=4.0):
    """``mean_model`` whose output comes out of a softmax: a Softmax layer, an Activation, or Dense(activation=)."""
    inp = keras.Input((4, 4, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inp)
    dense = keras.layers.Dense(2, activation="softmax" if kind == "dense" else None)
    out = dense(pooled)
    if kind == "softmax_layer":
        out = keras.layers.Softmax()(out)
    elif kind == "activation":
        out = keras.layers.Activation("softmax")(out)
    kernel = np.zeros((3, 2), "float32")
    kernel[:, 0] = k
    dense.set_weights([kernel, np.zeros(2, "float32")])
    return keras.Model(inp, out)


def test_ends_in_softmax_is_what_explainers_and_metrics_share():
    from keras_priors.explain._graph import ends_in_softmax

    assert not ends_in_softmax(mean_model())
    for kind in ("softmax_layer", "activation", "dense"):
        assert ends_in_softmax(softmax_model(kind)), kind

    class Sub(keras.Model):
        def call(self, x):
            return keras.ops.softmax(x)

    assert not ends_in_softmax(Sub())  # not walkable: taken as logits, as before


@pytest.mark.parity
@pytest.mark.parametrize("kind", ["softmax_layer", "activation", "dense"])
def test_metrics_do_not_apply_softmax_twice(kind):
    # Logits (4 * 0.75, 0) = (3, 0): p0 = sigmoid(3). A map of 0.5 halves the logit: sigmoid(1.5).
    x = np.full((1, 4, 4, 3), 0.25, "float32")
    model = softmax_model(kind)
    half = average_drop_increase_confidence(model, x, np.full((1, 4, 4), 0.5), keep=1.0)
    y, o = 1 / (1 + np.exp(-3.0)), 1 / (1 + np.exp(-1.5))
    np.testing.assert_allclose(half["average_drop@100"], 100 * (y - o) / y, atol=1e-4)
    # The same numbers as the logits model; softmax applied twice would give softmax([y, 1 - y]).
    assert half == pytest.approx(average_drop_increase_confidence(mean_model(), x, np.full((1, 4, 4), 0.5), keep=1.0))
    twice = average_drop_increase_confidence(model, x, np.full((1, 4, 4), 0.5), keep=1.0, from_logits=True)
    assert abs(twice["average_drop@100"] - half["average_drop@100"]) > 1.0  # the bug this guards against
    x1 = np.ones((1, 4, 4, 3), "float32")
    r = deletion_insertion(model, x1, np.arange(16, dtype="float32").reshape(1, 4, 4), targets=0, steps=4)
    frac = np.linspace(0, 1, 5)
    np.testing.assert_allclose(r["deletion_curve"][0], 1 / (1 + np.exp(-12 * (1 - frac))), atol=1e-5)
    np.testing.assert_allclose(r["insertion_curve"][0], 1 / (1 + np.exp(-12 * frac)), atol=1e-5)


def test_keep_count_is_ceil_of_the_area():
    from keras_priors.explain.metrics import keep_count

    assert keep_count(0.5, 784) == 392
    assert keep_count(0.15, 1024) == 154  # 153.6
    assert keep_count(0.07, 100) == 7  # 0.07 * 100 = 7.000000000000001 in floats
    assert keep_count(0.15, 16) == 3
    assert keep_count(1.0, 16) == 16


@pytest.mark.parity
def test_average_drop_keeps_exactly_ceil_p_hw_pixels_with_ties():
    from keras_priors.explain.metrics import keep_top

    # A flat map: every pixel ties at the threshold. The quantile rule kept all 16; L-CAM keeps ceil(p * 16).
    x = np.ones((1, 4, 4, 3), "float32")
    flat = np.ones((1, 4, 4), "float32")
    kept = keep_top(flat, 0.5)
    assert int((kept > 0).sum()) == 8
    np.testing.assert_array_equal(kept[0, :2], 1.0)  # ties broken by position: the first two rows
    out = average_drop_increase_confidence(mean_model(), x, flat, targets=0, keep=(0.5, 0.15))
    y = 1 / (1 + np.exp(-12.0))  # logit 4 * 3
    o50 = 1 / (1 + np.exp(-4 * 3 * 8 / 16))  # 8 of 16 pixels kept
    o15 = 1 / (1 + np.exp(-4 * 3 * 3 / 16))  # ceil(2.4) = 3 pixels kept
    np.testing.assert_allclose(out["average_drop@50"], 100 * (y - o50) / y, atol=1e-4)
    np.testing.assert_allclose(out["average_drop@15"], 100 * (y - o15) / y, atol=1e-4)
    # 28 x 28 with ties at the threshold (the 395 instead of 392): exactly 392.
    rng = np.random.default_rng(0)
    maps = np.round(rng.uniform(size=(2, 28, 28)), 1).astype("float32") + 0.05
    assert [(m > 0).sum() for m in keep_top(maps, 0.5)] == [392, 392]


def channel0_mean_model(size=3):
    """Outputs probabilities (m, 1 - m), m = mean over pixels of channel 0 (no softmax: from_logits=False)."""
    inp = keras.Input((size, size, 3))
    dense = keras.layers.Dense(2)
    out = dense(keras.layers.GlobalAveragePooling2D()(inp))
    model = keras.Model(inp, out)
    kernel = np.zeros((3, 2), "float32")
    kernel[0] = [1.0, -1.0]
    dense.set_weights([kernel, np.array([0.0, 1.0], "float32")])
    return model


@pytest.mark.parity
def test_deletion_rise_protocol_hand_case():
    # Channel 0 (row-major) and the map; pixels 3 and 4 tie at 7, RISE's flip(argsort) ranks 4 first.
    v = np.array([0.9, 0.0, 0.3, 0.6, 0.9, 0.0, 0.3, 0.6, 0.3], "float32")
    m = np.array([8, 0, 5, 7, 7, 1, 2, 3, 4], "float32")
    x = np.zeros((1, 3, 3, 3), "float32")
    x[0, ..., 0] = v.reshape(3, 3)
    x[0, ..., 1] = 0.5  # not read by the model
    r = deletion_insertion(channel0_mean_model(), x, m.reshape(1, 3, 3), targets=0, from_logits=False,
                           protocol="rise", pixels_per_step=2)
    assert r["protocol"] == "rise" and r["pixels_per_step"] == 2
    # 9 pixels, 2 per step: n = ceil(9 / 2) = 5 steps, the last changes 1 pixel; sampled at i / 5.
    np.testing.assert_allclose(r["fractions"], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-7)
    # Deleted in the order 0, 4, 3, 2, 8, 7, 6, 5, 1 (values .9 .9 .6 .3 .3 .6 .3 0 0): 1.8, 2.7, 3.6, 3.9, 3.9 gone.
    np.testing.assert_allclose(r["deletion_curve"][0], np.array([3.9, 2.1, 1.2, 0.3, 0.0, 0.0]) / 9, atol=1e-6)
    # RISE's auc: (sum - first / 2 - last / 2) / n = (7.5 / 9 - 3.9 / 18) / 5.
    np.testing.assert_allclose(r["deletion_auc"][0], 11.1 / 18 / 5, atol=1e-6)
    # Insertion starts from RISE's blur and ends at the image.
    blurred = rise_blur(x)[0, ..., 0].reshape(-1)
    order = [0, 4, 3, 2, 8, 7, 6, 5, 1]
    want = []
    for n in (0, 2, 4, 6, 8, 9):
        cur = blurred.copy()
        cur[order[:n]] = v[order[:n]]
        want.append(cur.mean())
    np.testing.assert_allclose(r["insertion_curve"][0], want, atol=1e-6)
    assert abs(want[0] - v.mean()) > 0.05  # the blur (zero padding) is not the image
    # The default protocol ranks the tie by position (3 first) and deletes to the same zeros on its own grid.
    # Deleted one by one in the order 0, 3, 4, 2, 8, 7, 6, 5, 1 (values .9 .6 .9 .3 .3 .6 .3 0 0).
    d = deletion_insertion(channel0_mean_model(), x, m.reshape(1, 3, 3), targets=0, from_logits=False, steps=9)
    assert d["protocol"] == "default" and "pixels_per_step" not in d
    np.testing.assert_allclose(d["deletion_curve"][0], np.array([3.9, 3.0, 2.4, 1.5, 1.2, 0.9, 0.3, 0, 0, 0]) / 9,
                               atol=1e-6)


def test_rise_blur_is_their_kernel_with_zero_padding():
    from scipy.ndimage import gaussian_filter

    k = rise_kernel()
    delta = np.zeros((11, 11))
    delta[5, 5] = 1.0
    np.testing.assert_allclose(k, gaussian_filter(delta, 5.0), atol=1e-7)  # gkern(11, 5)
    assert abs(k.sum() - 1.0) < 1e-6 and k[5, 5] == k.max()
    # A point blurs into the kernel; a constant image keeps its value away from the border, and loses
    # what the zero padding contributes near it (the corner sees only a quarter-and-a-bit of the kernel).
    x = np.zeros((1, 21, 21, 3), "float32")
    x[0, 10, 10, :] = 1.0
    np.testing.assert_allclose(rise_blur(x)[0, 5:16, 5:16, 1], k, atol=1e-7)
    ones = rise_blur(np.ones((1, 21, 21, 3), "float32"))[0, ..., 0]
    np.testing.assert_allclose(ones[10, 10], 1.0, atol=1e-6)
    np.testing.assert_allclose(ones[0, 0], k[5:, 5:].sum(), atol=1e-6)


def rise_causal_metric_port(prob_fn, img, explanation, mode, step, substrate):
    """A numpy port of CausalMetric.single_run (eclique/RISE evaluation.py), channels last, scores only."""
    H, W, C = img.shape
    HW = H * W
    n_steps = (HW + step - 1) // step
    start, finish = (img.copy(), substrate.copy()) if mode == "del" else (substrate.copy(), img.copy())
    scores = np.empty(n_steps + 1)
    salient_order = np.flip(np.argsort(explanation.reshape(-1, HW), axis=1, kind="stable"), axis=-1)
    for i in range(n_steps + 1):
        scores[i] = prob_fn(start)
        if i < n_steps:
            coords = salient_order[:, step * i : step * (i + 1)]
            start.reshape(HW, C)[coords[0]] = finish.reshape(HW, C)[coords[0]]
    auc = (scores.sum() - scores[0] / 2 - scores[-1] / 2) / (scores.shape[0] - 1)
    return scores, auc


@pytest.mark.parity
def test_deletion_insertion_rise_protocol_equals_port_of_their_loop():
    rng = np.random.default_rng(1)
    inp = keras.Input((12, 10, 3))
    h = keras.layers.Conv2D(4, 3, activation="relu")(inp)
    out = keras.layers.Dense(3, activation="softmax")(keras.layers.GlobalAveragePooling2D()(h))
    model = keras.Model(inp, out)
    x = rng.uniform(size=(2, 12, 10, 3)).astype("float32")
    maps = np.round(rng.uniform(size=(2, 12, 10)), 1).astype("float32")  # many ties
    targets = np.array([0, 2])
    for step in (None, 7):
        r = deletion_insertion(model, x, maps, targets=targets, protocol="rise", pixels_per_step=step, batch_size=5)
        used = 10 if step is None else step  # default: the image width
        assert r["pixels_per_step"] == used
        blurred = rise_blur(x)
        for b in range(2):
            def prob(im):
                return float(keras.ops.convert_to_numpy(model(im[None]))[0, targets[b]])
            for mode, key in (("del", "deletion"), ("ins", "insertion")):
                substrate = np.zeros_like(x[b]) if mode == "del" else blurred[b]
                scores, auc = rise_causal_metric_port(prob, x[b], maps[b], mode, used, substrate)
                np.testing.assert_allclose(r[f"{key}_curve"][b], scores, atol=1e-5)
                np.testing.assert_allclose(r[f"{key}_auc"][b], auc, atol=1e-5)
        assert len(r["fractions"]) == -(-120 // used) + 1


def test_deletion_insertion_protocol_arguments_are_checked():
    x = np.ones((1, 4, 4, 3), "float32")
    maps = np.ones((1, 4, 4))
    with pytest.raises(ValueError, match=r"deletion_insertion: Expected `protocol` to be one of \['default', 'rise'\]. "
                                         r"Received: protocol='RISE'"):
        deletion_insertion(mean_model(), x, maps, protocol="RISE")
    with pytest.raises(ValueError, match=r"Expected `steps=None` with protocol='rise'.*Received: steps=10"):
        deletion_insertion(mean_model(), x, maps, protocol="rise", steps=10)
    with pytest.raises(ValueError, match=r"Expected `baseline=None` with protocol='rise'.*Received: baseline='blur'"):
        deletion_insertion(mean_model(), x, maps, protocol="rise", baseline="blur")
    with pytest.raises(ValueError, match=r"Expected `pixels_per_step=None` with protocol='default'.*"
                                         r"Received: pixels_per_step=4"):
        deletion_insertion(mean_model(), x, maps, pixels_per_step=4)
    with pytest.raises(ValueError, match="pixels_per_step"):
        deletion_insertion(mean_model(), x, maps, protocol="rise", pixels_per_step=0)
