import keras
import numpy as np
import pytest
from keras import ops

from harness import run_loss_test
from keras_priors.losses import MaskLoss, mask_loss

LN2 = float(np.log(2.0))


def np_mask_loss(t, z, dice_weight=1.0, bce_weight=1.0, smooth=1.0):
    t, z = t.astype("float64"), z.astype("float64")
    p = 1 / (1 + np.exp(-z))
    axes = tuple(range(1, t.ndim))
    dice = 1 - (2 * (p * t).sum(axes) + smooth) / (p.sum(axes) + t.sum(axes) + smooth)
    bce = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    return dice_weight * dice + bce_weight * bce.mean(axes)


@pytest.mark.parity
def test_hand_computed_values():
    logits = np.zeros((1, 2, 2, 1), "float32")  # p = 0.5 everywhere
    target = np.zeros((1, 2, 2, 1), "float32")
    target[0, 0, 0] = 1.0
    # dice = 1 - (2 * 0.5 + 1) / (2 + 1 + 1) = 0.5; BCE = ln 2 per pixel.
    np.testing.assert_allclose(float(MaskLoss()(target, logits)), 0.5 + LN2, atol=1e-5)
    np.testing.assert_allclose(float(MaskLoss(dice_weight=0.0)(target, logits)), LN2, atol=1e-5)
    np.testing.assert_allclose(float(MaskLoss(bce_weight=0.0, smooth=0.0)(target, logits)), 1 - 1.0 / 3.0, atol=1e-5)
    # A 4x4 target is area-resized to 2x2: top-left block of ones -> the same target.
    big = np.zeros((1, 4, 4, 1), "float32")
    big[0, :2, :2] = 1.0
    np.testing.assert_allclose(float(MaskLoss()(big, logits)), 0.5 + LN2, atol=1e-5)
    # One object pixel of 4 gives a soft target 0.25 in that cell: dice = 1 - (0.25 + 1) / (2 + 0.25 + 1).
    one = np.zeros((1, 4, 4), "float32")
    one[0, 0, 0] = 1.0
    np.testing.assert_allclose(float(MaskLoss(bce_weight=0.0)(one, logits)), 1 - 1.25 / 3.25, atol=1e-5)


@pytest.mark.parity
def test_perfect_prediction_has_zero_dice():
    target = np.zeros((2, 4, 4, 1), "float32")
    target[:, 1:3, 1:3] = 1.0
    value = MaskLoss(from_logits=False, smooth=1.0)(target, target)
    np.testing.assert_allclose(float(value), 0.0, atol=1e-5)  # dice 0 and BCE ~1e-7
    logits = np.where(target > 0, 30.0, -30.0).astype("float32")
    np.testing.assert_allclose(float(MaskLoss(bce_weight=0.0)(target, logits)), 0.0, atol=1e-5)


@pytest.mark.parity
def test_matches_numpy():
    rng = np.random.default_rng(0)
    target = (rng.uniform(size=(3, 6, 6, 1)) > 0.5).astype("float32")
    logits = rng.normal(size=(3, 6, 6, 1)).astype("float32")
    got = mask_loss(target, logits, dice_weight=0.7, bce_weight=0.3, smooth=0.5)
    np.testing.assert_allclose(ops.convert_to_numpy(got), np_mask_loss(target, logits, 0.7, 0.3, 0.5), atol=1e-5)


def test_run_loss_test():
    rng = np.random.default_rng(1)
    target = (rng.uniform(size=(2, 8, 8, 1)) > 0.5).astype("float32")
    logits = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    cells = target.reshape(2, 4, 2, 4, 2, 1).mean(axis=(2, 4))
    run_loss_test(MaskLoss, {"dice_weight": 0.5}, target, logits,
                  expected=float(np_mask_loss(cells, logits, dice_weight=0.5).mean()))


def test_gradient_is_finite_for_empty_masks():
    import tensorflow as tf

    z = tf.Variable(np.zeros((1, 4, 4, 1), "float32"))
    with tf.GradientTape() as tape:
        value = MaskLoss()(np.zeros((1, 4, 4, 1), "float32"), z)
    g = tape.gradient(value, z).numpy()
    assert np.all(np.isfinite(g)) and np.all(g > 0)  # pushes the logits down


def test_errors():
    with pytest.raises(ValueError, match=r"MaskLoss: Expected `dice_weight` >= 0. Received: dice_weight=-1"):
        MaskLoss(dice_weight=-1)
    with pytest.raises(ValueError, match=r"MaskLoss: Expected `smooth` >= 0"):
        MaskLoss(smooth=-0.1)
    with pytest.raises(ValueError, match=r"MaskLoss: Expected `y_true`.*Received: y_true.shape=\(2, 4, 4, 3\)"):
        MaskLoss()(np.zeros((2, 4, 4, 3), "float32"), np.zeros((2, 4, 4, 1), "float32"))
