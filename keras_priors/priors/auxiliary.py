"""Auxiliary learning: extra heads on the shared backbone, dropped at export."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors import layers
from keras_priors.priors._common import masked_mean
from keras_priors.priors.prior import DataKey, Prior
from keras_priors.validation import check_class_indices, check_classes_below, check_positive_int


@keras_priors_export("keras_priors.priors.Auxiliary")
class Auxiliary(Prior):
    """An auxiliary classification head trained on ``target`` labels (e.g. fine-grained species).

    The source material found that the auxiliary task helps when the primary
    class is removed from it: samples whose primary label is in
    ``exclude_classes`` get zero weight in the auxiliary loss (their auxiliary
    label is relabelled to the ignore value -1). Samples whose ``target`` is
    already negative are ignored too. The head is training-only.

    Args:
        num_classes: number of auxiliary classes.
        target: data key of the auxiliary integer labels.
        exclude_classes: primary classes whose samples the auxiliary task ignores.
        weight: loss weight.
        hidden_units: optional hidden Dense width in the head (0 = none).
        level: pyramid level the head reads (default: the last).
        name: term name in logs.

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.Auxiliary(num_classes=5, exclude_classes=[0]).required_keys
    ('aux_label',)
    """

    def __init__(self, num_classes: int, target: str = "aux_label", exclude_classes=(), weight: float = 0.3,
                 hidden_units: int = 0, level: str | None = None, name: str | None = None):
        super().__init__(weight=weight, name=name)
        self.num_classes = check_positive_int("num_classes", num_classes, owner="Auxiliary")
        self.target = target
        self.exclude_classes = check_class_indices("exclude_classes", exclude_classes, owner="Auxiliary")
        self.hidden_units = int(hidden_units)
        self.level = level
        self.required_keys = (target,)

    @property
    def output_name(self) -> str:
        return "aux_logits" if self.target == "aux_label" else f"{self.target}_logits"

    def add_heads(self, ctx):
        # exclude_classes are primary classes: known only now.
        check_classes_below("exclude_classes", self.exclude_classes, ctx.num_classes, owner="Auxiliary")
        level = self.level or ctx.last_level
        head = layers.AuxiliaryHead(self.num_classes, hidden_units=self.hidden_units or None, name=f"{self.name}_head")
        ctx.outputs[self.output_name] = head(ctx.features[level])
        ctx.training_only.add(self.output_name)

    def data_spec(self):
        return {self.target: DataKey(description="auxiliary class indices per sample, negative to ignore")}

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        aux = layers.exclude_from_auxiliary(targets[self.target], targets["label"], self.exclude_classes)
        aux = ops.reshape(ops.cast(aux, "int32"), (-1,))
        valid = ops.cast(aux >= 0, "float32")
        safe = ops.where(aux >= 0, aux, 0)
        logits = ops.cast(outputs[self.output_name], "float32")
        per_sample = keras.losses.sparse_categorical_crossentropy(safe, logits, from_logits=True)
        return {self.name: masked_mean(per_sample, valid)}

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "target": self.target,
                "exclude_classes": self.exclude_classes, "hidden_units": self.hidden_units, "level": self.level}
