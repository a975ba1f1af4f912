"""Worst-group accuracy: the accuracy of the group the model serves worst."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.losses import _spatial
from keras_priors.validation import check_positive_int

_OWNER = "WorstGroupAccuracy"


def pack_label_and_group(label, group):
    """Stack labels and group ids into the (..., 2) ``y_true`` of ``WorstGroupAccuracy``.

    Works on one example (scalars, e.g. in ``tf.data.Dataset.map``) or a batch
    ((B,) each). TensorFlow tensors are packed with TensorFlow ops (usable in a
    ``tf.data`` pipeline on any backend), everything else with ``keras.ops``.

    Args:
        label: int class label(s).
        group: int group id(s), e.g. ``label * num_backgrounds + background``.

    Returns:
        int32 tensor (..., 2) = [label, group].

    Example:
    >>> import numpy as np
    >>> np.asarray(pack_label_and_group(np.array([0, 1]), np.array([3, 1]))).tolist()
    [[0, 3], [1, 1]]
    """
    if _spatial.is_tf_tensor(label) or _spatial.is_tf_tensor(group):
        import tensorflow as tf

        return tf.stack([tf.cast(label, tf.int32), tf.cast(group, tf.int32)], axis=-1)
    return ops.stack([ops.cast(label, "int32"), ops.cast(group, "int32")], axis=-1)


def predicted_labels(y_pred):
    """Integer class predictions from logits: argmax for (B, K >= 2), ``logit > 0`` for (B, 1) or (B,).

    The one place that turns logits into predicted classes (metrics,
    ``zoo.evaluate_classifier``, ``kp.callbacks.class_maps``).

    Args:
        y_pred: logits (B, K), or a single logit (B, 1) / (B,).

    Returns:
        int32 tensor (B,).

    Example:
    >>> import numpy as np
    >>> np.asarray(predicted_labels(np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.0]]))).tolist()
    [1, 0]
    >>> np.asarray(predicted_labels(np.array([[0.5], [-0.5]]))).tolist()   # single logit: class 1 when > 0
    [1, 0]
    """
    y_pred = ops.cast(y_pred, "float32")
    if len(y_pred.shape) == 1:
        return ops.cast(y_pred > 0, "int32")
    if y_pred.shape[-1] == 1:
        return ops.cast(y_pred[:, 0] > 0, "int32")
    return ops.cast(ops.argmax(y_pred, axis=-1), "int32")


@keras_priors_export("keras_priors.metrics.WorstGroupAccuracy")
class WorstGroupAccuracy(keras.metrics.Metric):
    """Minimum over groups of the per-group accuracy, accumulated over batches.

    ``y_true`` is (B, 2) = [label, group] (see ``pack_label_and_group``);
    ``y_pred`` are logits (B, K) (argmax) or a single logit (B, 1) / (B,)
    (class 1 when > 0). State: per-group correct and count. The result is the
    lowest accuracy among groups seen so far (0 before any update). Group ids
    outside ``[0, num_groups)`` are ignored.

    Because a Keras metric sees the same ``y_true`` as the output's loss,
    attach it to a second name for the logits whose target is the packed
    pair, e.g. ``keras.layers.Identity(name="logits_groups")(logits)`` with
    ``metrics={"logits_groups": [WorstGroupAccuracy(4)]}`` and a zero loss
    weight, or call it in an evaluation loop.

    Args:
        num_groups: number of groups (>= 1).
        name: metric name (its key in ``fit`` logs).
        dtype: metric dtype (state is float32).

    Example:
    >>> import numpy as np
    >>> labels = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    >>> backgrounds = np.array([0, 0, 1, 1, 0, 0, 1, 1])
    >>> groups = labels * 2 + backgrounds                  # 2 classes x 2 backgrounds
    >>> logits = np.eye(2)[[0, 0, 0, 1, 1, 1, 1, 1]]     # one class-0 image on background 1 is wrong
    >>> m = WorstGroupAccuracy(num_groups=4)
    >>> m.update_state(pack_label_and_group(labels, groups), logits)
    >>> float(m.result()), np.asarray(m.group_accuracies()).tolist()
    (0.5, [1.0, 0.5, 1.0, 1.0])

    Reference:
        Sagawa et al. 2020, "Distributionally Robust Neural Networks for Group
        Shifts" (worst-group accuracy on Waterbirds).
    """

    def __init__(self, num_groups: int, name: str = "worst_group_accuracy", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_groups = check_positive_int("num_groups", num_groups, owner=_OWNER)
        self.correct = self.add_variable(shape=(self.num_groups,), initializer="zeros", dtype="float32", name="correct")
        self.count = self.add_variable(shape=(self.num_groups,), initializer="zeros", dtype="float32", name="count")

    def update_state(self, y_true, y_pred, sample_weight=None):
        if len(y_true.shape) != 2 or y_true.shape[-1] != 2:
            raise ValueError(
                f"{_OWNER}: Expected `y_true` of shape (B, 2) = [label, group] (see "
                f"pack_label_and_group). Received: y_true.shape={tuple(y_true.shape)}"
            )
        y_true = ops.cast(ops.round(ops.cast(y_true, "float32")), "int32")
        label, group = y_true[:, 0], y_true[:, 1]
        correct = ops.cast(ops.equal(predicted_labels(y_pred), label), "float32")
        onehot = ops.one_hot(group, self.num_groups, dtype="float32")
        if sample_weight is not None:
            onehot = onehot * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        self.correct.assign_add(ops.sum(onehot * correct[:, None], axis=0))
        self.count.assign_add(ops.sum(onehot, axis=0))

    def group_accuracies(self):
        """Per-group accuracy, float32 (num_groups,); NaN for groups not seen yet."""
        seen = self.count > 0
        acc = self.correct / ops.maximum(self.count, 1e-12)
        return ops.where(seen, acc, float("nan"))

    def result(self):
        seen = self.count > 0
        acc = self.correct / ops.maximum(self.count, 1e-12)
        worst = ops.min(ops.where(seen, acc, 2.0))
        return ops.where(ops.any(seen), worst, 0.0)

    def get_config(self):
        return {**super().get_config(), "num_groups": self.num_groups}
