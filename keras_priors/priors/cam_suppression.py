"""The CAM-constraint prior: class evidence must stay inside the object."""

from __future__ import annotations

from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors import losses
from keras_priors.priors.prior import MASK, Prior
from keras_priors.validation import check_class_indices


@keras_priors_export("keras_priors.priors.CAMSuppression")
class CAMSuppression(Prior):
    """Suppress evidence for chosen classes outside the object mask.

    "The kakapo can be anywhere but the sky": the classifier's class activation
    map (``cam`` output of the zoo's ``CAMHead``) is penalised where it shows
    evidence for ``classes`` outside ``mask``, so the network cannot use the
    background as a shortcut for those classes. Costs nothing at inference.

    Args:
        classes: class indices to constrain, or ``"true"`` for each sample's
            true class.
        mask: the data key holding the object mask (B, H, W, 1).
        weight: loss weight.
        normalize: ``"share"`` (default: the share of the evidence outside
            the object, 1 for a CAM with no evidence, so wiping the CAM never
            lowers it), ``"outside_area"``, ``"area"`` or ``"none"`` (see
            ``keras_priors.losses.CAMSuppression``).
        power: 1 (L1) or 2 (squared) penalty.
        evidence: ``"relative"`` (default: ``relu(cam_k - mean_j cam_j)``,
            what moves the softmax, so every class's evidence leaves the
            background) or ``"positive"`` (``relu(cam_k)``); see
            ``keras_priors.losses.CAMSuppression``.
        name: term name in logs (default ``"cam_suppression"``).

    Example:

    >>> import keras_priors as kp
    >>> prior = kp.priors.CAMSuppression(classes=[0], mask="object_mask", weight=1.0)
    >>> prior.required_keys
    ('object_mask',)
    """

    def __init__(self, classes=(0,), mask: str = "object_mask", weight: float = 1.0,
                 normalize: str = "share", power: float = 1, evidence: str = "relative",
                 name: str | None = None):
        super().__init__(weight=weight, name=name)
        if isinstance(classes, str):
            self.classes = classes
        else:
            self.classes = check_class_indices("classes", classes, owner="CAMSuppression")
        # Validate classes/normalize/power with the loss's own checks.
        losses.CAMSuppression(classes=self.classes, normalize=normalize, power=power, evidence=evidence)
        self.mask = mask
        self.normalize = normalize
        self.power = power
        self.evidence = evidence
        self.required_keys = (mask,)

    def check_num_classes(self, num_classes: int) -> None:
        if isinstance(self.classes, list):
            k = 2 if num_classes == 1 else num_classes
            bad = [c for c in self.classes if not 0 <= c < k]
            if bad:
                raise ValueError(
                    f"CAMSuppression: Expected `classes` in [0, {k - 1}] for num_classes={num_classes}. "
                    f"Received: classes={self.classes}"
                )

    def add_heads(self, ctx):
        self.check_num_classes(ctx.num_classes)
        if "cam" not in ctx.outputs:
            raise ValueError(
                "CAMSuppression: the model has no `cam` output to constrain. Expected a CAM head "
                "(the zoo default, or DualInput(fusion='concat')). Received outputs: " + str(sorted(ctx.outputs))
            )

    def data_spec(self):
        return {self.mask: MASK}

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        per_sample = losses.cam_suppression(
            outputs["cam"], targets[self.mask], classes=self.classes, labels=targets["label"],
            normalize=self.normalize, power=self.power, evidence=self.evidence,
        )
        return {self.name: ops.mean(per_sample)}

    def metric_names(self):
        return ["cam_energy_in_mask"]

    def metric_values(self, targets, outputs, num_classes):
        from keras_priors.metrics import cam_energy_in_mask

        return {"cam_energy_in_mask": cam_energy_in_mask(outputs["cam"], targets[self.mask], targets["label"])}

    def get_config(self):
        return {**super().get_config(), "classes": self.classes, "mask": self.mask,
                "normalize": self.normalize, "power": self.power, "evidence": self.evidence}
