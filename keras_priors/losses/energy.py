"""The energy loss: the share of positive attribution that lies outside the object."""

from __future__ import annotations

from keras import ops

from keras_priors.losses import _explanation
from keras_priors.validation import check_non_negative


def energy_loss(attribution, mask, mask_is: str = "relevant", weight: float = 1.0):
    """Per-sample ``weight * (1 - sum(relu(a) * mask) / sum(relu(a)))`` (Rao et al. 2023).

    Only the positive part of the attribution counts; the loss is 0 when all
    of it lies on the object and 1 when none does. As in the reference code,
    a map with (almost) no positive attribution (``sum < 1e-7``) gives
    ``1 - sum(relu(a) * mask)``, i.e. about 1, with no division by zero.

    The mask is area-resized to the attribution's (h, w): each cell weighs its
    exact object fraction, which equals the energy of the map upsampled to the
    mask by nearest neighbour when H is a multiple of h (the reference code
    upsamples bilinearly to the image instead).

    Args:
        attribution: (B, h, w, 1) or (B, h, w) map for one class per sample
            (a CAM channel or a Grad-CAM map).
        mask: (B, H, W) or (B, H, W, 1) in [0, 1], H >= h, W >= w.
        mask_is: ``"relevant"`` (default, the mask marks the object) or
            ``"irrelevant"`` (the mask marks where evidence must not be).
        weight: non-negative multiplier.

    Returns:
        float32 (B,).

    Example:

    >>> import numpy as np
    >>> a = np.array([[[1.0, 3.0], [0.0, -2.0]]], "float32")
    >>> m = np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")
    >>> float(energy_loss(a, m)[0])   # positive energy 4, inside 1
    0.75

    Reference:
        Rao, Böhle, Parchami-Araghi and Schiele, "Studying How to Efficiently
        and Effectively Guide Models with Explanations", ICCV 2023
        (``EnergyPointingGameBBMultipleLoss`` in sukrutrao/Model-Guidance).
    """
    owner = "energy_loss"
    weight = check_non_negative("weight", weight, owner=owner)
    if len(attribution.shape) == 3:
        attribution = ops.expand_dims(attribution, -1)
    _explanation.check_rank4("attribution", attribution, owner)
    if attribution.shape[-1] != 1:
        raise ValueError(
            f"{owner}: Expected `attribution` (B, h, w) or (B, h, w, 1), one map per sample. "
            f"Received: attribution.shape={tuple(attribution.shape)}"
        )
    positive = ops.relu(ops.cast(attribution, "float32"))
    inside = 1.0 - _explanation.irrelevant_cells(mask, positive, mask_is, owner)
    num = ops.sum(positive * inside, axis=(1, 2, 3))
    den = ops.sum(positive, axis=(1, 2, 3))
    return weight * ops.where(den < 1e-7, 1.0 - num, 1.0 - num / ops.maximum(den, 1e-7))
