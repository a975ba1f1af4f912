"""Grad-CAM++: positive gradients weighted by second/third-order terms."""

from __future__ import annotations

from keras import ops

from keras_priors.explain.base_cam import BaseCAM, explainer_docstring
from keras_priors.validation import check_one_of

#: Values of ``GradCAMPlusPlus(alpha_normalization=...)``.
ALPHA_NORMALIZATIONS = ("authors", "none")


@explainer_docstring
class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++: ``w_k = sum_ij alpha_kij * relu(g_kij)`` with the closed-form alphas.

    ``alpha_kij = g^2 / (2 g^2 + sum_ij(A_k) g^3)`` (the exponential-score
    approximation of the paper, ``g = d y_c / d A_k[i, j]``); only the weights
    differ from :class:`GradCAM`. ``alpha_normalization`` chooses between the
    two versions in use:

    * ``"authors"`` (default): as the authors' code (adityac94/Grad_CAM_plus_plus,
      ``misc/utils.py``): a zero denominator is replaced by 1, then each
      channel's alphas are divided by their spatial sum, ``alpha_kij / sum_ij
      alpha_kij``. Their code also multiplies the gradients by ``exp(y_c)``;
      that factor cancels in the alphas and scales every weight of an image by
      the same positive number, which the min-max normalisation of the map
      removes, so it is left out (it would overflow float32 for ``y_c > 88``).
      A channel whose alphas sum to 0 (no gradient) gets weight 0 where their
      code divides 0 by 0.
    * ``"none"``: the unnormalised alphas, ``g^2 / (2 g^2 + sum_ij(A_k) g^3 + 1e-7)``,
      0 where ``g == 0``, as pytorch-grad-cam (this class's formula up to
      keras-priors 0.1).

    On a ``GAP -> Dense`` head (constant gradients per channel) the authors'
    weights are ``relu(W[k, c]) / (h w)``, i.e. Grad-CAM with negative weights
    dropped.

    Args:
        {model_args}
        alpha_normalization: ``"authors"`` (default) or ``"none"``, see above.
        {compile_args}

    Example:
        {example_model}
        >>> maps = GradCAMPlusPlus(model)(images)   # last 4D layer, predicted classes
        >>> maps.shape
        (2, 16, 16)

    Reference:
        Chattopadhyay et al., "Grad-CAM++: Generalized Gradient-based Visual
        Explanations for Deep Convolutional Networks", WACV 2018.
    """

    uses_gradients = True

    def __init__(self, model, layer=None, output=None, use_logits: bool = True,
                 alpha_normalization: str = "authors", run_eagerly: bool = False, jit_compile: bool = False):
        self.alpha_normalization = check_one_of("alpha_normalization", alpha_normalization,
                                                ALPHA_NORMALIZATIONS, "GradCAMPlusPlus")
        super().__init__(model, layer=layer, output=output, use_logits=use_logits, run_eagerly=run_eagerly,
                         jit_compile=jit_compile)

    def cache_config(self):
        """``alpha_normalization`` changes the compiled weights."""
        return (self.alpha_normalization,)

    def get_cam_weights(self, images, targets, activations, grads, eps: float = 1e-7):
        grads = ops.convert_to_tensor(grads)
        g2 = grads * grads
        g3 = g2 * grads
        sum_a = ops.sum(activations, axis=(1, 2), keepdims=True)
        if self.alpha_normalization == "none":
            alpha = g2 / (2.0 * g2 + sum_a * g3 + eps)
            alpha = ops.where(ops.not_equal(grads, 0.0), alpha, ops.zeros_like(alpha))
            return ops.sum(ops.relu(grads) * alpha, axis=(1, 2))
        denom = 2.0 * g2 + sum_a * g3
        denom = ops.where(ops.not_equal(denom, 0.0), denom, ops.ones_like(denom))
        alpha = g2 / denom
        total = ops.sum(alpha, axis=(1, 2), keepdims=True)
        alpha = alpha / ops.where(ops.not_equal(total, 0.0), total, ops.ones_like(total))
        return ops.sum(ops.relu(grads) * alpha, axis=(1, 2))
