import keras
import numpy as np
import pytest
from keras import ops

from harness import run_loss_test
from keras_priors.losses import CAMSuppression, cam_suppression, pack_mask_and_label
from keras_priors.losses._spatial import area_resize, area_weights

# 3x3 single-logit CAM; the 6x6 mask covers cell (1, 1) fully and the lower half of cell (0, 1).
CAM3 = np.array([[-1.0, -2.0, -3.0], [0.5, -2.0, 1.0], [-0.5, 4.0, -1.0]], "float32")
MASK6 = np.zeros((6, 6), "float32")
MASK6[2:4, 2:4] = 1.0  # cell (1, 1)
MASK6[1, 2:4] = 1.0  # half of cell (0, 1)
# outside weights: 1 everywhere, 0.5 at (0, 1), 0 at (1, 1).
# relu(-cam) outside: 1 + 0.5*2 + 3 + 0 + 0 + 0 + 0.5 + 0 + 1 = 6.5; outside area 7.5.


def _batch(cam=CAM3, mask=MASK6):
    return mask[None, :, :, None], cam[None, :, :, None]


def np_cam_suppression(cam, mask, classes, normalize="outside_area", power=1, weight=1.0):
    """numpy reference; mask (B,H,W) with H, W multiples of the CAM's h, w."""
    b, h, w, k = cam.shape
    fh, fw = mask.shape[1] // h, mask.shape[2] // w
    cells = mask.reshape(b, h, fh, w, fw).mean(axis=(2, 4))
    evidence = np.concatenate([np.maximum(-cam, 0), np.maximum(cam, 0)], -1) if k == 1 else np.maximum(cam, 0)
    sel = np.zeros((b, evidence.shape[-1]), "float64")
    for i in range(b):
        sel[i, classes[i] if isinstance(classes[0], list) else classes] = 1.0
    per_cell = (evidence**power * sel[:, None, None, :]).sum(-1)
    outside = 1.0 - cells
    total = (per_cell * outside).sum(axis=(1, 2))
    if normalize == "none":
        out = total
    elif normalize == "area":
        out = total / (h * w)
    else:
        area = outside.sum(axis=(1, 2))
        out = np.where(area > 0, total / np.maximum(area, 1e-12), 0.0)
    return weight * out


#: The positive-evidence, outside-area penalty (the defaults before 0.2), which the hand cases compute.
CLASSIC = {"normalize": "outside_area", "evidence": "positive"}

HAND_CASES = [
        ({}, 6.5 / 7.5),
        ({"normalize": "none"}, 6.5),
        ({"normalize": "area"}, 6.5 / 9.0),
        ({"normalize": "none", "power": 2}, 1 + 0.5 * 4 + 9 + 0.25 + 1),
        ({"normalize": "none", "classes": 1}, 0.5 + 1.0 + 4.0),
        ({"normalize": "none", "classes": [0, 1]}, 6.5 + 5.5),
        ({"normalize": "none", "weight": 2.0}, 13.0),
]


@pytest.mark.parity
def test_hand_computed_single_logit():
    y_true, y_pred = _batch()
    for kwargs, expected in HAND_CASES:
        value = _run(lambda c, kwargs=kwargs: CAMSuppression(**{**CLASSIC, **kwargs})(y_true, c), y_pred)
        np.testing.assert_allclose(value, expected, atol=1e-5, err_msg=str(kwargs))


@pytest.mark.parity
def test_mask_without_channel_axis_and_identity_resize():
    cam = CAM3[None, :, :, None]
    mask3 = np.zeros((1, 3, 3), "float32")
    mask3[0, 1, 1] = 1.0  # same resolution as the CAM
    expected = (1 + 2 + 3 + 0.5 + 1) / 8.0
    np.testing.assert_allclose(_run(lambda c: CAMSuppression(**CLASSIC)(mask3, c), cam), expected, atol=1e-5)


def test_run_loss_test_hand_value():
    y_true, y_pred = _batch()
    run_loss_test(CAMSuppression, {"classes": 0, "normalize": "outside_area"}, y_true, y_pred, expected=6.5 / 7.5)


def test_run_loss_test_multiclass_true():
    rng = np.random.default_rng(0)
    cam = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    mask = (rng.uniform(size=(2, 8, 8, 1)) > 0.5).astype("float32")
    packed = ops.convert_to_numpy(pack_mask_and_label(mask, np.array([2, 0])))
    run_loss_test(CAMSuppression, {"classes": "true", "power": 2, "normalize": "area"}, packed, cam)


@pytest.mark.parity
@pytest.mark.parametrize("normalize, power", [("outside_area", 1), ("area", 2)])
def test_multiclass_matches_numpy(normalize, power):
    rng = np.random.default_rng(1)
    cam = rng.normal(size=(3, 4, 4, 3)).astype("float32")
    mask = (rng.uniform(size=(3, 8, 12)) > 0.4).astype("float32")
    cam = cam[:, :, :3]  # h=4, w=3 -> area factors 2 and 4
    labels = np.array([2, 0, 1])
    ref_true = np_cam_suppression(cam, mask, [[int(l)] for l in labels], normalize, power)
    ref_fixed = np_cam_suppression(cam, mask, [0, 2], normalize, power)
    loss = CAMSuppression(classes="true", normalize=normalize, power=power, evidence="positive", reduction=None)

    def all_three(c, m, lab):
        return (
            cam_suppression(c, m, classes="true", labels=lab, normalize=normalize, power=power, evidence="positive"),
            loss(pack_mask_and_label(m[..., None], lab), c),
            cam_suppression(c, m, classes=[0, 2], normalize=normalize, power=power, evidence="positive"),
        )

    if keras.backend.backend() == "jax":
        import jax

        got = jax.jit(all_three)(cam, mask, labels)
    else:
        got = all_three(cam, mask, labels)
    got_true, got_packed, got_fixed = (np.asarray(ops.convert_to_numpy(g)) for g in got)
    np.testing.assert_allclose(got_true, ref_true, atol=1e-5)
    np.testing.assert_allclose(got_packed, ref_true, atol=1e-5)
    np.testing.assert_allclose(got_fixed, ref_fixed, atol=1e-5)


@pytest.mark.parity
def test_full_and_empty_masks():
    for normalize in ("outside_area", "area", "none"):
        _check_full_and_empty(normalize)


def _check_full_and_empty(normalize):
    rng = np.random.default_rng(2)
    cam = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    full = np.ones((2, 8, 8, 1), "float32")
    empty = np.zeros((2, 8, 8, 1), "float32")
    loss = CAMSuppression(classes=[0, 1], normalize=normalize, evidence="positive", reduction=None)
    assert np.all(_run(lambda c: loss(full, c), cam) == 0.0)  # exactly zero
    value = _run(lambda c: loss(empty, c), cam)
    assert np.all(np.isfinite(value))
    ref = np_cam_suppression(cam, empty[..., 0], [0, 1], normalize)
    np.testing.assert_allclose(value, ref, atol=1e-5)
    # Gradients are finite too, and zero for the full mask.
    g_full = _grad(lambda c: ops.sum(loss(full, c)), cam)
    g_empty = _grad(lambda c: ops.sum(loss(empty, c)), cam)
    assert np.all(g_full == 0.0)
    assert np.all(np.isfinite(g_empty))


def _grad(fn, x):
    """Gradient of a scalar ``fn`` at numpy ``x``, on the active backend."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return tape.gradient(y, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.jit(jax.grad(fn))(x))
    if backend == "torch":
        import torch

        xt = torch.tensor(np.asarray(x), requires_grad=True)
        fn(xt).backward()
        return xt.grad.numpy()
    pytest.skip(f"no gradient helper for backend {backend}")


def _run(fn, *args):
    """``fn(*args)`` as numpy; jitted on JAX (one compile instead of one per eager op)."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.jit(fn)(*args))
    return np.asarray(ops.convert_to_numpy(fn(*args)))


@pytest.mark.parity
def test_gradient_single_logit_matches_numpy():
    y_true, y_pred = _batch()
    loss = CAMSuppression(classes=0, normalize="none", evidence="positive")
    g = _grad(lambda c: loss(y_true, c), y_pred)[0, :, :, 0]
    outside = np.ones((3, 3))
    outside[0, 1], outside[1, 1] = 0.5, 0.0
    expected = -outside * (CAM3 < 0)  # d relu(-cam) / d cam
    np.testing.assert_allclose(g, expected, atol=1e-6)
    assert g[1, 1] == 0.0  # inside the object: no gradient although cam < 0 there


@pytest.mark.parity
def test_gradient_zero_inside_mask_and_for_other_classes():
    rng = np.random.default_rng(3)
    cam = rng.normal(size=(2, 4, 4, 3)).astype("float32")
    mask = np.zeros((2, 8, 8, 1), "float32")
    mask[:, :4, :4] = 1.0  # CAM cells [0:2, 0:2] fully inside
    for kwargs in ({"classes": [1]}, {"classes": 1, "power": 2, "normalize": "area"}):
        loss = CAMSuppression(**{**CLASSIC, **kwargs})
        g = _grad(lambda c: loss(mask, c), cam)
        assert np.all(g[:, :2, :2, :] == 0.0)
        assert np.all(g[..., 0] == 0.0) and np.all(g[..., 2] == 0.0)
        assert np.any(g[..., 1] != 0.0)
        # Gradient matches numpy: d/dcam of mean over batch of total / area.
        outside = np.ones((2, 4, 4))
        outside[:, :2, :2] = 0.0
        c1 = cam[..., 1]
        d = (c1 > 0) * (2 * np.maximum(c1, 0) if kwargs.get("power") == 2 else 1.0) * outside
        d = d / (16.0 if kwargs.get("normalize") == "area" else 12.0) / 2.0
        np.testing.assert_allclose(g[..., 1], d, atol=1e-6)


@pytest.mark.parity
def test_true_classes_single_logit_use_sign_of_label():
    y_true, y_pred = _batch()
    cam = np.concatenate([y_pred, y_pred], 0)
    mask = np.concatenate([y_true, y_true], 0)
    got = _run(lambda c: cam_suppression(c, mask, classes="true", labels=np.array([0, 1]), normalize="none",
                                         evidence="positive"), cam)
    np.testing.assert_allclose(got, [6.5, 5.5], atol=1e-5)


def test_float16_cam_gives_float32_loss():
    y_true, y_pred = _batch()
    value = CAMSuppression()(y_true, y_pred.astype("float16"))
    assert keras.backend.standardize_dtype(value.dtype) == "float32"
    value = cam_suppression(y_pred.astype("float16"), y_true)
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


def test_area_weights_are_exact_fractions():
    w = area_weights(5, 2)  # cells of 2.5 pixels, in units of 1/2 pixel
    np.testing.assert_array_equal(w, [[2, 2, 1, 0, 0], [0, 0, 1, 2, 2]])
    x = np.arange(25, dtype="float32").reshape(1, 5, 5, 1)
    y = ops.convert_to_numpy(area_resize(x, (2, 2)))[0, :, :, 0]
    np.testing.assert_allclose(y[0, 0], (x[0, :, :, 0] * np.outer(w[0], w[0])).sum() / 25.0, rtol=1e-6)


def test_errors():
    cam = np.zeros((1, 4, 4, 1), "float32")
    with pytest.raises(ValueError, match=r"CAMSuppression: Expected `weight` >= 0. Received: weight=-1"):
        CAMSuppression(weight=-1)
    with pytest.raises(ValueError, match=r"CAMSuppression.*`classes`.*Received: classes=\[-1\]"):
        CAMSuppression(classes=[-1])
    with pytest.raises(ValueError, match=r"CAMSuppression.*`normalize`.*Received: normalize='mean'"):
        CAMSuppression(normalize="mean")
    with pytest.raises(ValueError, match=r"CAMSuppression.*`power` >= 1.*Received: power=0.5"):
        CAMSuppression(power=0.5)
    with pytest.raises(ValueError, match=r"CAMSuppression.*`classes` < 2.*Received: classes=\[2\]"):
        CAMSuppression(classes=2)(np.ones((1, 8, 8, 1), "float32"), cam)
    with pytest.raises(ValueError, match=r"CAMSuppression.*`classes` < 3.*Received: classes=\[0, 3\]"):
        CAMSuppression(classes=[0, 3])(np.ones((1, 8, 8, 1), "float32"), np.zeros((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match=r"CAMSuppression.*H >= 4 and W >= 4.*Received: y_true.shape=\(1, 2, 2, 1\)"):
        CAMSuppression()(np.ones((1, 2, 2, 1), "float32"), cam)
    with pytest.raises(ValueError, match=r"CAMSuppression.*Received: y_true.shape=\(1, 8\)"):
        CAMSuppression()(np.ones((1, 8), "float32"), cam)
    with pytest.raises(ValueError,
                       match=r"CAMSuppression.*packed.*classes='true'.*Received: y_true.shape=\(1, 8, 8, 1\)"):
        CAMSuppression(classes="true")(np.ones((1, 8, 8, 1), "float32"), cam)
    with pytest.raises(ValueError, match=r"cam_suppression.*`labels`"):
        cam_suppression(cam, np.ones((1, 8, 8, 1), "float32"), classes="true")


def test_pack_mask_and_label_in_tf_data():
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((np.ones((2, 4, 4, 1), "float32"), np.array([0, 3], "int32")))
    packed = np.stack([p.numpy() for p in ds.map(pack_mask_and_label)])
    assert packed.shape == (2, 4, 4, 2)
    np.testing.assert_array_equal(packed[..., 1], np.array([0, 3])[:, None, None] * np.ones((2, 4, 4)))
    np.testing.assert_array_equal(packed[..., 0], 1.0)


def test_in_compile_of_functional_model():
    """CAMSuppression in ``compile(loss={...})`` of a two-output model, value and a fit step."""
    rng = np.random.default_rng(4)
    x = rng.normal(size=(4, 4, 4, 2)).astype("float32")
    mask = (rng.uniform(size=(4, 8, 8, 1)) > 0.5).astype("float32")
    labels = np.array([0, 1, 1, 0], "int32")
    inp = keras.Input((4, 4, 2))
    cam = keras.layers.Conv2D(1, 1, use_bias=False, kernel_initializer="ones", name="cam")(inp)
    logits = keras.layers.GlobalAveragePooling2D(name="logits")(cam)
    model = keras.Model(inp, {"cam": cam, "logits": logits})
    model.compile(
        optimizer=keras.optimizers.SGD(0.01),
        loss={"cam": CAMSuppression(classes="true", **CLASSIC),
              "logits": keras.losses.BinaryCrossentropy(from_logits=True)},
        loss_weights={"cam": 1.0, "logits": 0.0},
    )
    y = {"cam": ops.convert_to_numpy(pack_mask_and_label(mask, labels)), "logits": labels[:, None].astype("float32")}
    value = model.evaluate(x, y, batch_size=4, verbose=0, return_dict=True)["loss"]
    cam_np = x.sum(-1, keepdims=True)
    ref = np_cam_suppression(cam_np, mask[..., 0], [[int(l)] for l in labels]).mean()
    np.testing.assert_allclose(value, ref, atol=1e-5)
    history = model.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


@pytest.mark.parity
def test_relative_evidence_closes_the_negative_evidence_door():
    """Positive-evidence suppression ignores negative CAM outside; relative evidence does not."""
    cam = np.zeros((1, 2, 2, 2), "float32")
    cam[0, 0, 0] = [-3.0, -1.0]  # outside cell: class 1 favoured by 2 through negative values only
    mask = np.zeros((1, 2, 2, 1), "float32")
    mask[0, 1, 1] = 1.0
    positive = CAMSuppression(classes=[0, 1], normalize="none", evidence="positive")(mask, cam)
    relative = CAMSuppression(classes=[0, 1], normalize="none", evidence="relative")(mask, cam)
    assert float(positive) == 0.0
    # relu(cam - mean) = relu([-1, 1]) -> 1 in that cell, 0 elsewhere.
    np.testing.assert_allclose(float(relative), 1.0, atol=1e-6)
    with pytest.raises(ValueError, match="evidence"):
        CAMSuppression(evidence="negative")


def np_share(cam, mask, classes, evidence="relative"):
    """The "share" penalty in numpy: outside evidence / all evidence, 1 for an empty CAM."""
    h, w = cam.shape[1:3]
    cells = mask.reshape(mask.shape[0], h, mask.shape[1] // h, w, mask.shape[2] // w).mean(axis=(2, 4))
    ev = cam - cam.mean(-1, keepdims=True) if evidence == "relative" else cam
    per_cell = np.maximum(ev, 0)[..., classes].sum(-1)
    inside = (per_cell * cells).sum((1, 2))
    total = per_cell.sum((1, 2))
    return np.where(total > 1e-7, 1 - inside / np.maximum(total, 1e-7), 1 - inside)


@pytest.mark.parity
def test_share_default_matches_numpy_and_cannot_be_lowered_by_wiping_the_cam():
    rng = np.random.default_rng(7)
    cam = rng.normal(size=(3, 4, 4, 2)).astype("float32")
    mask = np.zeros((3, 8, 8, 1), "float32")
    mask[:, 2:6, 2:6] = 1.0
    got = ops.convert_to_numpy(cam_suppression(cam, mask, classes=[0, 1]))
    np.testing.assert_allclose(got, np_share(cam, mask[..., 0], [0, 1]), atol=1e-5)
    # Hand case: relative evidence of a 2-class CAM is |cam_0 - cam_1| / 2 on the larger class.
    one = np.zeros((1, 2, 2, 2), "float32")
    one[0, 0, 0] = [2.0, 0.0]  # inside: evidence 1 for class 0
    one[0, 1, 1] = [0.0, 6.0]  # outside: evidence 3 for class 1
    m = np.zeros((1, 2, 2, 1), "float32")
    m[0, 0, 0] = 1.0
    np.testing.assert_allclose(ops.convert_to_numpy(cam_suppression(one, m, classes=[0, 1])), [3.0 / 4.0], atol=1e-6)
    # A wiped CAM (no evidence anywhere) scores the worst value, 1; all evidence on the object scores 0.
    np.testing.assert_allclose(ops.convert_to_numpy(cam_suppression(np.zeros_like(one), m, classes=[0, 1])), [1.0])
    on_object = np.zeros_like(one)
    on_object[0, 0, 0] = [2.0, 0.0]
    np.testing.assert_allclose(ops.convert_to_numpy(cam_suppression(on_object, m, classes=[0, 1])), [0.0])
    # Empty or full mask: nothing to compare, 0.
    for mm in (np.zeros_like(m), np.ones_like(m)):
        np.testing.assert_allclose(ops.convert_to_numpy(cam_suppression(one, mm, classes=[0, 1])), [0.0])


@pytest.mark.parity
def test_share_gradient_pushes_evidence_onto_the_object_from_a_wiped_cam():
    m = np.zeros((1, 2, 2, 1), "float32")
    m[0, 0, 0] = 1.0
    cam = np.full((1, 2, 2, 2), 1e-9, "float32")  # practically no evidence
    cam[0, 0, 0, 0] = 2e-9
    g = _grad(lambda c: CAMSuppression(classes=[0, 1])(m, c), cam)
    assert g[0, 0, 0, 0] < 0  # gradient descent raises class 0's evidence on the object
