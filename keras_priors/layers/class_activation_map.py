"""ClassActivationMap: class activation maps from a feature map and a classifier kernel."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.layers._utils import check_list_of_two, check_rank, check_size
from keras_priors.validation import check_class_id, check_one_of, renamed_arguments

_NORMALIZE = (None, "relu", "minmax", "relu_max")


@keras_priors_export("keras_priors.layers.ClassActivationMap")
class ClassActivationMap(keras.layers.Layer):
    """Class activation maps of a GAP + Dense classifier, from its features and kernel.

    ``cam[b, i, j, k] = sum_c features[b, i, j, c] * kernel[c, k]``: the evidence
    for class ``k`` at each position, whose spatial mean plus the dense bias is
    the logit. The layer has no weights: the kernel is an input, so it is
    serialized with the model that owns it, never copied into this layer. Use
    ``cam_from_dense(features, dense_layer)`` to take the kernel from a trained
    ``keras.layers.Dense``; to get a CAM output inside a functional model, use
    ``CAMHead`` as the classifier head.

    The kernel is either shared, ``(C, K)``, or per sample, ``(B, C, K)`` (for
    example Grad-CAM channel weights).

    A single-logit binary kernel (``K == 1``, sigmoid output) gives one map whose
    positive values are evidence for class 1 and negative values evidence for
    class 0: ``class_id=1`` returns it as is, ``class_id=0`` returns its
    negation, so both classes are read the same way as in the multi-class case.

    Args:
        normalize: ``None`` (raw evidence), ``"relu"`` (positive evidence only),
            ``"minmax"`` (each map of each sample scaled to [0, 1]) or
            ``"relu_max"`` (positive evidence divided by its maximum, the
            Grad-CAM convention).
        upsample_size: ``None`` or ``(height, width)``: bilinear resize of the
            maps (before normalization).
        class_id: ``None`` to return all ``K`` maps, or one class to return a
            single ``(B, h, w, 1)`` map (see the single-logit rule above); the
            name Keras metrics use (``keras.metrics.Precision(class_id=...)``).
            (``class_index`` before 0.2: still accepted, with a
            ``DeprecationWarning``; saved configs with it load.)
        epsilon: added to denominators of the normalizations.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[features, kernel]`` with ``features`` of shape ``(B, h, w, C)``
            and ``kernel`` of shape ``(C, K)`` or ``(B, C, K)``.

    Returns:
        ``(B, h, w, K)`` maps (``(B, h, w, 1)`` with ``class_id``).

    Example:

    >>> import numpy as np
    >>> features = np.ones((2, 4, 4, 8), "float32")
    >>> kernel = np.ones((8, 3), "float32")
    >>> tuple(ClassActivationMap()([features, kernel]).shape)
    (2, 4, 4, 3)

    Reference:
        Zhou et al., "Learning Deep Features for Discriminative Localization",
        CVPR 2016.
    """

    @renamed_arguments(class_index="class_id")
    def __init__(
        self,
        normalize: str | None = None,
        upsample_size: tuple[int, int] | None = None,
        class_id: int | None = None,
        epsilon: float = 1e-7,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.normalize = (check_one_of("normalize", normalize, _NORMALIZE[1:], "ClassActivationMap")
                          if normalize is not None else None)
        self.upsample_size = check_size("upsample_size", upsample_size, "ClassActivationMap")
        self.class_id = check_class_id(class_id, "ClassActivationMap")
        self.epsilon = float(epsilon)

    def build(self, input_shape):
        check_list_of_two("inputs", input_shape, "ClassActivationMap")
        features_shape, kernel_shape = input_shape
        check_rank("features", features_shape, 4, "ClassActivationMap")
        check_rank("kernel", kernel_shape, (2, 3), "ClassActivationMap")
        c_feat, c_kernel = features_shape[-1], kernel_shape[-2]
        if c_feat is not None and c_kernel is not None and c_feat != c_kernel:
            raise ValueError(
                "ClassActivationMap: Expected `kernel` to have as many rows as `features` has channels. "
                f"Received: features channels={c_feat}, kernel shape={tuple(kernel_shape)}"
            )
        k = kernel_shape[-1]
        if self.class_id is not None and k is not None and k > 1 and self.class_id >= k:
            raise ValueError(
                f"ClassActivationMap: Expected `class_id` < {k} (the kernel's classes). "
                f"Received: class_id={self.class_id}"
            )
        if self.class_id is not None and k == 1 and self.class_id > 1:
            raise ValueError(
                "ClassActivationMap: Expected `class_id` in {0, 1} for a single-logit kernel. "
                f"Received: class_id={self.class_id}"
            )

    def call(self, inputs):
        features, kernel = inputs
        kernel = ops.cast(kernel, features.dtype)
        if len(kernel.shape) == 3:
            cam = ops.einsum("bhwc,bck->bhwk", features, kernel)
        else:
            cam = ops.matmul(features, kernel)
        if self.class_id is not None:
            if kernel.shape[-1] == 1:
                cam = cam if self.class_id == 1 else -cam
            else:
                cam = cam[..., self.class_id : self.class_id + 1]
        if self.upsample_size is not None:
            cam = ops.image.resize(cam, self.upsample_size, interpolation="bilinear")
        return self._normalize(cam)

    def _normalize(self, cam):
        if self.normalize is None:
            return cam
        if self.normalize in ("relu", "relu_max"):
            cam = ops.relu(cam)
            if self.normalize == "relu":
                return cam
            return cam / (ops.max(cam, axis=(1, 2), keepdims=True) + self.epsilon)
        low = ops.min(cam, axis=(1, 2), keepdims=True)
        high = ops.max(cam, axis=(1, 2), keepdims=True)
        return (cam - low) / (high - low + self.epsilon)

    def compute_output_shape(self, input_shape):
        features_shape, kernel_shape = input_shape
        batch, h, w = features_shape[0], features_shape[1], features_shape[2]
        if self.upsample_size is not None:
            h, w = self.upsample_size
        k = 1 if self.class_id is not None else kernel_shape[-1]
        return (batch, h, w, k)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "normalize": self.normalize,
                "upsample_size": self.upsample_size,
                "class_id": self.class_id,
                "epsilon": self.epsilon,
            }
        )
        return config


@keras_priors_export("keras_priors.layers.cam_from_dense")
@renamed_arguments(class_index="class_id")
def cam_from_dense(
    features,
    dense_layer: keras.layers.Layer,
    normalize: str | None = None,
    upsample_size: tuple[int, int] | None = None,
    class_id: int | None = None,
):
    """Class activation maps of ``features`` under a trained ``Dense`` classifier.

    Meant for eager use (explaining a trained GAP + Dense model, or inside a
    layer's ``call``): ``features`` is the last feature map the pooling reads.

    Args:
        features: a ``(B, h, w, C)`` feature map (array or tensor, not a
            symbolic ``keras.Input``).
        dense_layer: a built layer with a ``kernel`` of shape ``(C, K)``
            (``keras.layers.Dense`` or ``CAMHead``).
        normalize: see ``ClassActivationMap``.
        upsample_size: see ``ClassActivationMap``.
        class_id: see ``ClassActivationMap`` (single-logit heads: ``0`` gives
            the negated map, the evidence for class 0). (``class_index``
            before 0.2: still accepted, with a ``DeprecationWarning``.)

    Returns:
        The ``(B, h, w, K)`` maps, or ``(B, h, w, 1)`` with ``class_id``.

    Example:

    >>> import numpy as np, keras
    >>> dense = keras.layers.Dense(2)
    >>> _ = dense(np.zeros((1, 8), "float32"))
    >>> tuple(cam_from_dense(np.ones((1, 4, 4, 8), "float32"), dense).shape)
    (1, 4, 4, 2)
    """
    if isinstance(features, keras.KerasTensor):
        raise TypeError(
            "cam_from_dense: Expected `features` to be a concrete tensor or array. Received: a symbolic "
            "KerasTensor. Inside a functional model use `keras_priors.layers.CAMHead` as the head."
        )
    kernel = getattr(dense_layer, "kernel", None)
    if kernel is None:
        raise ValueError(
            "cam_from_dense: Expected `dense_layer` to be a built layer with a `kernel`. "
            f"Received: {dense_layer!r}"
        )
    layer = ClassActivationMap(normalize=normalize, upsample_size=upsample_size, class_id=class_id)
    return layer([ops.convert_to_tensor(features), ops.convert_to_tensor(kernel)])
