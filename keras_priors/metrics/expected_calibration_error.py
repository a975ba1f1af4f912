"""Expected calibration error with equal-width confidence bins."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.validation import check_positive_int

_OWNER = "ExpectedCalibrationError"


def confidence_and_prediction(y_pred, from_logits: bool = True):
    """(confidence, predicted class) per sample: max probability and its class.

    ``y_pred`` (B, K >= 2): softmax (or given probabilities); (B, 1) or (B,): a
    single sigmoid probability ``p1``, predicted class ``p1 > 0.5`` and
    confidence ``max(p1, 1 - p1)``.
    """
    y_pred = ops.cast(y_pred, "float32")
    if len(y_pred.shape) == 1:
        y_pred = y_pred[:, None]
    if y_pred.shape[-1] == 1:
        p1 = ops.sigmoid(y_pred[:, 0]) if from_logits else y_pred[:, 0]
        pred = ops.cast(p1 > 0.5, "int32")
        return ops.maximum(p1, 1.0 - p1), pred
    prob = ops.softmax(y_pred, axis=-1) if from_logits else y_pred
    return ops.max(prob, axis=-1), ops.cast(ops.argmax(prob, axis=-1), "int32")


@keras_priors_export("keras_priors.metrics.ExpectedCalibrationError")
class ExpectedCalibrationError(keras.metrics.Metric):
    """Expected calibration error (ECE) of the top-class confidence.

    ``ECE = sum over bins of (n_b / N) * |accuracy_b - confidence_b|`` with
    ``num_bins`` equal-width bins on the max probability; bin ``b`` holds
    confidences in ``[b / num_bins, (b + 1) / num_bins)``, the last bin also
    holds 1.0. State (float32, accumulated over batches): per-bin counts, sums
    of confidences and sums of correct predictions.

    ``y_true``: sparse int labels (B,) or (B, 1). ``y_pred``: logits (or
    probabilities with ``from_logits=False``) (B, K), or a single logit (B, 1)
    / (B,) read through a sigmoid.

    Args:
        num_bins: number of bins (>= 1), default 15.
        from_logits: whether ``y_pred`` are logits (default).
        name: metric name (its key in ``fit`` logs).
        dtype: metric dtype (state is float32).

    Example:
    >>> import numpy as np
    >>> m = ExpectedCalibrationError(num_bins=10)
    >>> m.update_state(np.array([0, 1]), np.array([[2.0, 0.0], [0.0, 1.0]]))
    >>> round(float(m.result()), 4)   # both right, confidences 0.881 and 0.731: mean(1 - p)
    0.1941

    Reference:
        Guo et al. 2017, "On Calibration of Modern Neural Networks";
        Naeini et al. 2015 (ECE).
    """

    def __init__(self, num_bins: int = 15, from_logits: bool = True, name: str = "ece", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.num_bins = check_positive_int("num_bins", num_bins, owner=_OWNER)
        self.from_logits = bool(from_logits)
        shape = (self.num_bins,)
        self.bin_counts = self.add_variable(shape=shape, initializer="zeros", dtype="float32", name="bin_counts")
        self.confidence_sums = self.add_variable(shape=shape, initializer="zeros", dtype="float32",
                                                 name="confidence_sums")
        self.correct_sums = self.add_variable(shape=shape, initializer="zeros", dtype="float32", name="correct_sums")

    def update_state(self, y_true, y_pred, sample_weight=None):
        labels = ops.reshape(ops.cast(y_true, "int32"), (-1,))
        conf, pred = confidence_and_prediction(y_pred, self.from_logits)
        if labels.shape[0] is not None and conf.shape[0] is not None and labels.shape[0] != conf.shape[0]:
            raise ValueError(
                f"{_OWNER}: Expected sparse int labels `y_true` of shape (B,) or (B, 1) matching "
                f"y_pred's batch. Received: y_true.shape={tuple(y_true.shape)}, y_pred.shape={tuple(y_pred.shape)}"
            )
        correct = ops.cast(ops.equal(pred, labels), "float32")
        bins = ops.cast(ops.floor(conf * self.num_bins), "int32")
        bins = ops.clip(bins, 0, self.num_bins - 1)
        onehot = ops.one_hot(bins, self.num_bins, dtype="float32")
        if sample_weight is not None:
            onehot = onehot * ops.reshape(ops.cast(sample_weight, "float32"), (-1, 1))
        self.bin_counts.assign_add(ops.sum(onehot, axis=0))
        self.confidence_sums.assign_add(ops.sum(onehot * conf[:, None], axis=0))
        self.correct_sums.assign_add(ops.sum(onehot * correct[:, None], axis=0))

    def result(self):
        n = ops.sum(self.bin_counts)
        gap = ops.sum(ops.abs(self.confidence_sums - self.correct_sums))
        return ops.where(n > 0, gap / ops.maximum(n, 1e-12), 0.0)

    def get_config(self):
        return {**super().get_config(), "num_bins": self.num_bins, "from_logits": self.from_logits}
