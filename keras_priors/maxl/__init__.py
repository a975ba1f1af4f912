"""keras_priors.maxl: Meta AuXiliary Learning (Liu, Davison, Johns, NeurIPS 2019).

A label generator learns auxiliary labels for a multi-task network, trained by
the gradient of the primary loss after one virtual SGD step of the network
(second order, or DARTS' first-order finite-difference approximation).
``hierarchies`` turns fine class labels into coarse primary labels and
block-ordered auxiliary labels (Fashion-MNIST: tops / footwear / other).
"""

from keras_priors.maxl.hierarchies import (
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_HIERARCHY,
    fashion_mnist_hierarchy,
    hierarchy_tables,
)
from keras_priors.maxl.joint_optimizer import JointOptimizer
from keras_priors.maxl.label_generator import LabelGenerator, check_psi, hierarchy_mask, masked_softmax
from keras_priors.maxl.losses import focal_cross_entropy, label_entropy_penalty
from keras_priors.maxl.maxl_model import MAXLModel

__all__ = [
    "FASHION_MNIST_CLASSES",
    "FASHION_MNIST_HIERARCHY",
    "JointOptimizer",
    "LabelGenerator",
    "MAXLModel",
    "check_psi",
    "fashion_mnist_hierarchy",
    "focal_cross_entropy",
    "hierarchy_mask",
    "hierarchy_tables",
    "label_entropy_penalty",
    "masked_softmax",
]
