"""MaskDecoderHead: a light FPN-style decoder that predicts part/object mask logits."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.layers._utils import check_rank, check_size
from keras_priors.validation import check_positive_int


@keras_priors_export("keras_priors.layers.MaskDecoderHead")
class MaskDecoderHead(keras.layers.Layer):
    """Decode mask logits from one to several backbone feature levels (FPN / U-Net style).

    Each level gets a lateral 1x1 convolution to ``filters`` channels; from the
    coarsest level down, the running map is upsampled (nearest neighbour, as in FPN) to the next
    finer level and added to it; a 3x3 convolution (ReLU) smooths the finest
    map and a 1x1 convolution gives ``num_masks`` logits, optionally resized to
    ``output_size``. Train it jointly with the classifier on a mask loss with
    ``from_logits=True`` (prior 3, "the model reproduces the prior"); it is
    dropped at export.

    Args:
        filters: channels of the lateral and smoothing convolutions.
        num_masks: number of mask logit channels.
        output_size: ``None`` (the finest level's size) or ``(height, width)``.
        kernel_initializer: initializer of all convolution kernels.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: a list of feature maps ordered fine to coarse, e.g.
            ``[P3 (B, 16, 16, C3), P4 (B, 8, 8, C4), P5 (B, 4, 4, C5)]``, or
            a single ``(B, h, w, C)`` map.

    Returns:
        ``(B, h, w, num_masks)`` mask logits (``h, w`` of the finest level or
        ``output_size``).

    Example:

    >>> import numpy as np
    >>> head = MaskDecoderHead(filters=8, output_size=(32, 32))
    >>> p3, p4 = np.ones((1, 8, 8, 4), "float32"), np.ones((1, 4, 4, 6), "float32")
    >>> tuple(head([p3, p4]).shape)
    (1, 32, 32, 1)

    Reference:
        Lin et al., "Feature Pyramid Networks for Object Detection", CVPR 2017.
    """

    def __init__(
        self,
        filters: int = 32,
        num_masks: int = 1,
        output_size: tuple[int, int] | None = None,
        kernel_initializer="he_normal",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = check_positive_int("filters", filters, "MaskDecoderHead")
        self.num_masks = check_positive_int("num_masks", num_masks, "MaskDecoderHead")
        self.output_size = check_size("output_size", output_size, "MaskDecoderHead")
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.laterals = []

    def _conv(self, filters, kernel_size, name, activation=None):
        return keras.layers.Conv2D(
            filters,
            kernel_size,
            padding="same",
            activation=activation,
            kernel_initializer=keras.initializers.get(keras.initializers.serialize(self.kernel_initializer)),
            dtype=self.dtype_policy,
            name=name,
        )

    @staticmethod
    def _as_shape_list(input_shape):
        if isinstance(input_shape, (list, tuple)) and input_shape and isinstance(input_shape[0], (list, tuple)):
            return [tuple(s) for s in input_shape]
        return [tuple(input_shape)]

    def build(self, input_shape):
        shapes = self._as_shape_list(input_shape)
        for i, shape in enumerate(shapes):
            check_rank(f"inputs[{i}]", shape, 4, "MaskDecoderHead")
        for i in range(1, len(shapes)):
            finer, coarser = shapes[i - 1], shapes[i]
            if all(d is not None for d in finer[1:3] + coarser[1:3]) and (
                coarser[1] > finer[1] or coarser[2] > finer[2]
            ):
                raise ValueError(
                    "MaskDecoderHead: Expected `inputs` ordered fine to coarse (spatial size non-increasing). "
                    f"Received: inputs[{i - 1}] with shape {finer} before inputs[{i}] with shape {coarser}"
                )
        # === Layers ===
        self.laterals = []
        for i, shape in enumerate(shapes):
            conv = self._conv(self.filters, 1, f"lateral_{i}")
            conv.build(shape)
            self.laterals.append(conv)
        fine_shape = shapes[0][:3] + (self.filters,)
        self.smooth = self._conv(self.filters, 3, "smooth", activation="relu")
        self.smooth.build(fine_shape)
        self.classifier = self._conv(self.num_masks, 1, "mask_logits")
        self.classifier.build(fine_shape)

    def call(self, inputs):
        levels = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        laterals = [conv(x) for conv, x in zip(self.laterals, levels)]
        x = laterals[-1]
        for lateral in reversed(laterals[:-1]):
            size = (lateral.shape[1], lateral.shape[2])
            x = _upsample_to(x, size)
            x = x + lateral
        x = self.smooth(x)
        logits = self.classifier(x)
        if self.output_size is not None:
            logits = ops.image.resize(logits, self.output_size, interpolation="bilinear")
        return logits

    def compute_output_shape(self, input_shape):
        fine = self._as_shape_list(input_shape)[0]
        h, w = self.output_size if self.output_size is not None else (fine[1], fine[2])
        return (fine[0], h, w, self.num_masks)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "num_masks": self.num_masks,
                "output_size": self.output_size,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


def _upsample_to(x, size):
    """Nearest-neighbour upsampling to ``size`` (the FPN top-down choice, Lin et al. 2017).

    Integer factors use ``repeat``, which keeps float16 in float16: a bilinear
    resize computes in float32 and, under mixed precision with XLA, its
    gradient meets float16 gradients in one sum that XLA rejects.
    """
    h, w = x.shape[1], x.shape[2]
    if h == size[0] and w == size[1]:
        return x
    if h and w and size[0] % h == 0 and size[1] % w == 0:
        return ops.repeat(ops.repeat(x, size[0] // h, axis=1), size[1] // w, axis=2)
    return ops.image.resize(x, size, interpolation="nearest")
