import keras
import numpy as np
import pytest
from keras import ops

from keras_priors.losses import CAMSuppression, pack_mask_and_label
from keras_priors.metrics import CAMEnergyInMask, cam_energy_in_mask

# 2x2 single-logit CAM; the 4x4 mask covers CAM cell (1, 0) fully and a quarter of cell (0, 0).
CAM = np.array([[1.0, -1.0], [2.0, 0.5]], "float32")[None, :, :, None]
MASK = np.zeros((1, 4, 4, 1), "float32")
MASK[0, 2:4, 0:2] = 1.0
MASK[0, 1, 1] = 1.0
# class 1 (positive part): total 1 + 2 + 0.5 = 3.5, inside 0.25 * 1 + 2 = 2.25
# class 0 (negative part): total 1 (cell (0, 1)), inside 0


def np_shares(cam, mask, labels):
    b, h, w, k = cam.shape
    cells = mask[..., 0].reshape(b, h, mask.shape[1] // h, w, mask.shape[2] // w).mean(axis=(2, 4))
    ev = np.concatenate([np.maximum(-cam, 0), np.maximum(cam, 0)], -1) if k == 1 else np.maximum(cam, 0)
    e = np.stack([ev[i, :, :, labels[i]] for i in range(b)])
    inside, total = (e * cells).sum(axis=(1, 2)), e.sum(axis=(1, 2))
    return inside, total


def _state(metric, y_true, y_pred):
    if keras.backend.backend() == "jax":
        # Eager JAX compiles op by op; a stateless jitted update is one compile.
        import jax

        def step(variables, t, p):
            return metric.stateless_update_state(variables, t, p)

        variables = jax.jit(step)([v.value for v in metric.variables], y_true, y_pred)
        for v, new in zip(metric.variables, variables):
            v.assign(new)
    else:
        metric.update_state(y_true, y_pred)
    return float(ops.convert_to_numpy(metric.result()))


@pytest.mark.parity
def test_hand_computed_single_logit():
    assert _state(CAMEnergyInMask(class_id=1), MASK, CAM) == pytest.approx(2.25 / 3.5, abs=1e-6)
    assert _state(CAMEnergyInMask(class_id=0), MASK, CAM) == pytest.approx(0.0, abs=1e-6)
    assert _state(CAMEnergyInMask(), MASK, CAM) == pytest.approx(2.25 / 3.5, abs=1e-6)  # predicted class 1
    packed = ops.convert_to_numpy(pack_mask_and_label(MASK, np.array([0])))
    assert _state(CAMEnergyInMask(), packed, CAM) == pytest.approx(0.0, abs=1e-6)  # true class 0


@pytest.mark.parity
def test_accumulates_energy_weighted_and_matches_numpy():
    rng = np.random.default_rng(0)
    cams = rng.normal(size=(2, 3, 4, 4, 3)).astype("float32")
    masks = (rng.uniform(size=(2, 3, 8, 8, 1)) > 0.5).astype("float32")
    labels = rng.integers(0, 3, size=(2, 3))
    metric = CAMEnergyInMask()
    inside = total = 0.0
    for cam, mask, lab in zip(cams, masks, labels):
        packed = ops.convert_to_numpy(pack_mask_and_label(mask, lab))
        value = _state(metric, packed, cam)
        i, t = np_shares(cam, mask, lab)
        inside, total = inside + i.sum(), total + t.sum()
        assert value == pytest.approx(inside / total, abs=1e-5)
    shares = ops.convert_to_numpy(cam_energy_in_mask(cams[0], masks[0], labels[0]))
    i, t = np_shares(cams[0], masks[0], labels[0])
    np.testing.assert_allclose(shares, i / t, atol=1e-5)
    metric.reset_state()
    assert float(ops.convert_to_numpy(metric.result())) == 0.0


@pytest.mark.parity
def test_in_fit_logs_and_evaluate_value():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 4, 4, 2)).astype("float32")
    mask = (rng.uniform(size=(8, 8, 8, 1)) > 0.5).astype("float32")
    inp = keras.Input((4, 4, 2))
    cam = keras.layers.Conv2D(2, 1, name="cam")(inp)
    model = keras.Model(inp, {"cam": cam})
    model.compile(optimizer="sgd", loss={"cam": CAMSuppression(classes=[0, 1])}, metrics={"cam": [CAMEnergyInMask()]})
    history = model.fit(x, {"cam": mask}, batch_size=8, epochs=1, verbose=0)
    assert any(k.endswith("cam_energy_in_mask") for k in history.history), history.history.keys()
    logs = model.evaluate(x, {"cam": mask}, batch_size=8, verbose=0, return_dict=True)
    value = [v for k, v in logs.items() if k.endswith("cam_energy_in_mask")][0]
    cam_np = model.predict(x, verbose=0)["cam"]
    i, t = np_shares(cam_np, mask, cam_np.mean(axis=(1, 2)).argmax(-1))
    assert value == pytest.approx(i.sum() / t.sum(), abs=1e-5)


def test_config_and_errors():
    m = CAMEnergyInMask(class_id=2, name="energy")
    assert CAMEnergyInMask.from_config(m.get_config()).class_id == 2
    assert keras.metrics.deserialize(keras.metrics.serialize(m)).class_id == 2
    with pytest.raises(ValueError, match=r"CAMEnergyInMask.*`class_id`.*Received: class_id=-1"):
        CAMEnergyInMask(class_id=-1)
    with pytest.raises(ValueError, match=r"CAMEnergyInMask.*`class_id` < 2.*Received: class_id=2"):
        CAMEnergyInMask(class_id=2).update_state(MASK, CAM)
    with pytest.raises(ValueError, match=r"CAMEnergyInMask.*H >= 2 and W >= 2.*Received: y_true.shape=\(1, 1, 1, 1\)"):
        CAMEnergyInMask().update_state(np.ones((1, 1, 1, 1), "float32"), CAM)
    value = CAMEnergyInMask()(MASK, CAM.astype("float16"))  # float16 CAM, float32 state
    assert keras.backend.standardize_dtype(value.dtype) == "float32"


@pytest.mark.parametrize("num_classes", [3, 1])
def test_the_metric_is_energy_in_mask_of_the_class_map(num_classes):
    """"Energy in mask" has one definition: the CAM metric on class k is ``kp.explain.energy_in_mask`` of
    ``relu(cam_k)`` (``relu(-cam)`` for class 0 of a single logit), the CAM repeated up to the mask's pixels."""
    from keras_priors.explain import energy_in_mask

    rng = np.random.default_rng(7)
    cam = rng.normal(size=(4, 4, 4, num_classes)).astype("float32")
    mask = (rng.random((4, 16, 16, 1)) > 0.6).astype("float32")
    for k in range(max(num_classes, 2)):
        evidence = (-cam[..., 0] if k == 0 else cam[..., 0]) if num_classes == 1 else cam[..., k]
        positive = np.maximum(evidence, 0.0)
        upsampled = np.repeat(np.repeat(positive, 4, axis=1), 4, axis=2)  # each CAM cell covers 4 x 4 pixels
        want = energy_in_mask(upsampled, mask)
        got = ops.convert_to_numpy(cam_energy_in_mask(cam, mask, class_id=k))
        np.testing.assert_allclose(got, want, atol=1e-6)
        assert 0.0 < want.min() and want.max() < 1.0  # a case where the mask's resizing matters
        # at the CAM's own resolution, with a binary mask, no resizing at all
        cell_mask = mask[:, ::4, ::4]
        np.testing.assert_allclose(ops.convert_to_numpy(cam_energy_in_mask(cam, cell_mask, class_id=k)),
                                   energy_in_mask(positive, cell_mask), atol=1e-6)
