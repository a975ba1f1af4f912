"""CAMHead: a GAP + Dense classifier head that also returns its class activation map."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.layers._utils import check_rank, check_size
from keras_priors.validation import check_fraction, check_positive_int


@keras_priors_export("keras_priors.layers.CAMHead")
class CAMHead(keras.layers.Layer):
    """A CAM-friendly classifier head: logits and class activation map in one pass.

    The head is exactly global average pooling followed by a dense layer, written
    the other way round: first a 1x1 projection of every position of the feature
    map onto the classes (the class activation map, no bias), then the spatial
    mean plus the bias. So ``logits == mean(cam, axis=(1, 2)) + bias`` holds
    exactly at inference, and a CAM constraint on ``cam`` acts on the same
    numbers the classifier uses.

    With ``num_classes=1`` (a single-logit binary head trained with sigmoid
    cross-entropy), positive CAM values are evidence for class 1 and negative
    values are evidence for class 0.

    Args:
        num_classes: number of logits ``K`` (``1`` for a single-logit binary head).
        use_bias: whether the logits get a bias.
        dropout: dropout rate applied to the features before the projection,
            in training only.
        upsample_size: ``None`` or ``(height, width)``. When given, the returned
            ``cam`` is bilinearly resized to that size (the logits are still the
            mean of the un-resized map plus the bias).
        kernel_initializer: initializer of the ``(C, K)`` kernel.
        bias_initializer: initializer of the ``(K,)`` bias.
        kernel_regularizer: optional regularizer of the kernel.
        **kwargs: base layer arguments (``name``, ``dtype``, ...).

    Call arguments:
        features: a ``(B, h, w, C)`` feature map.
        training: whether dropout is active.

    Returns:
        A dict ``{"logits": (B, K), "cam": (B, h, w, K)}`` (``cam`` is
        ``(B, H, W, K)`` with ``upsample_size=(H, W)``).

    Example:

    >>> import numpy as np
    >>> head = CAMHead(num_classes=3)
    >>> out = head(np.ones((2, 4, 4, 8), "float32"))
    >>> tuple(out["logits"].shape), tuple(out["cam"].shape)
    ((2, 3), (2, 4, 4, 3))

    Reference:
        Zhou et al., "Learning Deep Features for Discriminative Localization",
        CVPR 2016.
    """

    def __init__(
        self,
        num_classes: int,
        use_bias: bool = True,
        dropout: float = 0.0,
        upsample_size: tuple[int, int] | None = None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        # === Config ===
        self.num_classes = check_positive_int("num_classes", num_classes, "CAMHead")
        self.use_bias = bool(use_bias)
        self.dropout = check_fraction("dropout", dropout, "CAMHead")
        if self.dropout >= 1.0:
            raise ValueError(f"CAMHead: Expected `dropout` in [0, 1). Received: dropout={dropout!r}")
        self.upsample_size = check_size("upsample_size", upsample_size, "CAMHead")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        # === Layers ===
        self.dropout_layer = keras.layers.Dropout(self.dropout) if self.dropout > 0 else None

    def build(self, input_shape):
        check_rank("features", input_shape, 4, "CAMHead")
        channels = input_shape[-1]
        if channels is None:
            raise ValueError(
                f"CAMHead: Expected `features` to have a known channel dimension. Received: shape {tuple(input_shape)}"
            )
        self.kernel = self.add_weight(
            name="kernel",
            shape=(channels, self.num_classes),
            initializer=self.kernel_initializer,
            regularizer=self.kernel_regularizer,
        )
        if self.use_bias:
            self.bias = self.add_weight(name="bias", shape=(self.num_classes,), initializer=self.bias_initializer)
        else:
            self.bias = None

    def call(self, features, training=None):
        x = features
        if self.dropout_layer is not None:
            x = self.dropout_layer(x, training=training)
        cam = ops.matmul(x, self.kernel)  # (B, h, w, K): a 1x1 conv without bias
        logits = ops.mean(cam, axis=(1, 2))
        if self.bias is not None:
            logits = logits + self.bias
        if self.upsample_size is not None:
            cam = ops.image.resize(cam, self.upsample_size, interpolation="bilinear")
        return {"logits": logits, "cam": cam}

    def compute_output_shape(self, input_shape):
        batch, h, w = input_shape[0], input_shape[1], input_shape[2]
        if self.upsample_size is not None:
            h, w = self.upsample_size
        return {"logits": (batch, self.num_classes), "cam": (batch, h, w, self.num_classes)}

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "use_bias": self.use_bias,
                "dropout": self.dropout,
                "upsample_size": self.upsample_size,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
                "bias_initializer": keras.initializers.serialize(self.bias_initializer),
                "kernel_regularizer": keras.regularizers.serialize(self.kernel_regularizer),
            }
        )
        return config
