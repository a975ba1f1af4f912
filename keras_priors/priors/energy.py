"""The energy prior: most of the positive attribution must lie on the object."""

from __future__ import annotations

from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors import losses
from keras_priors.losses import _explanation as explanation_losses
from keras_priors.losses import _spatial
from keras_priors.priors import _explanation
from keras_priors.validation import check_one_of

_ATTRIBUTIONS = ("cam", "grad_cam")


@keras_priors_export("keras_priors.priors.Energy")
@_explanation.explanation_docstring()
class Energy(_explanation.ExplanationPrior):
    """The energy loss: ``1 - (positive attribution inside the mask) / (total positive attribution)``.

    Unlike the squared penalties (``InputGradient``, ``GradCAMPenalty``) it is
    a share in [0, 1]: it does not push attributions towards zero, only
    their mass onto the object, and it does not depend on their scale (Rao et
    al. found it localises best among the losses they compared). Logged as
    ``energy_loss``, the paper's name.

    Args:
        mask: the data key of the object mask (B, H, W[, 1]); area-resized to
            the attribution map.
        attribution: ``"cam"`` (default): the model's class activation map
            (positive evidence of the class, ``relu(cam_k)``; a single-logit
            CAM gives class 0 ``relu(-cam)``), no double backprop, cheapest.
            ``"grad_cam"``: Grad-CAM of the class logit at ``level``,
            differentiated again (double backprop), as in the reference code.
        level: for ``"grad_cam"``: a backbone feature level (``"P3"``, ...) or
            None (default) for the classifier head's input.
        {mask_is}
        classes: the class whose attribution is used: ``"true"`` (default) or
            ``"predicted"``.
        weight: the weight of the term. The reference code *sums* the loss
            over the images of a batch; here it is the batch mean, so their
            ``lambda`` corresponds to ``weight = lambda * batch_size``.
        name: term name in logs (default ``"energy"``).

    Example:

    >>> import keras_priors as kp
    >>> prior = kp.priors.Energy(attribution="cam", weight=1.0)
    >>> prior.gradient_requests()
    []

    Reference:
        Rao, Böhle, Parchami-Araghi and Schiele, "Studying How to Efficiently
        and Effectively Guide Models with Explanations", ICCV 2023
        (``EnergyPointingGameBBMultipleLoss`` in sukrutrao/Model-Guidance).
    """

    def __init__(self, mask: str = "object_mask", attribution: str = "cam", level: str | None = None,
                 mask_is: str = "relevant", classes: str = "true", weight: float = 1.0, name: str | None = None):
        super().__init__(weight=weight, name=name)  # Prior checks it: finite, >= 0
        _explanation.check_common(self, mask, mask_is, classes, ("true", "predicted"))
        self.attribution = check_one_of("attribution", attribution, _ATTRIBUTIONS, owner="Energy")
        self.level = _explanation.check_level_arg(self, level)
        if attribution == "cam" and level is not None:
            raise ValueError(
                "Energy: `level` chooses the Grad-CAM feature map. Expected level=None with attribution='cam' "
                f"(the CAM is at the classifier's level). Received: level={level!r}"
            )

    def add_heads(self, ctx):
        _explanation.check_level(self, self.level, ctx)
        if self.attribution == "cam" and "cam" not in ctx.outputs:
            raise ValueError(
                "Energy: attribution='cam' needs a `cam` output. Expected a CAM head (the zoo default). "
                f"Received outputs: {sorted(ctx.outputs)}"
            )

    def gradient_requests(self):
        if self.attribution != "grad_cam":
            return []
        return [self.gradient_request(wrt=self.level, keep_features=True)]

    def attribution_map(self, targets, outputs):
        """The (B, h, w, 1) attribution the loss uses, or None when its gradient was not computed."""
        if self.attribution == "grad_cam":
            if self.gradient_key not in outputs:
                return None
            return losses.grad_cam_map(outputs[self.features_key], outputs[self.gradient_key])
        cam = ops.cast(outputs["cam"], "float32")
        evidence = _spatial.class_evidence(cam)  # (B, h, w, K'), K' = 2 for a single logit
        scores = explanation_losses.class_logits(outputs["logits"])
        selection = explanation_losses.class_selection(scores, self.classes, targets.get("label"))
        return ops.sum(evidence * selection[:, None, None, :], axis=-1, keepdims=True)

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        attribution = self.attribution_map(targets, outputs)
        if attribution is None:
            return {}
        per_sample = losses.energy_loss(attribution, targets[self.mask], mask_is=self.mask_is)
        return {self.name: ops.mean(per_sample)}

    def get_config(self):
        return {**super().get_config(), "mask": self.mask, "attribution": self.attribution, "level": self.level,
                "mask_is": self.mask_is, "classes": self.classes}
