"""Differentiable Grad-CAM maps and the RRR penalty on them (RRR-G)."""

from __future__ import annotations

from keras import ops

from keras_priors.losses import _explanation
from keras_priors.losses.input_gradient import input_gradient_penalty


def grad_cam_map(features, gradients):
    """Grad-CAM ``relu(sum_c mean_hw(d score / d A_c) * A_c)``, differentiable in both arguments.

    Args:
        features: feature map ``A`` (B, h, w, C).
        gradients: ``d score / d A`` (B, h, w, C).

    Returns:
        float32 (B, h, w, 1).

    Example:

    >>> import numpy as np
    >>> a = np.ones((1, 2, 2, 3), "float32")
    >>> g = np.full((1, 2, 2, 3), 0.5, "float32")
    >>> float(grad_cam_map(a, g)[0, 0, 0, 0])   # 3 channels x 0.5 x 1
    1.5

    Reference:
        Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks
        via Gradient-based Localization", ICCV 2017.
    """
    owner = "grad_cam_map"
    _explanation.check_rank4("features", features, owner)
    _explanation.check_rank4("gradients", gradients, owner)
    features = ops.cast(features, "float32")
    alpha = ops.mean(ops.cast(gradients, "float32"), axis=(1, 2), keepdims=True)
    return ops.relu(ops.sum(alpha * features, axis=-1, keepdims=True))


def grad_cam_penalty(features, gradients, mask, mask_is: str = "relevant", normalize: str = "rrr",
                     weight: float = 1.0):
    """Per-sample RRR penalty on the Grad-CAM map: ``weight * sum(((1 - mask) * grad_cam) ** 2)``.

    The mask is area-resized to the map's (h, w); ``mask_is`` and
    ``normalize`` as in ``input_gradient_penalty`` (``"rrr"`` sums over the
    h * w cells, ``"mean"`` averages).

    Returns:
        float32 (B,).

    Example:

    >>> import numpy as np
    >>> a, g = np.ones((1, 2, 2, 1), "float32"), np.ones((1, 2, 2, 1), "float32")
    >>> m = np.zeros((1, 8, 8), "float32"); m[:, :4, :4] = 1   # object in the top-left cell
    >>> float(grad_cam_penalty(a, g, m)[0])
    3.0

    Reference:
        RRR-G in Friedrich et al., "A typology for exploring the mitigation of
        shortcut behaviour", Nature Machine Intelligence 2023; Ross et al. 2017.
    """
    return input_gradient_penalty(grad_cam_map(features, gradients), mask, mask_is=mask_is,
                                  normalize=normalize, weight=weight)
