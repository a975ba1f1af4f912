"""DualStream: one backbone over the whole image and the part crop, pooled and fused late."""

from __future__ import annotations

import copy

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.layers._utils import check_list_of_two, check_rank
from keras_priors.layers.dual_input_fusion import DualInputFusion
from keras_priors.validation import check_one_of

_POOLING = (None, "avg", "max")


@keras_priors_export("keras_priors.layers.DualStream")
class DualStream(keras.layers.Layer):
    """Two-stream input prior: a backbone sees the whole image and the part crop.

    ``shared=True`` calls the same backbone object on both inputs (one set of
    weights); ``shared=False`` gives the part stream its own copy
    (``keras.models.clone_model``, fresh weights unless ``copy_weights``).
    Each stream's feature map is pooled (``pooling``) and the two are fused
    with a ``DualInputFusion`` (``fusion``, ``projection_dim``).

    The backbone is a nested model: it is serialized in ``get_config`` and
    rebuilt in ``from_config``, and its weights (both copies when not shared)
    travel in the ``.keras`` file.

    Args:
        backbone: a ``keras.Model`` mapping an image to a feature map
            ``(B, h, w, C)`` (or to vectors ``(B, C)``).
        shared: share the backbone weights between the two streams.
        pooling: ``"avg"``, ``"max"`` or ``None`` (keep maps; both streams must
            then give the same spatial size).
        fusion: fusion mode, see ``DualInputFusion``.
        projection_dim: see ``DualInputFusion``.
        copy_weights: with ``shared=False``, start the part stream from the
            backbone's current weights instead of a fresh initialization.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[images, part_crops]``, e.g. ``(B, 64, 64, 3)`` and
            ``(B, 32, 32, 3)`` (the backbone must accept both sizes).

    Returns:
        The fused features, e.g. ``(B, 2 * C)`` for ``fusion="concat"``.

    Example:

    >>> import numpy as np, keras
    >>> inp = keras.Input((None, None, 3))
    >>> backbone = keras.Model(inp, keras.layers.Conv2D(4, 3)(inp))
    >>> stream = DualStream(backbone, shared=True, fusion="sum")
    >>> x, part = np.ones((2, 16, 16, 3), "float32"), np.ones((2, 8, 8, 3), "float32")
    >>> tuple(stream([x, part]).shape)
    (2, 4)

    Reference:
        Zhang et al., "Part-based R-CNNs for Fine-grained Category Detection",
        ECCV 2014 (whole object + part streams, fused late).
    """

    def __init__(
        self,
        backbone: keras.Model,
        shared: bool = True,
        pooling: str | None = "avg",
        fusion: str = "concat",
        projection_dim: int | None = None,
        copy_weights: bool = False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if isinstance(backbone, dict):
            backbone = keras.saving.deserialize_keras_object(copy.deepcopy(backbone))
        if not isinstance(backbone, keras.Model):
            raise ValueError(
                "DualStream: Expected `backbone` to be a keras.Model. "
                f"Received: backbone of type {type(backbone).__name__}"
            )
        self.shared = bool(shared)
        self.pooling = check_one_of("pooling", pooling, _POOLING[1:], "DualStream") if pooling is not None else None
        self.copy_weights = bool(copy_weights)
        # === Layers ===
        self.backbone = backbone
        if self.shared:
            self.part_backbone = backbone
        else:
            self.part_backbone = keras.models.clone_model(backbone)
            if self.copy_weights:
                if not self.part_backbone.built:
                    raise ValueError("DualStream: `copy_weights=True` needs a built backbone.")
                self.part_backbone.set_weights(backbone.get_weights())
        self.fusion = DualInputFusion(fusion=fusion, projection_dim=projection_dim, dtype=self.dtype_policy,
                                      name="fusion")

    def _pool(self, x):
        if len(x.shape) != 4 or self.pooling is None:
            return x
        if self.pooling == "avg":
            return ops.mean(x, axis=(1, 2))
        return ops.max(x, axis=(1, 2))

    def _pooled_shape(self, shape):
        shape = tuple(shape)
        if len(shape) != 4 or self.pooling is None:
            return shape
        return (shape[0], shape[-1])

    def build(self, input_shape):
        check_list_of_two("inputs", input_shape, "DualStream")
        image_shape, part_shape = (tuple(s) for s in input_shape)
        check_rank("images", image_shape, 4, "DualStream")
        check_rank("part_crops", part_shape, 4, "DualStream")
        feat_a = self._pooled_shape(self.backbone.compute_output_shape(image_shape))
        feat_b = self._pooled_shape(self.part_backbone.compute_output_shape(part_shape))
        self.fusion.build([feat_a, feat_b])

    def call(self, inputs, training=None):
        images, parts = inputs
        a = self._pool(self.backbone(images, training=training))
        b = self._pool(self.part_backbone(parts, training=training))
        return self.fusion([a, b])

    def compute_output_shape(self, input_shape):
        image_shape, part_shape = (tuple(s) for s in input_shape)
        feat_a = self._pooled_shape(self.backbone.compute_output_shape(image_shape))
        feat_b = self._pooled_shape(self.part_backbone.compute_output_shape(part_shape))
        return self.fusion.compute_output_shape([feat_a, feat_b])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "shared": self.shared,
                "pooling": self.pooling,
                "fusion": self.fusion.fusion,
                "projection_dim": self.fusion.projection_dim,
                "copy_weights": self.copy_weights,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if isinstance(config.get("backbone"), dict):
            # deserialization consumes the nested config: work on a copy
            config["backbone"] = keras.saving.deserialize_keras_object(copy.deepcopy(config["backbone"]))
        return cls(**config)
