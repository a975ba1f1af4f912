"""SpatialAttention: a sigmoid spatial gate whose map can be supervised by a part mask."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.layers._utils import check_rank
from keras_priors.validation import check_positive_int


@keras_priors_export("keras_priors.layers.SpatialAttention")
class SpatialAttention(keras.layers.Layer):
    """Spatial attention: ``a = sigmoid(conv(features))``, output ``features * a``.

    The ``attention`` output ``(B, h, w, 1)`` is in (0, 1) and can be supervised
    by a part mask (resize the mask to ``h, w`` and use binary cross-entropy),
    so the network learns to weight the part the prior points at.

    Args:
        kernel_size: size of the convolution giving the attention logits
            (1 for a per-position projection, 3 or 7 for local context).
        use_bias: whether that convolution has a bias.
        kernel_initializer: its kernel initializer.
        bias_initializer: its bias initializer.
        **kwargs: base layer arguments.

    Call arguments:
        features: a ``(B, h, w, C)`` feature map.

    Returns:
        A dict ``{"features": (B, h, w, C), "attention": (B, h, w, 1)}``.

    Example:

    >>> import numpy as np
    >>> out = SpatialAttention(kernel_size=3)(np.ones((2, 8, 8, 4), "float32"))
    >>> tuple(out["features"].shape), tuple(out["attention"].shape)
    ((2, 8, 8, 4), (2, 8, 8, 1))

    Reference:
        Woo et al., "CBAM: Convolutional Block Attention Module", ECCV 2018.
    """

    def __init__(
        self,
        kernel_size: int = 1,
        use_bias: bool = True,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_size = check_positive_int("kernel_size", kernel_size, "SpatialAttention")
        self.use_bias = bool(use_bias)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.conv = keras.layers.Conv2D(
            1,
            self.kernel_size,
            padding="same",
            use_bias=self.use_bias,
            kernel_initializer=self.kernel_initializer,
            bias_initializer=self.bias_initializer,
            dtype=self.dtype_policy,
            name="attention_logits",
        )

    def build(self, input_shape):
        check_rank("features", input_shape, 4, "SpatialAttention")
        self.conv.build(input_shape)

    def call(self, features):
        attention = ops.sigmoid(self.conv(features))
        return {"features": features * attention, "attention": attention}

    def compute_output_shape(self, input_shape):
        return {"features": tuple(input_shape), "attention": tuple(input_shape[:3]) + (1,)}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "use_bias": self.use_bias,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
            }
        )
        return config
