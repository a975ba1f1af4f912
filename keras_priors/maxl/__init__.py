"""keras_priors.maxl: Meta AuXiliary Learning (Liu, Davison, Johns, NeurIPS 2019).

A label generator learns auxiliary labels for a multi-task network, trained by
the gradient of the primary loss after one virtual SGD step of the network
(second order, or DARTS' first-order finite-difference approximation).
"""

from keras_priors.maxl.joint_optimizer import JointOptimizer
from keras_priors.maxl.label_generator import LabelGenerator, check_psi, hierarchy_mask, masked_softmax
from keras_priors.maxl.losses import focal_cross_entropy, label_entropy_penalty
from keras_priors.maxl.maxl_model import MAXLModel

__all__ = [
    "JointOptimizer",
    "LabelGenerator",
    "MAXLModel",
    "check_psi",
    "focal_cross_entropy",
    "hierarchy_mask",
    "label_entropy_penalty",
    "masked_softmax",
]
