"""The input prior: a second stream sees the part crop (e.g. the bird's head)."""

from __future__ import annotations

import keras

from keras_priors import layers
from keras_priors.priors.prior import Prior
from keras_priors.validation import check_one_of


class DualInput(Prior):
    """Two streams, whole image and part crop, fused late.

    The model gets a second input, ``part`` (a box (B, 4) = [y1, x1, y2, x2]
    normalised), crops and resizes that part of the image with the
    differentiable ``PartCrop`` layer, and runs it through the backbone
    (``shared=True``: the same weights; ``False``: a second backbone).

    Fusion:
        ``"concat"``: concatenated pooled features into one linear classifier,
        written as two CAM heads whose logits add up, so the image stream still
        has an exact class activation map (``cam``) and CAM priors still work.
        ``"sum"`` / ``"gated"``: ``DualInputFusion`` of the pooled features and
        a Dense classifier (no ``cam`` output).

    At inference the part box is an input of the exported model too.

    Args:
        part: data key of the part box.
        shared: share backbone weights between the streams.
        fusion: ``"concat"``, ``"sum"`` or ``"gated"``.
        crop_size: (h, w) of the crop; default: the image size (needed when shared).

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.DualInput(part="part_box").required_keys
    ('part_box',)
    """

    def __init__(self, part: str = "part_box", shared: bool = True, fusion: str = "concat",
                 crop_size: tuple | None = None, name: str | None = None):
        super().__init__(weight=0.0, name=name)
        self.part = part
        self.shared = bool(shared)
        self.fusion = check_one_of("fusion", fusion, ("concat", "sum", "gated"), owner="DualInput")
        self.crop_size = tuple(crop_size) if crop_size else None
        self.required_keys = (part,)

    def build_head(self, ctx):
        image = ctx.inputs["image"]
        size = self.crop_size or tuple(image.shape[1:3])
        if self.shared and size != tuple(image.shape[1:3]):
            raise ValueError(
                f"DualInput: a shared backbone needs crop_size equal to the image size {tuple(image.shape[1:3])}. "
                f"Received: crop_size={self.crop_size}"
            )
        box = keras.Input(shape=(4,), name=self.part)
        ctx.inputs[self.part] = box
        crop = layers.PartCrop(size, name="part_crop")([image, box])
        part_in = ctx.preprocess(crop)
        if self.shared:
            part_backbone = ctx.backbone
        else:
            part_backbone = ctx.spec.builder(tuple(size) + (image.shape[-1],), name="part_backbone")
        part_last = part_backbone(part_in)[ctx.last_level]
        img_last = ctx.features[ctx.last_level]
        k = ctx.num_classes
        if self.fusion == "concat":
            img_out = layers.CAMHead(k, name="classifier")(img_last)
            part_out = layers.CAMHead(k, use_bias=False, name="part_classifier")(part_last)
            ctx.outputs["logits"] = keras.layers.Add(name="logits")([img_out["logits"], part_out["logits"]])
            ctx.outputs["cam"] = img_out["cam"]
        else:
            a = keras.layers.GlobalAveragePooling2D(name="image_pool")(img_last)
            b = keras.layers.GlobalAveragePooling2D(name="part_pool")(part_last)
            fused = layers.DualInputFusion(mode=self.fusion, name="fusion")([a, b])
            ctx.outputs["logits"] = keras.layers.Dense(k, name="classifier")(fused)
        return True

    def get_config(self):
        return {"part": self.part, "shared": self.shared, "fusion": self.fusion,
                "crop_size": self.crop_size, "name": self.name}
