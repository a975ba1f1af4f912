"""XGradCAM: channel weights are the activation-weighted average of the gradients."""

from __future__ import annotations

from keras import ops

from keras_priors.explain.base_cam import BaseCAM, explainer_docstring


@explainer_docstring
class XGradCAM(BaseCAM):
    """XGradCAM: ``w_k = sum_ij(g_kij A_kij) / (sum_ij A_kij + eps)``, ``g = d y_c / d A``.

    Grad-CAM's plain spatial mean of the gradient is replaced by a mean
    weighted by the normalised activation, the choice for which the map
    satisfies the paper's sensitivity and conservation axioms best. ``eps``
    is ``1e-7``, as pytorch-grad-cam's ``XGradCAM``. With a ``GAP -> Dense``
    head (constant gradients per channel) the weights are ``W[k, c] / (h w)``
    times ``sum A_k / (sum A_k + eps)``, i.e. Grad-CAM's weights except for
    all-zero channels.

    Args:
        {model_args}
        {compile_args}

    Example:
        {example_model}
        >>> maps = XGradCAM(model)(images)   # the predicted classes
        >>> maps.shape
        (2, 16, 16)

    Reference:
        Fu et al., "Axiom-based Grad-CAM: Towards Accurate Visualization and
        Explanation of CNNs", BMVC 2020.
    """

    uses_gradients = True

    def cache_config(self):
        """Nothing besides the model, layer and output changes the compiled functions."""
        return ()

    def get_cam_weights(self, images, targets, activations, grads, eps: float = 1e-7):
        activations = ops.convert_to_tensor(activations)
        total = ops.sum(activations, axis=(1, 2))
        return ops.sum(ops.convert_to_tensor(grads) * activations, axis=(1, 2)) / (total + eps)
