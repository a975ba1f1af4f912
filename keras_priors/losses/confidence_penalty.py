"""Confidence penalty (Pereyra et al. 2017): reward high-entropy predictions."""

from __future__ import annotations

import numbers

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.validation import check_non_negative

_OWNER = "ConfidencePenalty"
_EPS = 1e-7


def prediction_entropy(y_pred, from_logits: bool = True):
    """Entropy (nats) of each prediction, float32 (B,).

    ``y_pred`` (B, K) with K >= 2 is a softmax distribution over the last axis;
    (B, 1) or (B,) is a single sigmoid output (binary entropy).
    """
    y_pred = ops.cast(y_pred, "float32")
    if len(y_pred.shape) == 1:
        y_pred = y_pred[:, None]
    if y_pred.shape[-1] == 1:
        if from_logits:
            log_p, log_q = -ops.softplus(-y_pred), -ops.softplus(y_pred)
            p = ops.sigmoid(y_pred)
        else:
            p = ops.clip(y_pred, _EPS, 1.0 - _EPS)
            log_p, log_q = ops.log(p), ops.log(1.0 - p)
        ent = -(p * log_p + (1.0 - p) * log_q)
        return ops.sum(ent, axis=tuple(range(1, len(ent.shape))))
    if from_logits:
        log_p = ops.log_softmax(y_pred, axis=-1)
        p = ops.exp(log_p)
    else:
        p = ops.clip(y_pred, _EPS, 1.0)
        p = p / ops.sum(p, axis=-1, keepdims=True)
        log_p = ops.log(p)
    ent = -ops.sum(p * log_p, axis=-1)
    if len(ent.shape) > 1:
        ent = ops.mean(ent, axis=tuple(range(1, len(ent.shape))))
    return ent


def _check_threshold(threshold, owner):
    if threshold is None:
        return None
    if isinstance(threshold, bool) or not isinstance(threshold, numbers.Real) or threshold < 0:
        raise ValueError(
            f"{owner}: Expected `threshold` to be None or a number >= 0 (an entropy in nats). "
            f"Received: threshold={threshold!r}"
        )
    return float(threshold)


def confidence_penalty(y_pred, beta: float = 0.1, threshold: float | None = None, from_logits: bool = True):
    """Per-sample confidence penalty (function form of ``ConfidencePenalty``).

    Args:
        y_pred: logits (or probabilities with ``from_logits=False``), (B, K) or (B, 1).
        beta: strength >= 0.
        threshold: ``None`` for ``-beta * H(p)``; a number ``tau`` for the hinge
            ``beta * relu(tau - H(p))``.
        from_logits: whether ``y_pred`` are logits.

    Returns:
        float32 (B,).
    """
    owner = "confidence_penalty"
    beta = check_non_negative("beta", beta, owner=owner)
    threshold = _check_threshold(threshold, owner)
    ent = prediction_entropy(y_pred, from_logits)
    if threshold is None:
        return -beta * ent
    return beta * ops.relu(threshold - ent)


@keras_priors_export("keras_priors.losses.ConfidencePenalty")
class ConfidencePenalty(keras.losses.Loss):
    """Penalise confident (low-entropy) output distributions.

    ``loss = -beta * H(p)`` with ``p = softmax(logits)`` (binary entropy of
    ``sigmoid(logit)`` for a single logit); minimising it raises the entropy.
    With ``threshold=tau`` it is the hinge ``beta * relu(tau - H(p))``, which
    only acts on predictions whose entropy is below ``tau`` nats.

    ``y_true`` is ignored: add this as an extra term next to the
    classification loss. A Keras loss dict has one loss per output, so either
    expose the logits a second time (``keras.layers.Identity(name="logits_cp")(logits)``)
    and compile ``loss={"logits": "sparse_categorical_crossentropy",
    "logits_cp": ConfidencePenalty(0.1)}`` with any dummy target for
    ``"logits_cp"`` (e.g. the label), or call ``confidence_penalty`` in a custom
    loss or ``add_loss``.

    Args:
        beta: strength of the penalty, >= 0: Pereyra et al.'s ``beta``, the
            loss's own coefficient. (The prior ``keras_priors.priors.ConfidencePenalty``
            calls it ``weight``, as every prior calls the factor of its term.)
        threshold: optional entropy (nats) below which the hinge penalises.
        from_logits: ``y_pred`` are logits (default) or probabilities.
        name: loss name.
        **kwargs: ``reduction`` (over the batch, default ``"sum_over_batch_size"``) and ``dtype``
            (computation dtype; float32 by default, also for float16 logits) of ``keras.losses.Loss``.

    Example:
    >>> import numpy as np
    >>> logits = np.array([[4.0, 0.0, 0.0]], "float32")
    >>> round(float(ConfidencePenalty(beta=0.1)(None, logits)), 4)  # -0.1 * entropy
    -0.0177
    >>> round(float(ConfidencePenalty(beta=0.1)(None, np.zeros((1, 3)))), 4)  # uniform: -0.1 * ln 3
    -0.1099

    Reference:
        Pereyra et al. 2017, "Regularizing Neural Networks by Penalizing
        Confident Output Distributions", https://arxiv.org/abs/1701.06548
    """

    def __init__(
        self,
        beta: float = 0.1,
        threshold: float | None = None,
        from_logits: bool = True,
        name: str = "confidence_penalty",
        **kwargs,
    ):
        super().__init__(name=name, **kwargs)
        self.beta = check_non_negative("beta", beta, owner=_OWNER)
        self.threshold = _check_threshold(threshold, _OWNER)
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred, sample_weight=None):
        # y_true is ignored and may be None.
        if y_true is None:
            y_true = ops.zeros((1,), "float32")
        return super().__call__(y_true, y_pred, sample_weight=sample_weight)

    def call(self, y_true, y_pred):
        ent = prediction_entropy(y_pred, self.from_logits)
        if self.threshold is None:
            return -self.beta * ent
        return self.beta * ops.relu(self.threshold - ent)

    def get_config(self):
        return {
            **super().get_config(),
            "beta": self.beta,
            "threshold": self.threshold,
            "from_logits": self.from_logits,
        }
