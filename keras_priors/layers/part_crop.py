"""PartCrop: differentiable crop-and-resize of image regions given by boxes."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.layers._utils import check_list_of_two, check_rank, check_size


def _interpolation_matrix(start, end, in_size, out_size):
    """Bilinear weights ``(B, out_size, in_size)`` for sample points from ``start`` to ``end``.

    ``start``/``end`` are ``(B,)`` normalised coordinates; the sample points follow
    ``tf.image.crop_and_resize``: ``start * (in_size - 1)`` to ``end * (in_size - 1)``
    evenly, the centre when ``out_size == 1``. Points outside the image get zero
    weight (extrapolation).
    """
    scale = float(in_size - 1)
    start = start[:, None] * scale
    end = end[:, None] * scale
    if out_size > 1:
        steps = ops.arange(out_size, dtype="float32")[None, :] / float(out_size - 1)
        coords = start + steps * (end - start)  # (B, out)
    else:
        coords = 0.5 * (start + end)  # (B, 1)
    pixels = ops.arange(in_size, dtype="float32")[None, None, :]
    weights = ops.relu(1.0 - ops.abs(coords[:, :, None] - pixels))  # tent kernel = bilinear
    inside = ops.logical_and(coords >= 0.0, coords <= scale)
    return weights * ops.cast(inside, "float32")[:, :, None], inside


@keras_priors_export("keras_priors.layers.PartCrop")
class PartCrop(keras.layers.Layer):
    """Crop boxes out of images and resize them, differentiably (bilinear).

    Follows the ``tf.image.crop_and_resize`` convention: a box is
    ``[y1, x1, y2, x2]`` in normalised coordinates, ``y`` maps to the pixel row
    ``y * (H - 1)``, and the ``output_size`` samples are spread evenly from
    ``y1`` to ``y2`` (and ``x1`` to ``x2``). Samples outside the image take
    ``extrapolation_value``. Written with ``keras.ops`` only, as two separable
    interpolation matrices, so the gradient flows to the image **and** to the
    box coordinates (a predicted box can be trained through the crop).

    Args:
        output_size: ``(height, width)`` of the crops.
        extrapolation_value: value of samples that fall outside the image.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[images, boxes]``: ``images`` of shape ``(B, H, W, C)`` and
            ``boxes`` of shape ``(B, 4)`` (one box per image).

    Returns:
        ``(B, height, width, C)`` crops.

    Example:

    >>> import numpy as np
    >>> images = np.random.rand(2, 16, 16, 3).astype("float32")
    >>> boxes = np.array([[0, 0, 0.5, 0.5], [0.25, 0.25, 1, 1]], "float32")
    >>> tuple(PartCrop(output_size=(8, 8))([images, boxes]).shape)
    (2, 8, 8, 3)

    Reference:
        Jaderberg et al., "Spatial Transformer Networks", NeurIPS 2015 (the
        differentiable bilinear sampling).
    """

    def __init__(self, output_size: tuple[int, int], extrapolation_value: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.output_size = check_size("output_size", output_size, "PartCrop", allow_none=False)
        self.extrapolation_value = float(extrapolation_value)

    def build(self, input_shape):
        check_list_of_two("inputs", input_shape, "PartCrop")
        images_shape, boxes_shape = input_shape
        check_rank("images", images_shape, 4, "PartCrop")
        check_rank("boxes", boxes_shape, 2, "PartCrop")
        if boxes_shape[-1] is not None and boxes_shape[-1] != 4:
            raise ValueError(
                "PartCrop: Expected `boxes` of shape (B, 4) = [y1, x1, y2, x2]. "
                f"Received: boxes with shape {tuple(boxes_shape)}"
            )
        if images_shape[1] is None or images_shape[2] is None:
            raise ValueError(
                "PartCrop: Expected `images` with a known height and width. "
                f"Received: images with shape {tuple(images_shape)}"
            )

    def call(self, inputs):
        images, boxes = inputs
        height, width = images.shape[1], images.shape[2]
        out_h, out_w = self.output_size
        boxes = ops.cast(boxes, "float32")
        wy, inside_y = _interpolation_matrix(boxes[:, 0], boxes[:, 2], height, out_h)
        wx, inside_x = _interpolation_matrix(boxes[:, 1], boxes[:, 3], width, out_w)
        wy = ops.cast(wy, images.dtype)
        wx = ops.cast(wx, images.dtype)
        # crops[b, i, j, c] = sum_{h, w} wy[b, i, h] * images[b, h, w, c] * wx[b, j, w], as two matmuls
        x = ops.transpose(images, (0, 3, 1, 2))  # (B, C, H, W)
        x = ops.matmul(ops.matmul(wy[:, None], x), ops.transpose(wx, (0, 2, 1))[:, None])  # (B, C, h, w)
        crops = ops.transpose(x, (0, 2, 3, 1))
        if self.extrapolation_value != 0.0:
            inside = ops.logical_and(inside_y[:, :, None], inside_x[:, None, :])[..., None]
            crops = ops.where(inside, crops, ops.cast(self.extrapolation_value, crops.dtype))
        return crops

    def compute_output_shape(self, input_shape):
        images_shape = input_shape[0]
        return (images_shape[0], self.output_size[0], self.output_size[1], images_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update({"output_size": self.output_size, "extrapolation_value": self.extrapolation_value})
        return config
