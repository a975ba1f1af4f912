"""Grad-CAM++: positive gradients weighted by second/third-order terms."""

from __future__ import annotations

from keras import ops

from keras_priors.explain.base_cam import BaseCAM


class GradCAMPlusPlus(BaseCAM):
    """Grad-CAM++: ``w_k = sum_ij alpha_kij * relu(g_kij)`` with the closed-form alphas.

    ``alpha = g^2 / (2 g^2 + sum_ij(A_k) g^3)`` (exponential-score approximation,
    as in the paper's code and pytorch-grad-cam); only the weights differ from
    :class:`GradCAM`.

    Args:
        model: a functional/Sequential Keras classifier.
        layer: None (last 4D layer), a name, an ``"outer/inner"`` path, or a Layer.
        output: which model output (index or name); None = "logits" or the first.
        use_logits: score the pre-softmax logit when the model ends with a softmax.
        run_eagerly: run op by op instead of one compiled function (see :class:`BaseCAM`).
        jit_compile: TensorFlow only: compile with XLA.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([
        ...     keras.Input((16, 16, 3)),
        ...     keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv3"),
        ...     keras.layers.GlobalAveragePooling2D(),
        ...     keras.layers.Dense(2),
        ... ])
        >>> images = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
        >>> maps = GradCAMPlusPlus(model)(images)   # last 4D layer, predicted classes
        >>> maps.shape
        (2, 16, 16)

    Reference:
        Chattopadhyay et al., "Grad-CAM++: Generalized Gradient-based Visual
        Explanations for Deep Convolutional Networks", WACV 2018.
    """

    uses_gradients = True

    def get_cam_weights(self, images, targets, activations, grads, eps: float = 1e-7):
        grads = ops.convert_to_tensor(grads)
        g2 = grads * grads
        g3 = g2 * grads
        sum_a = ops.sum(activations, axis=(1, 2), keepdims=True)
        alpha = g2 / (2.0 * g2 + sum_a * g3 + eps)
        alpha = ops.where(ops.not_equal(grads, 0.0), alpha, ops.zeros_like(alpha))
        return ops.sum(ops.relu(grads) * alpha, axis=(1, 2))
