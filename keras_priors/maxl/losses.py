"""The MAXL loss terms, following lorenmt/maxl (``model_fit`` and ``model_entropy``)."""

from __future__ import annotations

from keras import ops

#: Added inside the logarithms, as in the reference (1e-20).
LOG_EPSILON = 1e-20


def focal_cross_entropy(targets, probs, gamma: float = 2.0):
    """Batch mean of ``-sum_k t_k (1 - p_k)^gamma log(p_k)``.

    The reference trains both heads with this focal form (gamma = 2): the
    primary head on one-hot labels, the auxiliary head on the generator's
    soft labels. ``gamma = 0`` gives the plain cross-entropy.

    Args:
        targets: ``(B, K)`` one-hot or soft labels.
        probs: ``(B, K)`` predicted probabilities.
        gamma: focusing exponent (>= 0).
    """
    probs, targets = ops.cast(probs, "float32"), ops.cast(targets, "float32")
    per_class = targets * ops.power(1.0 - probs, gamma) * ops.log(probs + LOG_EPSILON)
    return ops.mean(-ops.sum(per_class, axis=-1))


def focal_cross_entropy_target_grad(probs, gamma: float = 2.0):
    """d focal_cross_entropy / d targets: ``-(1 - p)^gamma log(p) / B`` (the loss is linear in targets)."""
    probs = ops.cast(probs, "float32")
    batch = ops.cast(ops.shape(probs)[0], "float32")
    return -ops.power(1.0 - probs, gamma) * ops.log(probs + LOG_EPSILON) / batch


def label_entropy_penalty(generated):
    """``sum_k m_k log(m_k)`` with ``m`` the batch mean of the generated labels.

    Minus the entropy of the mean auxiliary label: minimising it spreads the
    batch over the auxiliary classes, so the generator cannot collapse onto one
    class per block. The reference adds it with weight 0.2 to the generator's
    objective.
    """
    mean = ops.mean(ops.cast(generated, "float32"), axis=0)
    return ops.sum(mean * ops.log(mean + LOG_EPSILON))
