"""Dice + binary cross-entropy for mask decoders."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.losses import _spatial
from keras_priors.validation import check_non_negative

_OWNER = "MaskLoss"
_EPS = 1e-7


def _standardize(y_true, y_pred, owner, arg="y_true"):
    y_pred = ops.cast(y_pred, "float32")
    y_true = ops.cast(y_true, "float32")
    if len(y_pred.shape) == 3:
        y_pred = ops.expand_dims(y_pred, -1)
    if len(y_true.shape) == 3:
        y_true = ops.expand_dims(y_true, -1)
    bad = len(y_pred.shape) != 4 or y_pred.shape[-1] != 1 or len(y_true.shape) != 4 or y_true.shape[-1] != 1
    if not bad:
        bad = any(d is None for d in (y_pred.shape[1], y_pred.shape[2], y_true.shape[1], y_true.shape[2]))
    if bad:
        raise ValueError(
            f"{owner}: Expected `{arg}` and the prediction of shape (B, H, W) or (B, H, W, 1) with "
            f"known H, W. Received: {arg}.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
        )
    size = (y_pred.shape[1], y_pred.shape[2])
    y_true = ops.clip(_spatial.area_resize(y_true, size), 0.0, 1.0)
    return y_true, y_pred


def _mask_loss(y_true, y_pred, dice_weight, bce_weight, from_logits, smooth):
    axes = (1, 2, 3)
    if from_logits:
        prob = ops.sigmoid(y_pred)
        # BCE with logits: softplus(z) - z * t (softplus is stable; smooth at z = 0,
        # unlike the max(z, 0) + log(1 + exp(-|z|)) form whose gradient vanishes there).
        bce = ops.softplus(y_pred) - y_pred * y_true
    else:
        prob = ops.clip(y_pred, _EPS, 1.0 - _EPS)
        bce = -(y_true * ops.log(prob) + (1.0 - y_true) * ops.log(1.0 - prob))
        prob = y_pred
    inter = ops.sum(prob * y_true, axis=axes)
    denom = ops.sum(prob, axis=axes) + ops.sum(y_true, axis=axes)
    dice = 1.0 - (2.0 * inter + smooth) / ops.maximum(denom + smooth, _EPS)
    return dice_weight * dice + bce_weight * ops.mean(bce, axis=axes)


def mask_loss(
    y_true,
    y_pred,
    dice_weight: float = 1.0,
    bce_weight: float = 1.0,
    from_logits: bool = True,
    smooth: float = 1.0,
):
    """Per-sample Dice + BCE (function form of ``MaskLoss``); float32 (B,)."""
    owner = "mask_loss"
    dice_weight = check_non_negative("dice_weight", dice_weight, owner=owner)
    bce_weight = check_non_negative("bce_weight", bce_weight, owner=owner)
    smooth = check_non_negative("smooth", smooth, owner=owner)
    y_true, y_pred = _standardize(y_true, y_pred, owner)
    return _mask_loss(y_true, y_pred, dice_weight, bce_weight, bool(from_logits), smooth)


@keras_priors_export("keras_priors.losses.MaskLoss")
class MaskLoss(keras.losses.Loss):
    """Dice + binary cross-entropy between a predicted mask and the target mask.

    Per sample: ``dice_weight * (1 - (2 * sum(p * t) + smooth) / (sum(p) + sum(t) + smooth))
    + bce_weight * mean(BCE(t, p))`` with ``p = sigmoid(y_pred)`` when
    ``from_logits``. If the target mask (B, H, W, 1) has another size than the
    prediction (B, h, w, 1), it is area-resized to (h, w) (each cell gets the
    exact fraction of its pixels on the object, i.e. average pooling when H is a
    multiple of h), so the target may be soft.

    Args:
        dice_weight: weight of the soft Dice term, >= 0.
        bce_weight: weight of the mean binary cross-entropy term, >= 0.
        from_logits: ``y_pred`` are logits (default) or probabilities.
        smooth: Dice smoothing constant, >= 0 (keeps empty masks finite;
            with ``smooth=0`` an empty target and empty prediction give dice 1).
        name: loss name.
        **kwargs: ``reduction`` (over the batch, default ``"sum_over_batch_size"``) and ``dtype``
            (computation dtype; float32 by default) of ``keras.losses.Loss``.

    Example:
    >>> import numpy as np
    >>> target = np.zeros((2, 32, 32, 1), "float32"); target[:, 8:24, 8:24] = 1
    >>> logits = np.full((2, 16, 16, 1), -20.0, "float32")   # predicted at half resolution
    >>> logits[:, 4:12, 4:12] = 20.0                          # the same square: a near-perfect mask
    >>> round(float(MaskLoss(dice_weight=1.0, bce_weight=1.0)(target, logits)), 4)
    0.0
    >>> round(float(MaskLoss(dice_weight=1.0, bce_weight=1.0)(target, -logits)))  # inverted: Dice 1 + BCE 20
    21

    Reference:
        Milletari et al. 2016, "V-Net" (Dice loss).
    """

    def __init__(
        self,
        dice_weight: float = 1.0,
        bce_weight: float = 1.0,
        from_logits: bool = True,
        smooth: float = 1.0,
        name: str = "mask_loss",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.dice_weight = check_non_negative("dice_weight", dice_weight, owner=_OWNER)
        self.bce_weight = check_non_negative("bce_weight", bce_weight, owner=_OWNER)
        self.from_logits = bool(from_logits)
        self.smooth = check_non_negative("smooth", smooth, owner=_OWNER)

    def call(self, y_true, y_pred):
        y_true, y_pred = _standardize(y_true, y_pred, _OWNER)
        return _mask_loss(y_true, y_pred, self.dice_weight, self.bce_weight, self.from_logits, self.smooth)

    def get_config(self):
        return {
            **super().get_config(),
            "dice_weight": self.dice_weight,
            "bce_weight": self.bce_weight,
            "from_logits": self.from_logits,
            "smooth": self.smooth,
        }
