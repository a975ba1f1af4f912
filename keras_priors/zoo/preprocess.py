"""Map images in [0, 1] to what a backbone expects."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.validation import check_one_of

_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)

MODES = ("zero_one", "scale_255", "caffe", "tf", "torch")


@keras_priors_export("keras_priors.zoo.Preprocess")
class Preprocess(keras.layers.Layer):
    """Map RGB images in [0, 1] to the range a backbone was trained with.

    Every zoo model takes images in [0, 1] (the data contract), so the
    preprocessing a backbone needs is part of the model and never guessed by
    the user, as timm records ``mean``/``std`` per model.

    Args:
        mode: ``"zero_one"`` (identity), ``"scale_255"`` (x * 255, for Keras
            models that normalise inside, e.g. EfficientNet, ConvNeXt,
            MobileNetV3), ``"caffe"`` (x * 255, RGB->BGR, minus the ImageNet
            BGR mean: ResNet50, VGG16), ``"tf"`` (x * 2 - 1: ResNet50V2,
            MobileNetV2), ``"torch"`` (ImageNet mean/std).

    Example:

    >>> import keras
    >>> import numpy as np
    >>> white = np.ones((1, 2, 2, 3), "float32")
    >>> float(keras.ops.min(Preprocess("tf")(white))), float(keras.ops.min(Preprocess("tf")(0 * white)))
    (1.0, -1.0)
    >>> black = np.asarray(Preprocess("caffe")(np.zeros((1, 1, 1, 3), "float32")))
    >>> [round(v, 2) for v in black[0, 0, 0].tolist()]   # minus the ImageNet BGR mean
    [-103.94, -116.78, -123.68]
    """

    def __init__(self, mode: str = "zero_one", **kwargs):
        super().__init__(**kwargs)
        self.mode = check_one_of("mode", mode, MODES, owner="Preprocess")

    def call(self, images):
        x = ops.cast(images, self.compute_dtype)
        if self.mode == "zero_one":
            return x
        if self.mode == "scale_255":
            return x * 255.0
        if self.mode == "tf":
            return x * 2.0 - 1.0
        if self.mode == "torch":
            mean = ops.convert_to_tensor(_IMAGENET_MEAN, self.compute_dtype)
            std = ops.convert_to_tensor(_IMAGENET_STD, self.compute_dtype)
            return (x - mean) / std
        # caffe
        x = ops.flip(x * 255.0, axis=-1)
        return x - ops.convert_to_tensor(_CAFFE_MEAN_BGR, self.compute_dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}
