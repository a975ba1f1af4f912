"""The "right for the right reasons" penalty: squared gradients outside the object."""

from __future__ import annotations

from keras import ops

from keras_priors.losses import _explanation
from keras_priors.validation import check_non_negative, check_one_of

NORMALIZE = ("rrr", "mean")


def check_normalize(normalize, owner: str = "input_gradient_penalty"):
    return check_one_of("normalize", normalize, NORMALIZE, owner=owner)


def input_gradient_penalty(gradients, mask, mask_is: str = "relevant", normalize: str = "rrr", weight: float = 1.0):
    """Per-sample ``weight * sum(((1 - mask) * gradients) ** 2)`` (Ross et al. 2017, eq. 1).

    The explanation term of RRR: the gradients of the log-probabilities with
    respect to the input (or any attribution map) must be small where the
    mask says the evidence is irrelevant. Written with ``keras.ops`` only; the
    gradients themselves come from ``keras_priors.priors.InputGradient`` (or
    your own ``GradientTape`` / ``jax.grad``).

    Args:
        gradients: (B, h, w, C) attribution, e.g. ``d sum_c log p_c / d image``.
        mask: (B, H, W) or (B, H, W, 1) in [0, 1], with H >= h and W >= w;
            area-resized to (h, w) when larger (each cell gets its exact
            object fraction).
        mask_is: ``"relevant"`` (default: 1 on the object, the penalty acts
            where ``mask == 0``) or ``"irrelevant"`` (RRR's annotation matrix
            ``A``: the penalty acts where ``mask == 1``).
        normalize: ``"rrr"`` (default): sum over pixels and channels. RRR
            minimises ``sum_n CE_n + lambda * sum_n sum_d (A g)^2`` over a
            batch; our classification loss is the batch *mean*, so dividing
            their objective by the batch size gives the mean of this per-sample
            sum, and ``weight = lambda`` reproduces their scaling for inputs
            on the same scale. Their Decoy-MNIST experiments use
            ``l2_grads=1000`` on raw 0-255 grey pixels; on [0, 1] pixels the
            gradient is 255 times larger, so the same penalty is
            ``weight = 1000 / 255**2`` (and 3 times that for a grey image tiled
            to 3 channels, each channel carrying a third of the gradient).
            ``"mean"``: mean over the h * w * C entries instead, a weight
            independent of the image size.
        weight: non-negative multiplier.

    Returns:
        float32 (B,) per-sample penalties (take the mean for a scalar).

    Example:

    >>> import numpy as np
    >>> g = np.ones((1, 2, 2, 1), "float32")
    >>> m = np.array([[[1, 0], [0, 0]]], "float32")   # object in one pixel
    >>> float(input_gradient_penalty(g, m)[0])          # 3 pixels outside, g = 1
    3.0

    Reference:
        Ross, Hughes and Doshi-Velez, "Right for the Right Reasons: Training
        Differentiable Models by Constraining their Explanations", IJCAI 2017.
    """
    owner = "input_gradient_penalty"
    check_normalize(normalize, owner)
    weight = check_non_negative("weight", weight, owner=owner)
    _explanation.check_rank4("gradients", gradients, owner)
    gradients = ops.cast(gradients, "float32")
    outside = _explanation.irrelevant_cells(mask, gradients, mask_is, owner)
    squared = ops.square(outside * gradients)
    if normalize == "rrr":
        return weight * ops.sum(squared, axis=(1, 2, 3))
    return weight * ops.mean(squared, axis=(1, 2, 3))
