import keras
import numpy as np
import pytest
from keras import ops

from harness import run_loss_test
from keras_priors.losses import MaskLoss, mask_loss

LN2 = float(np.log(2.0))


def _run(fn, *args):
    """``fn(*args)`` as numpy; jitted on JAX (one compile instead of one per eager op)."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.jit(fn)(*args))
    return np.asarray(ops.convert_to_numpy(fn(*args)))


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
    np.testing.assert_allclose(_run(lambda z: MaskLoss()(target, z), logits), 0.5 + LN2, atol=1e-5)
    np.testing.assert_allclose(_run(lambda z: MaskLoss(dice_weight=0.0)(target, z), logits), LN2, atol=1e-5)
    np.testing.assert_allclose(_run(lambda z: MaskLoss(bce_weight=0.0, smooth=0.0)(target, z), logits), 1 - 1.0 / 3.0,
                               atol=1e-5)
    # A 4x4 target is area-resized to 2x2: top-left block of ones -> the same target.
    big = np.zeros((1, 4, 4, 1), "float32")
    big[0, :2, :2] = 1.0
    np.testing.assert_allclose(_run(lambda z: MaskLoss()(big, z), logits), 0.5 + LN2, atol=1e-5)
    # One object pixel of 4 gives a soft target 0.25 in that cell: dice = 1 - (0.25 + 1) / (2 + 0.25 + 1).
    one = np.zeros((1, 4, 4), "float32")
    one[0, 0, 0] = 1.0
    np.testing.assert_allclose(_run(lambda z: MaskLoss(bce_weight=0.0)(one, z), logits), 1 - 1.25 / 3.25, atol=1e-5)


@pytest.mark.parity
def test_perfect_prediction_has_zero_dice():
    target = np.zeros((2, 4, 4, 1), "float32")
    target[:, 1:3, 1:3] = 1.0
    value = MaskLoss(from_logits=False, smooth=1.0)(target, target)
    np.testing.assert_allclose(float(value), 0.0, atol=1e-5)  # dice 0 and BCE ~1e-7
    logits = np.where(target > 0, 30.0, -30.0).astype("float32")
    np.testing.assert_allclose(_run(lambda z: MaskLoss(bce_weight=0.0)(target, z), logits), 0.0, atol=1e-5)


@pytest.mark.parity
def test_matches_numpy():
    rng = np.random.default_rng(0)
    target = (rng.uniform(size=(3, 6, 6, 1)) > 0.5).astype("float32")
    logits = rng.normal(size=(3, 6, 6, 1)).astype("float32")
    got = _run(lambda z: mask_loss(target, z, dice_weight=0.7, bce_weight=0.3, smooth=0.5), logits)
    np.testing.assert_allclose(got, np_mask_loss(target, logits, 0.7, 0.3, 0.5), atol=1e-5)


def test_run_loss_test():
    rng = np.random.default_rng(1)
    target = (rng.uniform(size=(2, 8, 8, 1)) > 0.5).astype("float32")
    logits = rng.normal(size=(2, 4, 4, 1)).astype("float32")
    cells = target.reshape(2, 4, 2, 4, 2, 1).mean(axis=(2, 4))
    run_loss_test(MaskLoss, {"dice_weight": 0.5}, target, logits,
                  expected=float(np_mask_loss(cells, logits, dice_weight=0.5).mean()))


@pytest.mark.parity
def test_gradient_for_empty_mask_matches_hand_value():
    z = np.zeros((1, 4, 4, 1), "float32")
    target = np.zeros((1, 4, 4, 1), "float32")
    fn = lambda logits: MaskLoss()(target, logits)  # noqa: E731
    if keras.backend.backend() == "jax":
        import jax

        g = np.asarray(jax.jit(jax.grad(fn))(z))
    elif keras.backend.backend() == "torch":
        import torch

        zt = torch.tensor(z, requires_grad=True)
        fn(zt).backward()
        g = zt.grad.numpy()
    else:
        import tensorflow as tf

        zt = tf.convert_to_tensor(z)
        with tf.GradientTape() as tape:
            tape.watch(zt)
            value = fn(zt)
        g = tape.gradient(value, zt).numpy()
    # p = 0.5: dice = 1 - 1 / (sum p + 1), d/dz = p (1 - p) / (8 + 1)^2; BCE mean: (p - 0) / 16.
    np.testing.assert_allclose(g, np.full(z.shape, 0.25 / 81 + 0.5 / 16), atol=1e-6)


def test_errors():
    with pytest.raises(ValueError, match=r"MaskLoss: Expected `dice_weight` >= 0. Received: dice_weight=-1"):
        MaskLoss(dice_weight=-1)
    with pytest.raises(ValueError, match=r"MaskLoss: Expected `smooth` >= 0"):
        MaskLoss(smooth=-0.1)
    with pytest.raises(ValueError, match=r"MaskLoss: Expected `y_true`.*Received: y_true.shape=\(2, 4, 4, 3\)"):
        MaskLoss()(np.zeros((2, 4, 4, 3), "float32"), np.zeros((2, 4, 4, 1), "float32"))
