"""The input-gradient prior (RRR): the network must not *use* the pixels outside the object."""

from __future__ import annotations

from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors import losses
from keras_priors.losses import _explanation as explanation_losses
from keras_priors.losses.input_gradient import check_normalize
from keras_priors.priors import _explanation


@keras_priors_export("keras_priors.priors.InputGradient")
@_explanation.explanation_docstring(prior='kp.priors.InputGradient(mask="object_mask", weight=10.0)')
class InputGradient(_explanation.ExplanationPrior):
    """Penalise input gradients outside the object: "right for the right reasons".

    Adds ``weight * mean_b sum(((1 - mask) * d(sum_c log p_c)/d image) ** 2)``
    to the loss. The gradient is computed in the train step from the same
    forward pass as the logits and differentiated again (double backprop),
    so the network learns to make its prediction insensitive to the
    background, not only to report no evidence there (compare
    ``CAMSuppression``, which constrains the CAM but lets each CAM cell read
    the background through its receptive field). Costs nothing at inference:
    export and ``model.predict`` on images only are unchanged. A training
    step costs about 2.2-2.7x a plain one on TensorFlow and about 4x on JAX
    (CPU, ``benchmarks/prior_overhead.py``).

    Args:
        mask: the data key of the mask (B, H, W[, 1]) at image resolution.
        {mask_is}
        classes: whose log-probability is differentiated: ``"all"`` (default,
            ``sum_c log p_c`` as in RRR), ``"true"`` (the label's) or
            ``"predicted"`` (the arg-max class's).
        normalize: ``"rrr"`` (default): per-sample sum over pixels and
            channels, so ``weight`` is RRR's ``lambda`` with our mean
            cross-entropy (their objective divided by the batch size) for
            inputs on their scale. Their Decoy-MNIST runs use ``lambda = 1000``
            on raw 0-255 pixels, which is ``weight = 1000 / 255**2`` on our
            [0, 1] images (see ``keras_priors.losses.input_gradient_penalty``).
            ``"mean"``: per-sample mean over pixels and channels.
        weight: ``lambda``, the weight of the term.
        name: term name in logs (default ``"input_gradient"``).

    {build_example}
    >>> prior.gradient_requests()[0].key
    'input_gradient/gradient'

    Reference:
        Ross, Hughes and Doshi-Velez, "Right for the Right Reasons: Training
        Differentiable Models by Constraining their Explanations", IJCAI 2017
        (eq. 1; scaling from dtak/rrr).
    """

    def __init__(self, mask: str = "object_mask", mask_is: str = "relevant", classes: str = "all",
                 normalize: str = "rrr", weight: float = 1.0, name: str | None = None):
        super().__init__(weight=weight, name=name)  # Prior checks it: finite, >= 0
        _explanation.check_common(self, mask, mask_is, classes, explanation_losses.CLASSES)
        self.normalize = check_normalize(normalize, owner="InputGradient")

    score_kind = "log_prob"

    def gradient_requests(self):
        return [self.gradient_request(wrt="image", keep_features=False)]

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        if self.gradient_key not in outputs:
            return {}
        per_sample = losses.input_gradient_penalty(outputs[self.gradient_key], targets[self.mask],
                                                   mask_is=self.mask_is, normalize=self.normalize)
        return {self.name: ops.mean(per_sample)}

    def get_config(self):
        return {**super().get_config(), "mask": self.mask, "mask_is": self.mask_is, "classes": self.classes,
                "normalize": self.normalize}
