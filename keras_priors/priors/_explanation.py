"""Argument checks and output keys shared by the explanation priors (InputGradient, GradCAMPenalty, Energy)."""

from __future__ import annotations

from keras_priors.losses import _explanation
from keras_priors.priors.prior import MASK, GradientRequest, Prior
from keras_priors.validation import check_one_of

#: Docstring pieces the explanation priors share, filled in by :func:`explanation_docstring`.
DOC_PIECES = {
    "{mask_is}": """mask_is: ``"relevant"`` (default: the mask marks the object; the
            penalty acts where ``mask == 0``) or ``"irrelevant"`` (the mask
            marks the shortcut, RRR's annotation ``A``).""",
    "{build_example}": """Example:

    >>> import keras_priors as kp
    >>> prior = {prior}
    >>> model = kp.zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[prior])""",
}


def explanation_docstring(prior: str | None = None):
    """Class decorator: fill :data:`DOC_PIECES` into the docstring; ``prior`` is the Example's constructor call."""

    def decorate(cls):
        doc = cls.__doc__ or ""
        for placeholder, text in DOC_PIECES.items():
            doc = doc.replace(placeholder, text.replace("{prior}", prior or ""))
        cls.__doc__ = doc
        return cls

    return decorate


class ExplanationPrior(Prior):
    """A prior whose loss reads a gradient the model computes for it: the output keys, named by the prior."""

    #: what is differentiated: the class ``"logit"`` or its ``"log_prob"`` (``class_score``'s ``kind``).
    score_kind = "logit"

    def data_spec(self):
        return {self.mask: MASK}

    def gradient_request(self, wrt, keep_features: bool) -> GradientRequest:
        """The gradient of the ``classes`` score with respect to ``wrt``, when the batch has the mask (and label)."""
        keys = (self.mask, "label") if self.classes == "true" else (self.mask,)
        return GradientRequest(key=self.gradient_key, score=self._score, wrt=wrt,
                               features_key=self.features_key if keep_features else None, keys=keys)

    def _score(self, outputs, batch):
        return _explanation.class_score(outputs["logits"], self.classes, batch.get("label"), kind=self.score_kind)

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
