"""keras_priors.losses: prior losses (keras.ops only, TensorFlow, JAX and torch).

Every loss is a ``keras.losses.Loss`` (registered, so compiled models reload
without ``custom_objects``) plus a function form returning per-sample values:

- ``CAMSuppression`` / ``cam_suppression``: class evidence of a CAM outside the
  object mask (``pack_mask_and_label`` packs the label for ``classes="true"``).
- ``ConfidencePenalty`` / ``confidence_penalty``: ``-beta * H(p)`` or its hinge
  (Pereyra et al. 2017); ``prediction_entropy`` gives H(p).
- ``FeatureContraction`` / ``feature_contraction``: L2 on a hidden feature.
- ``MaskLoss`` / ``mask_loss``: Dice + BCE for mask decoders.
- ``input_gradient_penalty``: squared attributions outside the mask (RRR,
  Ross et al. 2017); ``grad_cam_map`` / ``grad_cam_penalty``: the same on a
  differentiable Grad-CAM (RRR-G); ``energy_loss``: the share of positive
  attribution outside the mask (Rao et al. 2023). Function forms only: they
  need gradients, which ``keras_priors.priors.InputGradient``,
  ``GradCAMPenalty`` and ``Energy`` compute in the train step.

Label smoothing has no class here: use Keras' own
``keras.losses.CategoricalCrossentropy(label_smoothing=0.1, from_logits=True)``.
It needs one-hot targets; for sparse int labels convert them first, e.g. in the
data pipeline ``keras.ops.one_hot(label, num_classes)`` (or
``tf.one_hot`` inside ``tf.data``). For a single-logit binary head use
``keras.losses.BinaryCrossentropy(label_smoothing=0.1, from_logits=True)``,
which takes the 0/1 label directly.
"""

from keras_priors.losses.cam_suppression import CAMSuppression, cam_suppression, pack_mask_and_label
from keras_priors.losses.confidence_penalty import ConfidencePenalty, confidence_penalty, prediction_entropy
from keras_priors.losses.energy import energy_loss
from keras_priors.losses.feature_contraction import FeatureContraction, feature_contraction
from keras_priors.losses.grad_cam import grad_cam_map, grad_cam_penalty
from keras_priors.losses.input_gradient import input_gradient_penalty
from keras_priors.losses.mask_loss import MaskLoss, mask_loss

__all__ = [
    "CAMSuppression",
    "ConfidencePenalty",
    "FeatureContraction",
    "MaskLoss",
    "cam_suppression",
    "confidence_penalty",
    "energy_loss",
    "feature_contraction",
    "grad_cam_map",
    "grad_cam_penalty",
    "input_gradient_penalty",
    "mask_loss",
    "pack_mask_and_label",
    "prediction_entropy",
]
