"""Feature contraction: an L2 penalty on a hidden feature."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.validation import check_non_negative, check_one_of

_OWNER = "FeatureContraction"
_REDUCTIONS = ("sum", "mean")


def feature_contraction(features, weight: float = 1.0, feature_reduction: str = "sum"):
    """Per-sample L2 penalty on ``features`` (function form of ``FeatureContraction``).

    Args:
        features: hidden feature (B, ...), any float dtype; computed in float32.
        weight: multiplier >= 0.
        feature_reduction: ``"sum"`` (sum of squares over the non-batch axes) or
            ``"mean"`` (mean of squares).

    Returns:
        float32 (B,).
    """
    owner = "feature_contraction"
    weight = check_non_negative("weight", weight, owner=owner)
    check_one_of("feature_reduction", feature_reduction, _REDUCTIONS, owner=owner)
    return weight * _contraction(features, feature_reduction)


def _contraction(features, feature_reduction):
    x = ops.square(ops.cast(features, "float32"))
    if len(x.shape) == 1:
        return x
    axes = tuple(range(1, len(x.shape)))
    return ops.sum(x, axis=axes) if feature_reduction == "sum" else ops.mean(x, axis=axes)


@keras_priors_export("keras_priors.losses.FeatureContraction")
class FeatureContraction(keras.losses.Loss):
    """L2 penalty on a hidden feature ("feature contraction").

    ``loss = weight * mean over the batch of (sum of squares of the feature)``;
    with ``feature_reduction="mean"`` the per-sample sum of squares becomes a
    mean of squares, which does not grow with the feature size. ``y_true`` is
    ignored: compile it on a model output that exposes the feature (e.g. a
    ``"features"`` output) with any dummy target, or call
    ``feature_contraction`` in ``add_loss``.

    Args:
        weight: multiplier >= 0.
        feature_reduction: ``"sum"`` (default) or ``"mean"`` over the
            non-batch axes.
        name: loss name.
        **kwargs: ``reduction`` (over the batch, default ``"sum_over_batch_size"``) and ``dtype``
            (computation dtype; float32 by default) of ``keras.losses.Loss``.

    Example:
    >>> import numpy as np
    >>> features = np.ones((2, 4), "float32")
    >>> float(FeatureContraction(weight=0.5)(None, features))  # 0.5 * 4
    2.0
    >>> float(FeatureContraction(weight=0.5, feature_reduction="mean")(None, features))  # 0.5 * 1
    0.5

    Reference:
        Li and Maki 2018, "Feature Contraction: New ConvNet Regularization in
        Image Classification", BMVC.
    """

    def __init__(
        self,
        weight: float = 1.0,
        feature_reduction: str = "sum",
        name: str = "feature_contraction",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.weight = check_non_negative("weight", weight, owner=_OWNER)
        self.feature_reduction = check_one_of("feature_reduction", feature_reduction, _REDUCTIONS, owner=_OWNER)

    def __call__(self, y_true, y_pred, sample_weight=None):
        if y_true is None:
            y_true = ops.zeros((1,), "float32")
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        return self.weight * _contraction(y_pred, self.feature_reduction)

    def get_config(self):
        return {**super().get_config(), "weight": self.weight, "feature_reduction": self.feature_reduction}
