"""LayerCAM: every cell of the feature map weighted by its own positive gradient."""

from __future__ import annotations

from keras import ops

from keras_priors.explain.base_cam import BaseCAM, explainer_docstring


@explainer_docstring
class LayerCAM(BaseCAM):
    """LayerCAM: ``relu(sum_k relu(d y_c / d A_k[i, j]) * A_k[i, j])``, upsampled and min-max normalised.

    Where Grad-CAM gives each channel one weight (its mean gradient), LayerCAM
    weighs each cell of each channel by its own gradient, negative gradients
    set to 0, which keeps fine detail when explaining shallow layers. The
    score is the pre-softmax logit of the target class by default. As
    pytorch-grad-cam's ``LayerCAM`` and tf-keras-vis's ``Layercam`` (tested
    against the latter).

    Args:
        {model_args}
        {compile_args}

    Example:
        {example_model}
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
