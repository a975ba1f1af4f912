"""Private helpers shared by the CAM/mask losses and metrics (keras.ops only).

``area_resize`` gives, for every output cell, the exact fraction of the input
pixels it covers (box / "area" interpolation). Weights are kept as integers
(overlaps measured in units of 1/out_size pixel) and divided once at the end,
so a full mask resizes to exactly 1.0 and an empty one to exactly 0.0 at any
size ratio.
"""

from __future__ import annotations

import numpy as np
from keras import ops


def area_weights(in_size: int, out_size: int) -> np.ndarray:
    """Integer overlap matrix of shape (out_size, in_size); each row sums to ``in_size``.

    Input pixel ``j`` covers ``[j * out_size, (j + 1) * out_size)`` and output cell
    ``i`` covers ``[i * in_size, (i + 1) * in_size)`` on a common integer grid.
    """
    i = np.arange(out_size)[:, None]
    j = np.arange(in_size)[None, :]
    lo = np.maximum(i * in_size, j * out_size)
    hi = np.minimum((i + 1) * in_size, (j + 1) * out_size)
    return np.maximum(hi - lo, 0).astype("float32")


def area_resize(x, size: tuple[int, int]):
    """Resize ``x`` (B, H, W, C) to (B, h, w, C) by exact area averaging (static H, W)."""
    in_h, in_w = int(x.shape[1]), int(x.shape[2])
    out_h, out_w = int(size[0]), int(size[1])
    if (in_h, in_w) == (out_h, out_w):
        return x
    wh = ops.convert_to_tensor(area_weights(in_h, out_h))
    ww = ops.convert_to_tensor(area_weights(in_w, out_w))
    y = ops.einsum("ih,bhwc->biwc", wh, x)
    y = ops.einsum("jw,biwc->bijc", ww, y)
    return y / float(in_h * in_w)


def is_tf_tensor(x) -> bool:
    """True for TensorFlow tensors (eager or symbolic), e.g. inside ``tf.data`` maps."""
    return type(x).__module__.startswith("tensorflow")


def packed_label(y_true):
    """The label channel of a packed (B, H, W, 2) [mask, label] tensor as int32 (B,)."""
    return ops.cast(ops.round(y_true[:, 0, 0, 1]), "int32")


def class_evidence(cam, relative: bool = False):
    """Per-class positive evidence (B, h, w, K'); a single-logit CAM gives K' = 2.

    With ``K == 1`` the CAM's negative part is evidence for class 0 and its
    positive part evidence for class 1, so channel 0 is ``relu(-cam)`` and
    channel 1 is ``relu(cam)``. With ``K >= 2`` it is ``relu(cam)``, or with
    ``relative=True`` ``relu(cam_k - mean_j cam_j)``: what moves the softmax
    towards class k (a shift shared by all classes changes no probability).
    """
    if cam.shape[-1] == 1:
        return ops.concatenate([ops.relu(-cam), ops.relu(cam)], axis=-1)
    if relative:
        return ops.relu(cam - ops.mean(cam, axis=-1, keepdims=True))
    return ops.relu(cam)


def predicted_class(cam):
    """Predicted class (B,) int32 from the spatial mean of a CAM (bias ignored)."""
    score = ops.mean(cam, axis=(1, 2))
    if cam.shape[-1] == 1:
        return ops.cast(score[:, 0] > 0, "int32")
    return ops.cast(ops.argmax(score, axis=-1), "int32")


def energy_inside_and_total(energy, weights):
    """Per-sample energy inside a mask and in all, float32 (B,): the one definition of "energy in mask".

    ``inside = sum(energy * weights)``, ``total = sum(energy)`` over the two
    spatial axes of (B, h, w) arrays: ``energy`` non-negative (a CAM's positive
    evidence for one class, or any non-negative map), ``weights`` the object's
    share of each cell (0/1 for a binary mask at the map's resolution, the
    area fraction for a mask area-resized to a coarser map). The share is
    :func:`energy_share`; ``keras_priors.explain.energy_in_mask`` and
    ``keras_priors.metrics.CAMEnergyInMask`` both use these two.
    """
    energy = ops.cast(energy, "float32")
    return ops.sum(energy * ops.cast(weights, "float32"), axis=(1, 2)), ops.sum(energy, axis=(1, 2))


def energy_share(inside, total):
    """``inside / total`` where the total is positive, else 0 (a map with no energy)."""
    return ops.where(total > 0, inside / ops.maximum(total, 1e-12), 0.0)


def standardize_mask(mask, cam, owner: str, arg: str = "y_true"):
    """Check a (B,H,W), (B,H,W,1) or packed (B,H,W,2) mask against a (B,h,w,K) CAM.

    Returns:
        ``(cells, label)``: the object fraction per CAM cell, float32 (B, h, w, 1),
        and the packed label (B,) int32, or ``None`` when the mask is not packed.
    """
    shape = tuple(mask.shape)
    h, w = cam.shape[1], cam.shape[2]
    if len(cam.shape) != 4 or h is None or w is None:
        raise ValueError(
            f"{owner}: Expected the CAM (y_pred) of rank 4 (B, h, w, K) with known h and w. "
            f"Received: shape={tuple(cam.shape)}"
        )
    ok = len(shape) in (3, 4) and (len(shape) == 3 or shape[-1] in (1, 2))
    if ok:
        ok = shape[1] is not None and shape[2] is not None and shape[1] >= h and shape[2] >= w
    if not ok:
        raise ValueError(
            f"{owner}: Expected `{arg}` (the object mask) of shape (B, H, W), (B, H, W, 1) or "
            f"packed [mask, label] (B, H, W, 2), with H >= {h} and W >= {w} (the CAM's h, w) "
            f"so it can be area-resized to the CAM. Received: {arg}.shape={shape}"
        )
    mask = ops.cast(mask, "float32")
    if len(shape) == 3:
        mask = ops.expand_dims(mask, -1)
    label = None
    if mask.shape[-1] == 2:
        label = packed_label(mask)
        mask = mask[..., :1]
    cells = ops.clip(area_resize(mask, (h, w)), 0.0, 1.0)
    return cells, label
