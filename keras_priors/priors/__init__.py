"""keras_priors.priors: one object per way to put prior knowledge into a classifier.

Each prior declares the data keys it needs, the heads it adds and the loss
terms it contributes; ``keras_priors.zoo.build(..., priors=[...])`` wires them.

| prior | what it adds | at inference |
|---|---|---|
| ``Pretrained`` | backbone weights, freeze-then-unfreeze | nothing |
| ``DualInput`` | a part-crop stream, late fusion; the box predicted (mask decoder + ``MaskToBox``) or given (oracle) | second stream (+ locator) |
| ``MaskDecoder`` | a mask decoder head + Dice/BCE | dropped |
| ``CAMSuppression`` | CAM penalty outside the object mask | nothing |
| ``InputGradient`` | input-gradient penalty outside the mask (RRR), double backprop | nothing |
| ``GradCAMPenalty`` | Grad-CAM penalty outside the mask (RRR-G), double backprop | nothing |
| ``Energy`` | share of positive CAM / Grad-CAM outside the mask | nothing |
| ``Auxiliary`` | an auxiliary head (primary classes excludable) | dropped |
| ``BackgroundSwap`` | counterexamples: objects on other images' backgrounds (train step) | nothing |
| ``SpatialAttention`` | an attention gate supervised by a mask | the gate |
| ``ConfidencePenalty``, ``LabelSmoothing``, ``FeatureContraction`` | label regularisation | nothing |
"""  # noqa: E501 (a Markdown table row cannot be wrapped)

from keras_priors.priors.auxiliary import Auxiliary
from keras_priors.priors.background_swap import BackgroundSwap
from keras_priors.priors.cam_suppression import CAMSuppression
from keras_priors.priors.confidence_penalty import ConfidencePenalty, FeatureContraction, LabelSmoothing
from keras_priors.priors.dual_input import DualInput
from keras_priors.priors.energy import Energy
from keras_priors.priors.grad_cam_penalty import GradCAMPenalty
from keras_priors.priors.input_gradient import InputGradient
from keras_priors.priors.mask_decoder import MaskDecoder
from keras_priors.priors.pretrained import Pretrained
from keras_priors.priors.prior import BOX, MASK, BuildContext, DataKey, FitPhase, GradientRequest, Prior
from keras_priors.priors.spatial_attention import SpatialAttention

__all__ = [
    "BOX", "MASK", "DataKey", "FitPhase",
    "Auxiliary", "BackgroundSwap", "BuildContext", "CAMSuppression", "ConfidencePenalty", "DualInput", "Energy",
    "FeatureContraction", "GradCAMPenalty", "GradientRequest", "InputGradient", "LabelSmoothing", "MaskDecoder",
    "Pretrained", "Prior", "SpatialAttention",
]
