"""keras_priors.explain: see what a classifier looks at.

One interface for all: ``explainer(images, targets=None) -> maps`` (numpy float32
(B, H, W) in [0, 1] at image resolution). Works on functional and Sequential
models, including ones with a nested backbone model (``layer="backbone/conv5"``)
and zoo classifiers (``CAMHead``, multi-output backbones). Each explainer compiles
its work once per image size (``tf.function`` / ``jax.jit``) and caches it on
the model, so a new explainer of the same model, layer and method reuses it;
``run_eagerly=True`` runs op by op.
"""

from keras_priors.explain.ablation_cam import AblationCAM
from keras_priors.explain.base_cam import BaseCAM
from keras_priors.explain.cam import CAM
from keras_priors.explain.eigen_cam import EigenCAM
from keras_priors.explain.grad_cam import GradCAM
from keras_priors.explain.grad_cam_plus_plus import GradCAMPlusPlus
from keras_priors.explain.hires_cam import HiResCAM
from keras_priors.explain.layer_cam import LayerCAM
from keras_priors.explain.lcam import LCAM, LCAMTrainer, lcam_objective
from keras_priors.explain.metrics import (
    average_drop_increase_confidence,
    box_masks,
    deletion_insertion,
    energy_in_mask,
    energy_pointing_game,
    metric_legend,
    noisy_linear_imputation,
    pointing_game,
    relevance_mass_accuracy,
    road,
)
from keras_priors.explain.overlay import overlay
from keras_priors.explain.registry import EXPLAINERS, get_explainer
from keras_priors.explain.resize_cam import resize_cam
from keras_priors.explain.score_cam import ScoreCAM
from keras_priors.explain.xgrad_cam import XGradCAM

__all__ = [
    "BaseCAM",
    "CAM",
    "GradCAM",
    "GradCAMPlusPlus",
    "ScoreCAM",
    "LayerCAM",
    "HiResCAM",
    "XGradCAM",
    "EigenCAM",
    "AblationCAM",
    "LCAM",
    "LCAMTrainer",
    "lcam_objective",
    "average_drop_increase_confidence",
    "deletion_insertion",
    "energy_in_mask",
    "energy_pointing_game",
    "pointing_game",
    "relevance_mass_accuracy",
    "road",
    "noisy_linear_imputation",
    "box_masks",
    "metric_legend",
    "overlay",
    "resize_cam",
    "get_explainer",
    "EXPLAINERS",
]
