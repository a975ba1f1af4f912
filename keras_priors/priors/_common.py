"""Small helpers shared by the priors."""

from __future__ import annotations

from keras import ops


def resize_mask_to(mask, like):
    """Resize a (B, H, W, 1) mask to ``like``'s spatial size by area averaging (a cell's object fraction)."""
    mask = ops.cast(mask, "float32")
    if len(mask.shape) == 3:
        mask = ops.expand_dims(mask, -1)
    h, w = like.shape[1], like.shape[2]
    if mask.shape[1] == h and mask.shape[2] == w:
        return mask
    if mask.shape[1] % h == 0 and mask.shape[2] % w == 0:
        pool = (mask.shape[1] // h, mask.shape[2] // w)
        # Explicit strides: without them JAX's reduce_window rejects the call (Keras 3.15).
        return ops.average_pool(mask, pool, strides=pool, padding="valid")
    return ops.image.resize(mask, (h, w), interpolation="area")


def masked_mean(values, weights):
    """Mean of ``values`` over entries with weight > 0; 0 when there are none."""
    weights = ops.cast(weights, "float32")
    total = ops.sum(weights)
    return ops.where(total > 0, ops.sum(values * weights) / ops.maximum(total, 1e-12), 0.0)
