"""CAM suppression: penalise class evidence outside the object mask."""

from __future__ import annotations

import numbers

import keras
import numpy as np
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.losses import _spatial
from keras_priors.validation import check_non_negative, check_one_of

_OWNER = "CAMSuppression"
_NORMALIZE = ("share", "outside_area", "area", "none")
_EVIDENCE = ("positive", "relative")
#: Below this much evidence in a whole CAM, the "share" penalty treats the CAM as empty.
_EMPTY = 1e-7


def _check_classes(classes, owner=_OWNER):
    if isinstance(classes, str):
        check_one_of("classes", classes, ("true",), owner=owner)
        return "true"
    if isinstance(classes, numbers.Integral) and not isinstance(classes, bool):
        classes = [classes]
    if not isinstance(classes, (list, tuple)) or not classes or any(
        isinstance(c, bool) or not isinstance(c, numbers.Integral) or c < 0 for c in classes
    ):
        raise ValueError(
            f"{owner}: Expected `classes` to be 'true', a class index >= 0 or a non-empty list "
            f"of them. Received: classes={classes!r}"
        )
    return [int(c) for c in classes]


def _check_power(power, owner=_OWNER):
    if isinstance(power, bool) or not isinstance(power, numbers.Real) or power < 1:
        raise ValueError(f"{owner}: Expected `power` >= 1 (1 = L1, 2 = squared). Received: power={power!r}")
    return float(power) if power != int(power) else int(power)


def pack_mask_and_label(mask, label):
    """Pack an object mask and the class label into one ``y_true`` tensor.

    A Keras loss or metric only sees ``(y_true, y_pred)``; to give
    ``CAMSuppression(classes="true")`` and ``CAMEnergyInMask`` the label too, it
    rides along as a second channel holding the label broadcast as a float.
    Works on one example (``mask`` (H, W, 1), scalar ``label``, e.g. inside
    ``tf.data.Dataset.map``) or a batch (``mask`` (B, H, W, 1), ``label`` (B,)).
    TensorFlow tensors are packed with TensorFlow ops (so it runs inside a
    ``tf.data`` pipeline on any Keras backend), everything else with ``keras.ops``.

    Args:
        mask: object mask (..., H, W, 1) with values in [0, 1].
        label: integer class label(s) of shape (...).

    Returns:
        float32 tensor (..., H, W, 2) = [mask, label].

    Example:
    >>> import numpy as np
    >>> packed = pack_mask_and_label(np.ones((2, 8, 8, 1)), np.array([0, 1]))
    >>> tuple(packed.shape)
    (2, 8, 8, 2)
    """
    if _spatial.is_tf_tensor(mask) or _spatial.is_tf_tensor(label):
        import tensorflow as tf

        mask = tf.cast(mask, tf.float32)
        label = tf.cast(label, tf.float32)
        label = tf.broadcast_to(label[..., None, None, None], tf.shape(mask))
        return tf.concat([mask, label], axis=-1)
    mask = ops.cast(mask, "float32")
    if mask.shape[-1] != 1:
        raise ValueError("pack_mask_and_label: Expected `mask` of shape (..., H, W, 1). "
                         f"Received: mask.shape={tuple(mask.shape)}")
    label = ops.cast(label, "float32")
    label = ops.broadcast_to(label[..., None, None, None], ops.shape(mask))
    return ops.concatenate([mask, label], axis=-1)


def _selection(classes, labels, num_classes, owner):
    """(B or 1, K') float32 weights of the classes to suppress."""
    if classes == "true":
        return ops.one_hot(labels, num_classes, dtype="float32")
    if max(classes) >= num_classes:
        raise ValueError(
            f"{owner}: Expected every index in `classes` < {num_classes} (the CAM's classes; "
            f"a single-logit CAM has classes 0 and 1). Received: classes={classes}"
        )
    sel = np.zeros((1, num_classes), "float32")
    sel[0, classes] = 1.0
    return ops.convert_to_tensor(sel)


def _suppression(cam, cells, selection, normalize, power, evidence_mode="positive"):
    evidence = _spatial.class_evidence(cam, relative=evidence_mode == "relative")  # (B, h, w, K')
    if power == 2:
        evidence = ops.square(evidence)
    elif power != 1:
        evidence = ops.power(evidence, power)
    per_cell = ops.sum(evidence * selection[:, None, None, :], axis=-1)  # (B, h, w)
    outside = 1.0 - cells[..., 0]
    total = ops.sum(per_cell * outside, axis=(1, 2))
    if normalize == "share":
        # 1 - inside / all evidence, and 1 where there is no evidence at all (Rao et al.'s energy loss):
        # wiping the CAM is the worst answer, not the best. No object or no background: nothing to
        # compare, so 0.
        inside = ops.sum(per_cell * cells[..., 0], axis=(1, 2))
        everywhere = inside + total
        share = ops.where(everywhere > _EMPTY, total / ops.maximum(everywhere, _EMPTY), 1.0 - inside)
        has_both = ops.logical_and(ops.sum(cells[..., 0], axis=(1, 2)) > 0, ops.sum(outside, axis=(1, 2)) > 0)
        return ops.where(has_both, share, 0.0)
    if normalize == "none":
        return total
    if normalize == "area":
        return total / float(cam.shape[1] * cam.shape[2])
    area = ops.sum(outside, axis=(1, 2))
    return ops.where(area > 0, total / ops.maximum(area, 1e-12), 0.0)


def cam_suppression(
    cam,
    mask,
    classes: int | list[int] | str = 0,
    labels=None,
    normalize: str = "share",
    power: float = 1,
    weight: float = 1.0,
    evidence: str = "relative",
):
    """Per-sample CAM suppression penalty (function form of ``CAMSuppression``).

    Args:
        cam: class activation map (B, h, w, K); any float dtype, computed in float32.
        mask: object mask at image resolution (B, H, W) or (B, H, W, 1), 1 inside
            the object, with H >= h and W >= w; or packed [mask, label] (B, H, W, 2).
        classes: see ``CAMSuppression``.
        labels: int (B,) true classes, needed for ``classes="true"`` unless
            ``mask`` is packed.
        normalize: ``"share"``, ``"outside_area"``, ``"area"`` or ``"none"``.
        power: 1 (L1) or 2 (squared) or any value >= 1.
        weight: non-negative multiplier.
        evidence: ``"positive"`` or ``"relative"`` (see ``CAMSuppression``).

    Returns:
        float32 tensor (B,) of per-sample penalties (take the mean for a scalar).
    """
    owner = "cam_suppression"
    classes = _check_classes(classes, owner)
    check_one_of("normalize", normalize, _NORMALIZE, owner=owner)
    power = _check_power(power, owner)
    weight = check_non_negative("weight", weight, owner=owner)
    check_one_of("evidence", evidence, _EVIDENCE, owner=owner)
    cam = ops.cast(cam, "float32")
    cells, packed = _spatial.standardize_mask(mask, cam, owner, arg="mask")
    if classes == "true":
        if labels is None:
            labels = packed
        if labels is None:
            raise ValueError(
                f"{owner}: Expected `labels` (B,) or a packed (B, H, W, 2) `mask` when "
                f"classes='true'. Received: labels=None, mask.shape={tuple(mask.shape)}"
            )
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    num_classes = 2 if cam.shape[-1] == 1 else cam.shape[-1]
    selection = _selection(classes, labels, num_classes, owner)
    return weight * _suppression(cam, cells, selection, normalize, power, evidence)


@keras_priors_export("keras_priors.losses.CAMSuppression")
class CAMSuppression(keras.losses.Loss):
    """Penalise class evidence of a CAM outside the object mask.

    "The kakapo can be anywhere but the sky": the network may put evidence for
    the chosen classes only on the object. ``y_pred`` is a class activation map
    (B, h, w, K) with ``logits = spatial mean of cam + bias`` (see
    ``keras_priors.layers.CAMHead``); ``y_true`` is the object mask at image
    resolution. The mask is area-resized to the CAM's (h, w): each CAM cell gets
    the exact fraction of its pixels that lie on the object (average pooling
    when H is a multiple of h), and ``outside = 1 - fraction``. The penalty is

    ``sum over cells and chosen classes of outside * relu(evidence) ** power``

    then normalised (``normalize``) and multiplied by ``weight``. The default,
    ``normalize="share"``, divides by the same sum taken over *all* cells: the
    penalty is the share of the chosen classes' evidence that lies outside the
    object, and 1 where the CAM holds no such evidence at all (the energy loss
    of Rao et al. 2023 on the CAM). It cannot be lowered by wiping the CAM
    (the failure of an unnormalised penalty: driving every cell negative sets
    it to 0 while the network keeps reading the background through the
    negative values), only by moving evidence onto the object.

    Single-logit binary CAM (K = 1): positive cam is evidence for class 1,
    negative cam evidence for class 0, so class 0 penalises ``relu(-cam)`` (the
    source formula, the default ``classes=0``) and class 1 ``relu(cam)``.
    Multi-class CAM (K >= 2): class ``k`` penalises ``relu(cam[..., k])``.

    Cells inside the mask and classes not chosen get exactly zero gradient; a
    full mask gives exactly 0 and an empty mask never gives NaN.

    Args:
        classes: class index or list of indices whose evidence is suppressed
            outside the mask, or ``"true"``: the true class of each sample. Since
            a Keras loss only gets ``(y_true, y_pred)``, ``"true"`` needs
            ``y_true`` packed as (B, H, W, 2) = [mask, label] (see
            ``pack_mask_and_label``). Indices must be < K (< 2 for K = 1); this
            is checked when the CAM is seen. Out-of-range true labels give no
            penalty.
        normalize: ``"share"`` (default: the share of the evidence that lies
            outside the object, 1 for an empty CAM; 0 for an empty or full
            mask), ``"outside_area"`` (mean over the outside area),
            ``"area"`` (mean over all h*w cells) or ``"none"`` (sum). The last
            three can be minimised by wiping the CAM.
        power: exponent on the evidence, 1 (L1, default) or 2 (squared); >= 1.
        weight: non-negative multiplier of the loss.
        evidence: ``"relative"`` (default; K >= 2): ``relu(cam_k - mean_j cam_j)``,
            the part that moves the softmax towards k. With positive evidence a
            softmax network can still use the background through *negative*
            CAM values of the other classes (measured on kakapo: suppressing
            both classes' positive evidence drove the CAM negative everywhere
            and left the shortcut in place); relative evidence closes that
            door. ``"positive"``: class k's evidence is ``relu(cam_k)``. For
            a single-logit CAM both modes are the same.
        name: loss name.
        **kwargs: ``reduction`` (over the batch, default ``"sum_over_batch_size"``) and ``dtype``
            (computation dtype; float32 by default, also for float16 CAMs) of ``keras.losses.Loss``.

    Example:
    >>> import keras, numpy as np
    >>> mask = np.zeros((2, 16, 16, 1), "float32"); mask[:, 4:12, 4:12] = 1  # 4 of 16 cells
    >>> cam = np.full((2, 4, 4, 1), -1.0, "float32")   # class-0 evidence in every cell
    >>> float(CAMSuppression(classes=0)(mask, cam))    # 12 of 16 cells are outside
    0.75
    >>> cam[:, [0, 3]] = 0.0; cam[:, :, [0, 3]] = 0.0  # evidence on the object only
    >>> float(CAMSuppression(classes=0)(mask, cam))
    0.0

    On a model whose ``cam`` output comes from a ``CAMHead``:

    >>> from keras_priors.layers import CAMHead
    >>> inp = keras.Input((16, 16, 3))
    >>> feat = keras.layers.Conv2D(8, 3, strides=4, padding="same")(inp)   # 4 x 4 cells
    >>> model = keras.Model(inp, CAMHead(num_classes=1)(feat))             # {"logits", "cam"}
    >>> model.compile(optimizer="adam",
    ...               loss={"logits": keras.losses.BinaryCrossentropy(from_logits=True),
    ...                     "cam": CAMSuppression()})
    >>> images = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
    >>> history = model.fit(images, {"logits": np.array([[0.0], [1.0]]), "cam": mask}, verbose=0)
    >>> sorted(history.history)
    ['cam_loss', 'logits_loss', 'loss']

    Reference:
        The "kakapo anywhere but the sky" CAM constraint of the keras-priors
        source material; CAMs after Zhou et al. 2016, "Learning Deep Features
        for Discriminative Localization".
    """

    def __init__(
        self,
        classes: int | list[int] | str = 0,
        normalize: str = "share",
        power: float = 1,
        weight: float = 1.0,
        evidence: str = "relative",
        name: str = "cam_suppression",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.evidence = check_one_of("evidence", evidence, _EVIDENCE, owner=_OWNER)
        self.classes = _check_classes(classes)
        self.normalize = check_one_of("normalize", normalize, _NORMALIZE, owner=_OWNER)
        self.power = _check_power(power)
        self.weight = check_non_negative("weight", weight, owner=_OWNER)

    def call(self, y_true, y_pred):
        cam = ops.cast(y_pred, "float32")
        cells, labels = _spatial.standardize_mask(y_true, cam, _OWNER)
        if self.classes == "true" and labels is None:
            raise ValueError(
                f"{_OWNER}: Expected `y_true` packed [mask, label] of shape (B, H, W, 2) when "
                f"classes='true' (see pack_mask_and_label). Received: y_true.shape={tuple(y_true.shape)}"
            )
        num_classes = 2 if cam.shape[-1] == 1 else cam.shape[-1]
        selection = _selection(self.classes, labels, num_classes, _OWNER)
        return self.weight * _suppression(cam, cells, selection, self.normalize, self.power, self.evidence)

    def get_config(self):
        return {
            **super().get_config(),
            "classes": self.classes,
            "normalize": self.normalize,
            "power": self.power,
            "weight": self.weight,
            "evidence": self.evidence,
        }
