"""The pretrained-weights prior: start from weights, fine-tune with a freeze-then-unfreeze schedule."""

from __future__ import annotations

import os

from keras_priors.priors.prior import Prior
from keras_priors.validation import check_non_negative


class Pretrained(Prior):
    """Load backbone weights, train the new head first, then fine-tune everything.

    Args:
        weights: a ``.weights.h5`` file of the backbone, a ``.keras`` zoo model
            file (its ``backbone`` is used), or ``"imagenet"`` for
            keras.applications entries (downloads; not possible offline).
        freeze_epochs: epochs with the backbone frozen (0 = never frozen).
            ``fit`` runs them first, then recompiles with a fresh optimizer of
            the same configuration, its learning rate scaled by
            ``unfreeze_learning_rate_factor``, and trains the rest with the
            backbone trainable. BatchNorm layers of a frozen backbone run in
            inference mode (Keras' ``trainable=False`` semantics).
        unfreeze_learning_rate_factor: learning-rate factor for fine-tuning.

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.Pretrained("backbone.weights.h5", freeze_epochs=2).freeze_epochs
    2
    """

    is_pretrained = True

    def __init__(self, weights, freeze_epochs: int = 0, unfreeze_learning_rate_factor: float = 0.1,
                 name: str | None = None):
        super().__init__(weight=0.0, name=name)
        if not isinstance(weights, (str, os.PathLike)):
            raise ValueError(f"Pretrained: Expected `weights` a file path or 'imagenet'. Received: weights={weights!r}")
        self.weights = os.fspath(weights)
        self.freeze_epochs = int(check_non_negative("freeze_epochs", freeze_epochs, owner="Pretrained"))
        self.unfreeze_learning_rate_factor = check_non_negative(
            "unfreeze_learning_rate_factor", unfreeze_learning_rate_factor, owner="Pretrained")

    def get_config(self):
        return {"weights": self.weights, "freeze_epochs": self.freeze_epochs,
                "unfreeze_learning_rate_factor": self.unfreeze_learning_rate_factor, "name": self.name}
