"""keras_priors.zoo: prebuilt classifiers that priors plug into.

``build(name, num_classes, input_shape, priors)`` returns a ``PriorModel``;
``list_models(pattern)`` lists the registry.
"""

from keras_priors.zoo.build import build
from keras_priors.zoo.classifier import logits_classifier
from keras_priors.zoo import evaluation
from keras_priors.zoo.evaluation import evaluate_classifier
from keras_priors.zoo.export import export_model, export_saved_model, inference_model
from keras_priors.zoo.preprocess import Preprocess
from keras_priors.zoo.prior_model import PriorModel
from keras_priors.zoo.registry import ModelSpec, get_spec, list_models, register_model
from keras_priors.zoo.weights import load_backbone_weights

__all__ = [
    "ModelSpec", "Preprocess", "PriorModel", "build", "evaluate_classifier", "evaluation", "export_model",
    "export_saved_model", "get_spec", "inference_model",
    "list_models", "load_backbone_weights", "logits_classifier", "register_model",
]
