"""Argument checks and output keys shared by the explanation priors (InputGradient, GradCAMPenalty, Energy)."""

from __future__ import annotations

from keras_priors.losses import _explanation
from keras_priors.priors.prior import MASK, Prior
from keras_priors.validation import check_one_of


class ExplanationPrior(Prior):
    """A prior whose loss reads a gradient the model computes for it: the output keys, named by the prior."""

    def data_spec(self):
        return {self.mask: MASK}

    @property
    def gradient_key(self) -> str:
        return f"{self.name}/gradient"

    @property
    def features_key(self) -> str:
        return f"{self.name}/features"


def check_common(prior, mask, mask_is, classes, allowed_classes):
    """Validate and store ``mask``, ``mask_is`` and ``classes`` on ``prior``; its keys are ``(mask,)``."""
    owner = type(prior).__name__
    if not isinstance(mask, str) or not mask:
        raise ValueError(f"{owner}: Expected `mask` to be a data key (a non-empty string). Received: mask={mask!r}")
    prior.mask = mask
    prior.mask_is = check_one_of("mask_is", mask_is, _explanation.MASK_IS, owner=owner)
    prior.classes = check_one_of("classes", classes, allowed_classes, owner=owner)
    prior.required_keys = (mask,)


def check_level(prior, level, ctx):
    """Fail at build time when ``level`` is not one of the backbone's feature maps."""
    if level is not None and level not in ctx.features:
        raise ValueError(
            f"{type(prior).__name__}: Expected `level` one of {list(ctx.features)} (the backbone's feature "
            f"maps) or None (the classifier head's input). Received: level={level!r}"
        )


def check_level_arg(prior, level):
    if level is not None and (not isinstance(level, str) or not level):
        raise ValueError(
            f"{type(prior).__name__}: Expected `level` a feature level name such as 'P3', or None. "
            f"Received: level={level!r}"
        )
    return level
