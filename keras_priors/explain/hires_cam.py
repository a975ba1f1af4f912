"""HiResCAM: the feature map times the gradient, cell by cell, summed over channels."""

from __future__ import annotations

from keras import ops

from keras_priors.explain.base_cam import BaseCAM, explainer_docstring


@explainer_docstring
class HiResCAM(BaseCAM):
    """HiResCAM: ``relu(sum_k (d y_c / d A_k[i, j]) * A_k[i, j])``, upsampled and min-max normalised.

    Grad-CAM averages the gradients over space before weighing the channels;
    HiResCAM does not: the map is the elementwise product of gradient and
    feature map summed over channels, so (for a head that is linear in the
    feature map, e.g. ``Flatten -> Dense``) the map before the relu, summed
    over cells, is the class score minus the bias: each cell shows the part
    of the score it contributes. With a ``GAP -> Dense`` head the gradients are constant over
    space and HiResCAM equals Grad-CAM. As pytorch-grad-cam's ``HiResCAM``.

    Args:
        {model_args}
        {compile_args}

    Example:
        {example_model}
        >>> maps = HiResCAM(model)(images, targets=0)
        >>> from keras_priors.explain import GradCAM   # GAP -> Dense head: the same maps as Grad-CAM
        >>> bool(np.allclose(maps, GradCAM(model)(images, targets=0), atol=1e-4))
        True

    Reference:
        Draelos & Carin, "Use HiResCAM instead of Grad-CAM for faithful
        explanations of convolutional neural networks", arXiv:2011.08891, 2020.
    """

    uses_gradients = True

    def cache_config(self):
        """Nothing besides the model, layer and output changes the compiled functions."""
        return ()

    def get_cam_image(self, images, targets, activations, grads):
        return ops.sum(ops.convert_to_tensor(grads) * activations, axis=-1)
