"""The Grad-CAM penalty (RRR-G): the RRR penalty on a differentiable Grad-CAM map."""

from __future__ import annotations

from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors import losses
from keras_priors.losses.input_gradient import check_normalize
from keras_priors.priors import _explanation


@keras_priors_export("keras_priors.priors.GradCAMPenalty")
@_explanation.explanation_docstring(prior='kp.priors.GradCAMPenalty(level="P2", weight=1.0)')
class GradCAMPenalty(_explanation.ExplanationPrior):
    """Penalise the Grad-CAM map outside the object (RRR-G).

    Adds ``weight * mean_b sum(((1 - mask) * grad_cam) ** 2)`` where
    ``grad_cam = relu(sum_c mean_hw(d y / d A_c) * A_c)`` is Grad-CAM of the
    class logit ``y`` at the feature map ``A`` of ``level``, and the mask is
    area-resized to that map (each cell gets its exact object fraction). The
    gradient comes from the train step's forward pass and is differentiated
    again (double backprop). Costs nothing at inference.

    A coarse level (the default, the classifier's) gives the cheapest and
    coarsest constraint; an earlier level (``"P2"``) constrains features
    whose cells see less of the image.

    Args:
        mask: the data key of the object mask (B, H, W[, 1]).
        level: the backbone feature level (``"P3"``, ...), or None (default)
            for the classifier head's input, the level of the model's CAM.
        {mask_is}
        classes: whose logit Grad-CAM explains: ``"true"`` (default) or
            ``"predicted"``. (A single-logit head's class 0 has score
            ``-logit``.)
        normalize: ``"rrr"`` (default, sum over the map's cells) or
            ``"mean"`` (mean over them).
        weight: the weight of the term.
        name: term name in logs (default ``"grad_cam_penalty"``).

    {build_example}
    >>> prior.gradient_requests()[0].wrt
    'P2'

    Reference:
        RRR-G in Friedrich et al., "A typology for exploring the mitigation of
        shortcut behaviour", Nature Machine Intelligence 2023; Grad-CAM after
        Selvaraju et al., ICCV 2017; Ross et al., IJCAI 2017.
    """

    def __init__(self, mask: str = "object_mask", level: str | None = None, mask_is: str = "relevant",
                 classes: str = "true", normalize: str = "rrr", weight: float = 1.0, name: str | None = None):
        super().__init__(weight=weight, name=name)  # Prior checks it: finite, >= 0
        _explanation.check_common(self, mask, mask_is, classes, ("true", "predicted"))
        self.level = _explanation.check_level_arg(self, level)
        self.normalize = check_normalize(normalize, owner="GradCAMPenalty")

    def add_heads(self, ctx):
        _explanation.check_level(self, self.level, ctx)

    def gradient_requests(self):
        return [self.gradient_request(wrt=self.level, keep_features=True)]

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        if self.gradient_key not in outputs:
            return {}
        per_sample = losses.grad_cam_penalty(outputs[self.features_key], outputs[self.gradient_key],
                                             targets[self.mask], mask_is=self.mask_is, normalize=self.normalize)
        return {self.name: ops.mean(per_sample)}

    def get_config(self):
        return {**super().get_config(), "mask": self.mask, "level": self.level, "mask_is": self.mask_is,
                "classes": self.classes, "normalize": self.normalize}
