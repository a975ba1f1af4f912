"""Grad-CAM: channel weights are the spatially averaged gradients of the class score."""

from __future__ import annotations

from keras import ops

from keras_priors.explain.base_cam import BaseCAM, explainer_docstring


@explainer_docstring
class GradCAM(BaseCAM):
    """Grad-CAM: ``relu(sum_k mean_ij(d y_c / d A_k[i, j]) * A_k)``, upsampled and min-max normalised.

    Gradients are taken with ``tf.GradientTape`` on TensorFlow and ``jax.vjp`` on
    JAX, as a function of the feature map, so the same code explains nested
    models. The score is the pre-softmax logit of the target class by default.
    On a ``GAP -> Dense`` head the weights are ``W[:, c] / (h * w)`` and the map
    equals :class:`CAM` after normalisation.

    Args:
        {model_args}
        {compile_args}

    Example:
        {example_model}
        >>> maps = GradCAM(model, layer="conv3")(images, targets=0)
        >>> maps.shape
        (2, 16, 16)
        >>> from keras_priors.explain import CAM   # GAP -> Dense head: the same maps as CAM
        >>> bool(np.allclose(maps, CAM(model)(images, targets=0), atol=1e-4))
        True

    Reference:
        Selvaraju et al., "Grad-CAM: Visual Explanations from Deep Networks via
        Gradient-based Localization", ICCV 2017.
    """

    uses_gradients = True

    def cache_config(self):
        """Nothing besides the model, layer and output changes the compiled functions."""
        return ()

    def get_cam_weights(self, images, targets, activations, grads):
        return ops.mean(grads, axis=(1, 2))
