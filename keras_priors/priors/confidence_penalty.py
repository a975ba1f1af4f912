"""Implicit label regularisation priors: confidence penalty, label smoothing, feature contraction."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors import losses
from keras_priors.priors.prior import Prior
from keras_priors.validation import check_fraction, check_non_negative


@keras_priors_export("keras_priors.priors.ConfidencePenalty")
class ConfidencePenalty(Prior):
    """Penalise over-confident predictions: ``-beta * H(p)`` (Pereyra et al. 2017).

    Args:
        beta: strength (>= 0): this prior's ``weight``, under the paper's name
            (``prior.weight`` is ``beta``).
        threshold: when given, the hinge variant ``beta * relu(threshold - H(p))``
            that only penalises entropy below ``threshold`` (nats).
        name: term name in logs.

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.ConfidencePenalty(beta=0.1).weight
    0.1

    Reference:
        Pereyra et al., "Regularizing Neural Networks by Penalizing Confident
        Output Distributions", ICLR workshop 2017.
    """

    def __init__(self, beta: float = 0.1, threshold: float | None = None, name: str | None = None):
        super().__init__(weight=check_non_negative("beta", beta, owner="ConfidencePenalty"), name=name)
        losses.ConfidencePenalty(beta=1.0, threshold=threshold)  # validates threshold
        self.threshold = threshold

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        value = losses.confidence_penalty(outputs["logits"], beta=1.0, threshold=self.threshold)
        return {self.name: ops.mean(value)}  # the base class multiplies by weight = beta

    @property
    def beta(self) -> float:
        return self.weight

    def get_config(self):
        return {"beta": self.beta, "threshold": self.threshold, "name": self.name}


@keras_priors_export("keras_priors.priors.LabelSmoothing")
class LabelSmoothing(Prior):
    """Replace the primary cross-entropy by its label-smoothed form (Keras' own losses).

    Integer labels are one-hot encoded on the fly, so sparse labels work
    (Keras' ``CategoricalCrossentropy(label_smoothing=...)`` alone needs one-hot).

    Args:
        smoothing: in [0, 1); 0.1 is the usual value (Szegedy et al. 2016).

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.LabelSmoothing(0.1).smoothing
    0.1
    """

    replaces_classification_loss = True

    def __init__(self, smoothing: float = 0.1, name: str | None = None):
        super().__init__(weight=None, name=name)  # replaces the classification loss; no term to weigh
        self.smoothing = check_fraction("smoothing", smoothing, owner="LabelSmoothing")
        if self.smoothing >= 1.0:
            raise ValueError(f"LabelSmoothing: Expected `smoothing` in [0, 1). Received: smoothing={smoothing}")

    def term_names(self):
        return []

    def classification_loss(self, targets, outputs, num_classes):
        logits = ops.cast(outputs["logits"], "float32")
        labels = ops.reshape(ops.cast(targets["label"], "int32"), (-1,))
        if num_classes == 1:
            y = ops.cast(ops.reshape(labels, (-1, 1)), "float32")
            return ops.mean(keras.losses.binary_crossentropy(y, logits, from_logits=True,
                                                             label_smoothing=self.smoothing))
        y = ops.one_hot(labels, num_classes)
        return ops.mean(
            keras.losses.categorical_crossentropy(y, logits, from_logits=True, label_smoothing=self.smoothing)
        )

    def get_config(self):
        return {"smoothing": self.smoothing, "name": self.name}


@keras_priors_export("keras_priors.priors.FeatureContraction")
class FeatureContraction(Prior):
    """L2 penalty on the pooled last feature map (feature contraction).

    Adds a training-only ``features`` output (global average pool of the last
    feature map) and the term ``weight * mean_b ||f_b||^2``.

    Args:
        weight: strength (>= 0).
        level: which pyramid level to pool (default: the last).
        name: term name in logs.

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.FeatureContraction(weight=1e-3).weight
    0.001

    Reference:
        Li and Maki, "Feature Contraction: New ConvNet Regularization in Image
        Classification", BMVC 2018.
    """

    def __init__(self, weight: float = 1e-3, level: str | None = None, name: str | None = None):
        super().__init__(weight=weight, name=name)
        self.level = level

    def add_heads(self, ctx):
        level = self.level or ctx.last_level
        if level not in ctx.features:
            raise ValueError(f"FeatureContraction: Expected `level` in {list(ctx.features)}. Received: level={level!r}")
        ctx.outputs["features"] = keras.layers.GlobalAveragePooling2D(name="pooled_features")(ctx.features[level])
        ctx.training_only.add("features")

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        return {self.name: ops.mean(losses.feature_contraction(outputs["features"]))}

    def get_config(self):
        return {**super().get_config(), "level": self.level}
