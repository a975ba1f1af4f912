"""Private helpers of the explanation losses: class scores, mask checks (keras.ops only)."""

from __future__ import annotations

from keras import ops

from keras_priors.losses import _spatial
from keras_priors.validation import check_one_of

CLASSES = ("all", "true", "predicted")
MASK_IS = ("relevant", "irrelevant")


def log_probabilities(logits):
    """(B, K') float32 log-probabilities; a single logit (K = 1) gives K' = 2 (classes 0 and 1)."""
    logits = ops.cast(logits, "float32")
    if logits.shape[-1] == 1:
        return ops.concatenate([ops.log_sigmoid(-logits), ops.log_sigmoid(logits)], axis=-1)
    return ops.log_softmax(logits, axis=-1)


def class_logits(logits):
    """(B, K') float32 class scores for Grad-CAM: the logits; a single logit z gives [-z, z]."""
    logits = ops.cast(logits, "float32")
    if logits.shape[-1] == 1:
        return ops.concatenate([-logits, logits], axis=-1)
    return logits


def class_selection(scores, classes: str, labels=None):
    """(B, K') float32 weights of the classes chosen by ``classes`` ("all", "true" or "predicted")."""
    k = scores.shape[-1]
    if classes == "all":
        return ops.ones_like(scores)
    if classes == "true":
        if labels is None:
            raise ValueError("Expected `labels` (B,) with classes='true'. Received: labels=None")
        return ops.one_hot(ops.reshape(ops.cast(labels, "int32"), (-1,)), k, dtype="float32")
    return ops.one_hot(ops.argmax(ops.stop_gradient(scores), axis=-1), k, dtype="float32")


def class_score(logits, classes: str, labels=None, kind: str = "log_prob"):
    """Scalar score summed over the batch and the chosen classes (its gradient is the explanation).

    ``kind="log_prob"``: ``log p_c`` (RRR, Ross et al. 2017); ``"logit"``: the
    class logit (Grad-CAM's ``y^c``, Selvaraju et al. 2017).
    """
    scores = log_probabilities(logits) if kind == "log_prob" else class_logits(logits)
    return ops.sum(scores * class_selection(scores, classes, labels))


def mask_cells(mask, like, owner: str, arg: str = "mask"):
    """The mask's fraction in each cell of ``like`` (B, h, w, C): (B, h, w, 1) float32 in [0, 1].

    ``mask`` is (B, H, W) or (B, H, W, 1) with H >= h and W >= w, area-resized
    to (h, w) (exact cell fractions; identity when the sizes match).
    """
    shape = tuple(mask.shape)
    h, w = like.shape[1], like.shape[2]
    ok = len(shape) == 3 or (len(shape) == 4 and shape[-1] == 1)
    ok = ok and shape[1] is not None and shape[2] is not None and shape[1] >= h and shape[2] >= w
    if not ok:
        raise ValueError(
            f"{owner}: Expected `{arg}` of shape (B, H, W) or (B, H, W, 1) with H >= {h} and W >= {w} "
            f"(the attribution's size). Received: {arg}.shape={shape}"
        )
    mask = ops.cast(mask, "float32")
    if len(shape) == 3:
        mask = ops.expand_dims(mask, -1)
    return ops.clip(_spatial.area_resize(mask, (h, w)), 0.0, 1.0)


def irrelevant_cells(mask, like, mask_is: str, owner: str, arg: str = "mask"):
    """The irrelevant fraction of each cell of ``like``: ``1 - mask`` for ``mask_is="relevant"``, else ``mask``."""
    check_one_of("mask_is", mask_is, MASK_IS, owner=owner)
    cells = mask_cells(mask, like, owner, arg)
    return 1.0 - cells if mask_is == "relevant" else cells


def check_rank4(name: str, x, owner: str):
    if len(x.shape) != 4 or x.shape[1] is None or x.shape[2] is None:
        raise ValueError(
            f"{owner}: Expected `{name}` of rank 4 (B, h, w, C) with known h and w. "
            f"Received: {name}.shape={tuple(x.shape)}"
        )
