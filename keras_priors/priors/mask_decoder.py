"""The "model reproduces the prior" prior: a mask decoder trained alongside, dropped at export."""

from __future__ import annotations

from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors import layers, losses
from keras_priors.priors.prior import MASK, Prior
from keras_priors.validation import check_positive_int


@keras_priors_export("keras_priors.priors.MaskDecoder")
class MaskDecoder(Prior):
    """Predict a part or object mask from the backbone's feature maps.

    A light FPN/U-Net style ``MaskDecoderHead`` reads the last ``levels``
    pyramid maps and predicts ``target`` (e.g. the bird's head); its Dice +
    BCE loss shapes the shared backbone features. The head is training-only:
    ``export`` drops it, so it costs nothing at inference.

    Args:
        target: data key of the mask to reproduce (B, H, W, 1).
        weight: loss weight.
        levels: how many pyramid levels the decoder reads (2 or 3).
        filters: decoder width (16 by default: at 32, the decoder's 3x3 conv on
            the finest level cost 1.37x a resnet_tiny training step; 16 measured
            1.17x, see ``benchmarks/prior_overhead.py``).
        dice_weight, bce_weight: the mask loss's mix.
        name: term name in logs.

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.MaskDecoder(target="part_mask", weight=0.5).required_keys
    ('part_mask',)
    """

    def __init__(self, target: str = "part_mask", weight: float = 0.5, levels: int = 3, filters: int = 16,
                 dice_weight: float = 1.0, bce_weight: float = 1.0, name: str | None = None):
        super().__init__(weight=weight, name=name)
        self.target = target
        self.levels = check_positive_int("levels", levels, owner="MaskDecoder")
        self.filters = check_positive_int("filters", filters, owner="MaskDecoder")
        self.dice_weight = dice_weight
        self.bce_weight = bce_weight
        losses.MaskLoss(dice_weight=dice_weight, bce_weight=bce_weight)  # validates
        self.required_keys = (target,)

    @property
    def output_name(self) -> str:
        return self.target

    def add_heads(self, ctx):
        if self.levels > len(ctx.features):
            raise ValueError(
                f"MaskDecoder: Expected `levels` <= {len(ctx.features)}, the feature levels the backbone "
                f"{getattr(ctx.spec, 'name', '')!r} exposes ({', '.join(ctx.features)}). Received: levels={self.levels}"
            )
        names = list(ctx.features)[-self.levels:]
        feats = [ctx.features[n] for n in names]
        head = layers.MaskDecoderHead(filters=self.filters, num_masks=1, name=f"{self.target}_decoder")
        ctx.outputs[self.output_name] = head(feats if len(feats) > 1 else feats[0])
        ctx.training_only.add(self.output_name)

    def data_spec(self):
        return {self.target: MASK}

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        value = losses.mask_loss(targets[self.target], outputs[self.output_name],
                                 dice_weight=self.dice_weight, bce_weight=self.bce_weight)
        return {self.name: ops.mean(value)}

    def get_config(self):
        return {**super().get_config(), "target": self.target, "levels": self.levels, "filters": self.filters,
                "dice_weight": self.dice_weight, "bce_weight": self.bce_weight}
