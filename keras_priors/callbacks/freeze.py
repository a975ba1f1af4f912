"""Freeze-then-unfreeze inside one ``fit``: a gradient gate and the callback that opens it."""

from __future__ import annotations

import warnings

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.validation import check_non_negative


@keras_priors_export("keras_priors.callbacks.GradientGate")
class GradientGate(keras.layers.Layer):
    """Identity in the forward pass; lets gradients through only when its gate is open.

    Computes ``g * x + (1 - g) * stop_gradient(x)`` with ``g`` a scalar,
    non-trainable variable: the output always equals ``x`` exactly (``g`` is 0
    or 1), and the gradient reaching ``x`` is ``g`` times the incoming one.
    Placed on a backbone's feature maps, ``g = 0`` freezes the backbone's
    trainable weights (they get zero gradients) without changing the set of
    trainable variables, which JAX's trainer fixes for a whole ``fit`` call.
    ``FreezeBackbone`` sets ``g`` at an epoch boundary. One layer may be
    called on several tensors (all feature levels); they share the gate.

    Args:
        open: initial gate value; ``False`` (0.0) starts frozen.
        **kwargs: base layer arguments (``name``, ``dtype``).

    Example:

    >>> import numpy as np
    >>> gate = GradientGate(open=False)
    >>> x = np.ones((1, 2, 2, 3), "float32")
    >>> bool(np.all(np.asarray(gate(x)) == x))
    True
    """

    def __init__(self, open: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.open = bool(open)
        self.gate = self.add_weight(
            name="gate", shape=(), initializer=keras.initializers.Constant(1.0 if self.open else 0.0),
            trainable=False, dtype="float32",
        )

    def call(self, inputs):
        g = ops.cast(self.gate, inputs.dtype)
        return g * inputs + (1.0 - g) * ops.stop_gradient(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "open": self.open}


def find_gates(model) -> list:
    """Every ``GradientGate`` layer inside ``model`` (nested models included)."""
    found, seen = [], set()

    def walk(layer):
        if id(layer) in seen:
            return
        seen.add(id(layer))
        if isinstance(layer, GradientGate):
            found.append(layer)
        for sub in getattr(layer, "layers", None) or []:
            walk(sub)

    walk(model)
    return found


@keras_priors_export("keras_priors.callbacks.FreezeBackbone")
class FreezeBackbone(keras.callbacks.Callback):
    """Keep the backbone frozen for the first epochs, then fine-tune it, in one ``fit``.

    Drives the model's ``GradientGate`` layers (``keras_priors.zoo.build``
    adds one behind the backbone for ``Pretrained(freeze_epochs=N,
    mode="gate")``): closed before ``unfreeze_epoch``, open from it on. At the
    epoch where the gate opens, the optimizer's learning rate is multiplied by
    ``learning_rate_factor`` (the gate state is saved with the model, so a
    resumed run whose gate is already open is not scaled twice). Works on
    TensorFlow, JAX and torch: the trainable variables never change, only the gate.

    What "frozen" means here: the backbone's trainable weights (kernels,
    BatchNorm gamma/beta) get zero gradients and do not move under SGD,
    momentum, Adam or RMSprop. Two things still change them, so know them:
    BatchNorm layers run in training mode, using batch statistics and
    updating their moving mean/variance on the new data (AdaBN-like; Keras'
    ``trainable=False`` would put them in inference mode, which needs a
    second ``fit``: use ``Pretrained(mode="two_phase")`` for that), and
    decoupled weight decay (``AdamW``, ``weight_decay=``) shrinks them, which
    this callback warns about at the start of training.

    Args:
        unfreeze_epoch: first epoch (0-based, as ``fit`` counts) trained with
            the backbone open; ``0`` opens it at once.
        learning_rate_factor: factor applied to ``optimizer.learning_rate``
            when the gate opens (``1.0`` keeps it); needs a float learning
            rate, not a schedule.
        verbose: print a line when the gate opens.

    Example:

    >>> import keras_priors as kp
    >>> cb = kp.callbacks.FreezeBackbone(unfreeze_epoch=2, learning_rate_factor=0.1)
    >>> cb.unfreeze_epoch
    2
    """

    def __init__(self, unfreeze_epoch: int, learning_rate_factor: float = 1.0, verbose: int = 0):
        super().__init__()
        self.unfreeze_epoch = int(check_non_negative("unfreeze_epoch", unfreeze_epoch, owner="FreezeBackbone"))
        self.learning_rate_factor = float(
            check_non_negative("learning_rate_factor", learning_rate_factor, owner="FreezeBackbone"))
        self.verbose = int(verbose)
        self._gates = []

    def on_train_begin(self, logs=None):
        self._gates = find_gates(self.model)
        if not self._gates:
            raise ValueError(
                "FreezeBackbone: Expected a model with a GradientGate layer behind its backbone "
                "(build it with keras_priors.priors.Pretrained(..., freeze_epochs=N, mode='gate') or add "
                f"keras_priors.callbacks.GradientGate yourself). Received: a model {self.model.name!r} without one."
            )
        optimizer = getattr(self.model, "optimizer", None)
        if self.unfreeze_epoch > 0 and optimizer is not None and getattr(optimizer, "weight_decay", None):
            warnings.warn(
                f"FreezeBackbone: the optimizer applies weight decay ({optimizer.weight_decay}); it shrinks the "
                "gated backbone weights even while they are frozen. Exclude them with "
                "optimizer.exclude_from_weight_decay(...) or use Pretrained(mode='two_phase').",
                stacklevel=2,
            )

    def on_epoch_begin(self, epoch, logs=None):
        want_open = epoch >= self.unfreeze_epoch
        was_open = all(float(ops.convert_to_numpy(g.gate)) >= 0.5 for g in self._gates)
        for gate in self._gates:
            gate.gate.assign(1.0 if want_open else 0.0)
        if want_open and not was_open:
            self._scale_learning_rate()
            if self.verbose:
                print(f"FreezeBackbone: epoch {epoch + 1}: backbone unfrozen"
                      f" (learning rate x {self.learning_rate_factor:g})")

    def _scale_learning_rate(self):
        if self.learning_rate_factor == 1.0:
            return
        optimizer = self.model.optimizer
        lr = optimizer.learning_rate
        if not isinstance(lr, keras.Variable):
            raise ValueError(
                "FreezeBackbone: Expected an optimizer with a float learning rate to scale by "
                f"learning_rate_factor={self.learning_rate_factor}. Received: a learning-rate schedule "
                f"{type(optimizer._learning_rate).__name__}; pass learning_rate_factor=1.0 and scale it in the "
                "schedule."
            )
        lr.assign(float(ops.convert_to_numpy(lr)) * self.learning_rate_factor)

    def get_config(self):
        return {"unfreeze_epoch": self.unfreeze_epoch, "learning_rate_factor": self.learning_rate_factor,
                "verbose": self.verbose}
