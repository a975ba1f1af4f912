"""A spatial attention gate on the last feature map, supervised by a part mask."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors import layers
from keras_priors.priors._common import resize_mask_to
from keras_priors.priors.prior import MASK, Prior


@keras_priors_export("keras_priors.priors.SpatialAttention")
class SpatialAttention(Prior):
    """Gate the last feature map with a learned spatial attention map, supervised by ``target``.

    The attention layer stays in the model (it changes the features the
    classifier sees); its ``attention`` output, and the supervision, are
    training-only. The term is the binary cross-entropy between the attention
    map and the mask's object fraction per feature cell.

    Args:
        target: data key of the supervising mask (e.g. ``"part_mask"``), or
            ``None`` for unsupervised attention.
        weight: loss weight.
        kernel_size: attention conv size.
        name: term name in logs.

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.SpatialAttention(target="part_mask").required_keys
    ('part_mask',)
    """

    def __init__(self, target: str | None = "part_mask", weight: float = 0.5, kernel_size: int = 1,
                 name: str | None = None):
        super().__init__(weight=weight, name=name)
        self.target = target
        self.kernel_size = int(kernel_size)
        self.required_keys = (target,) if target else ()

    def term_names(self):
        return [self.name] if self.target else []

    def modify_features(self, ctx):
        level = ctx.last_level
        out = layers.SpatialAttention(kernel_size=self.kernel_size, name="spatial_attention")(ctx.features[level])
        ctx.features[level] = out["features"]
        ctx.outputs["attention"] = out["attention"]
        ctx.training_only.add("attention")

    def data_spec(self):
        return {self.target: MASK} if self.target else {}

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        if not self.target:
            return {}
        attention = ops.cast(outputs["attention"], "float32")
        cells = resize_mask_to(targets[self.target], attention)
        bce = keras.losses.binary_crossentropy(cells, attention, from_logits=False)
        return {self.name: ops.mean(bce)}

    def get_config(self):
        return {**super().get_config(), "target": self.target, "kernel_size": self.kernel_size}
