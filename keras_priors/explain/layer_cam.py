"""LayerCAM: every cell of the feature map weighted by its own positive gradient."""

from __future__ import annotations

from keras import ops

from keras_priors.explain.base_cam import BaseCAM


class LayerCAM(BaseCAM):
    """LayerCAM: ``relu(sum_k relu(d y_c / d A_k[i, j]) * A_k[i, j])``, upsampled and min-max normalised.

    Where Grad-CAM gives each channel one weight (its mean gradient), LayerCAM
    weighs each cell of each channel by its own gradient, negative gradients
    set to 0, which keeps fine detail when explaining shallow layers. The
    score is the pre-softmax logit of the target class by default. As
    pytorch-grad-cam's ``LayerCAM`` and tf-keras-vis's ``Layercam`` (tested
    against the latter).

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
        >>> maps = LayerCAM(model, layer="conv3")(images, targets=[0, 1])
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        ((2, 16, 16), True, True)

    Reference:
        Jiang et al., "LayerCAM: Exploring Hierarchical Class Activation Maps
        for Localization", IEEE Transactions on Image Processing 30, 2021.
    """

    uses_gradients = True

    def cache_config(self):
        """Nothing besides the model, layer and output changes the compiled functions."""
        return ()

    def get_cam_image(self, images, targets, activations, grads):
        return ops.sum(ops.relu(ops.convert_to_tensor(grads)) * activations, axis=-1)
