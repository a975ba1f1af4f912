"""Small helpers shared by the priors."""

from __future__ import annotations

from keras import ops

from keras_priors.losses._spatial import area_resize


def resize_mask_to(mask, like):
    """Resize a (B, H, W[, 1]) mask to ``like``'s spatial size: each cell gets its exact object fraction.

    The same exact area resize the CAM losses use (``keras_priors.losses``).
    """
    mask = ops.cast(mask, "float32")
    if len(mask.shape) == 3:
        mask = ops.expand_dims(mask, -1)
    return area_resize(mask, (like.shape[1], like.shape[2]))


def masked_mean(values, weights):
    """Mean of ``values`` over entries with weight > 0; 0 when there are none."""
    weights = ops.cast(weights, "float32")
    if not ops.is_tensor(values):  # numpy (torch cannot multiply an ndarray by a tensor)
        values = ops.cast(values, "float32")
    total = ops.sum(weights)
    return ops.where(total > 0, ops.sum(values * weights) / ops.maximum(total, 1e-12), 0.0)
