"""Share of a class's positive CAM energy that lies inside the object mask."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.losses import _spatial
from keras_priors.validation import check_class_id

_OWNER = "CAMEnergyInMask"


def _energies(cam, cells, class_id, labels, owner):
    """Per-sample (inside, total) positive energy of the selected class, float32 (B,)."""
    evidence = _spatial.class_evidence(cam)  # (B, h, w, K')
    num_classes = evidence.shape[-1]
    if class_id is not None:
        if class_id >= num_classes:
            raise ValueError(
                f"{owner}: Expected `class_id` < {num_classes} (the CAM's classes; a single-logit "
                f"CAM has classes 0 and 1). Received: class_id={class_id}"
            )
        energy = evidence[..., class_id]
    else:
        if labels is None:
            labels = _spatial.predicted_class(cam)
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        select = ops.one_hot(labels, num_classes, dtype="float32")
        energy = ops.sum(evidence * select[:, None, None, :], axis=-1)
    return _spatial.energy_inside_and_total(energy, cells[..., 0])


def cam_energy_in_mask(cam, mask, labels=None, class_id: int | None = None):
    """Per-sample share of the class's positive CAM energy inside the mask.

    The same quantity as ``keras_priors.explain.energy_in_mask`` on the
    class's positive evidence ``relu(cam_k)`` (class 0 of a single-logit CAM:
    ``relu(-cam)``), with the mask area-resized to the CAM: for a mask at
    image resolution, ``energy_in_mask`` of that map upsampled to the image
    by repeating each cell (when the image size is a multiple of the CAM's).

    Args:
        cam: class activation map (B, h, w, K).
        mask: object mask (B, H, W), (B, H, W, 1) or packed [mask, label]
            (B, H, W, 2), H >= h, W >= w; area-resized to the CAM.
        labels: int (B,) classes to measure; default: the packed label if
            any, else the predicted class (argmax of the CAM's spatial mean; for
            a single-logit CAM, class 1 if the mean is > 0).
        class_id: a fixed class instead of ``labels``.

    Returns:
        float32 (B,) in [0, 1]; 0 for a sample with no energy for its class.
    """
    owner = "cam_energy_in_mask"
    class_id = check_class_id(class_id, owner)
    cam = ops.cast(cam, "float32")
    cells, packed = _spatial.standardize_mask(mask, cam, owner, arg="mask")
    inside, total = _energies(cam, cells, class_id, packed if labels is None else labels, owner)
    return _spatial.energy_share(inside, total)


@keras_priors_export("keras_priors.metrics.CAMEnergyInMask")
class CAMEnergyInMask(keras.metrics.Metric):
    """Share of a class's positive CAM energy inside the object mask.

    Accumulated over batches as ``sum(energy inside) / sum(energy)``, so the
    result is energy-weighted (a sample with a strong CAM counts more). The
    mask is area-resized to the CAM's (h, w) (object fraction per cell) and
    the energy inside is ``sum(relu(cam_class) * fraction)``.

    The class measured per sample: ``class_id`` if given; else the label packed
    in ``y_true`` (B, H, W, 2) = [mask, label] (see
    ``keras_priors.losses.pack_mask_and_label``); else the predicted class
    (argmax of the CAM's spatial mean). For a single-logit CAM (K = 1) class 1
    uses the positive part ``relu(cam)`` and class 0 the negative part
    ``relu(-cam)``; the predicted class is 1 when the CAM's mean is > 0.

    Args:
        class_id: fixed class to measure, or ``None`` (true/predicted class).
        name: metric name (its key in ``fit`` logs).
        dtype: metric dtype (state is float32).

    Example:
    >>> import keras, numpy as np
    >>> mask = np.zeros((1, 8, 8, 1), "float32"); mask[:, :4, :4] = 1  # object: top-left cell
    >>> cam = np.zeros((1, 2, 2, 2), "float32")                         # (B, h, w, K)
    >>> cam[0, 0, 0, 1] = 3.0; cam[0, 1, 1, 1] = 1.0                    # class 1 is predicted
    >>> m = CAMEnergyInMask()
    >>> m.update_state(mask, cam)
    >>> float(m.result())   # 3 of the energy 4 on the object
    0.75

    In ``compile``, on the ``cam`` output of a ``CAMHead`` (its target is the mask):

    >>> from keras_priors.layers import CAMHead
    >>> inp = keras.Input((8, 8, 3))
    >>> feat = keras.layers.Conv2D(4, 3, strides=4, padding="same")(inp)
    >>> model = keras.Model(inp, CAMHead(num_classes=2)(feat))
    >>> model.compile(loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
    ...               metrics={"cam": [CAMEnergyInMask()]})
    >>> images = np.zeros((2, 8, 8, 3), "float32")
    >>> logs = model.evaluate(images, {"logits": np.array([0, 1]), "cam": np.concatenate([mask, mask])},
    ...                       verbose=0, return_dict=True)
    >>> sorted(logs)
    ['cam_cam_energy_in_mask', 'loss']
    """

    def __init__(self, class_id: int | None = None, name: str = "cam_energy_in_mask", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.class_id = check_class_id(class_id, _OWNER)
        self.inside = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="inside")
        self.total = self.add_variable(shape=(), initializer="zeros", dtype="float32", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        cam = ops.cast(y_pred, "float32")
        cells, labels = _spatial.standardize_mask(y_true, cam, _OWNER)
        inside, total = _energies(cam, cells, self.class_id, labels, _OWNER)
        if sample_weight is not None:
            sw = ops.reshape(ops.cast(sample_weight, "float32"), (-1,))
            inside, total = inside * sw, total * sw
        self.inside.assign_add(ops.sum(inside))
        self.total.assign_add(ops.sum(total))

    def result(self):
        return _spatial.energy_share(self.inside, self.total)

    def get_config(self):
        return {**super().get_config(), "class_id": self.class_id}
