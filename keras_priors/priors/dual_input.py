"""The input prior: a second stream sees the part crop (e.g. the bird's head)."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors import layers, losses
from keras_priors.priors.prior import BOX, MASK, Prior
from keras_priors.validation import (RenamedAttribute, check_fraction, check_non_negative, check_one_of,
                                     check_positive_int, renamed_arguments, warn_renamed)

BOX_SOURCES = ("predicted", "oracle")


def _box_was_the_source(kwargs):
    """Before 0.2 ``box=`` named the box source (unreleased, on main only): ``box="oracle"`` still means it.

    Runs before the renames (``part`` -> ``box``), so ``DualInput(part="part_box", box="oracle")`` keeps working.
    ``box`` was keyword-only then; only a keyword ``box`` equal to ``"predicted"`` or ``"oracle"`` is read as
    the source (no data key is called that).
    """
    source = kwargs.get("box")
    if isinstance(source, str) and source in BOX_SOURCES:
        if kwargs.get("box_source") is not None:
            raise ValueError("DualInput: `box` is the deprecated name of `box_source` when it is 'predicted' or "
                             f"'oracle'. Expected one of them. Received: box={source!r} and "
                             f"box_source={kwargs['box_source']!r}")
        warn_renamed("DualInput", "box", "box_source", stacklevel=4,
                     note=f"`box` is now the data key of the true box; box={source!r} is read as "
                          f"box_source={source!r}.")
        kwargs["box_source"] = kwargs.pop("box")


@keras_priors_export("keras_priors.priors.DualInput")
class DualInput(Prior):
    """Two streams, whole image and part crop, fused late.

    The differentiable ``PartCrop`` layer crops a part box (``[y1, x1, y2, x2]``
    normalised) out of the image, resizes it and runs it through the backbone
    (``shared=True``: the same weights; ``False``: a second backbone). Where
    the box comes from is ``box_source``:

    - ``box_source="predicted"`` (locate, then zoom): a ``MaskDecoderHead``
      on the backbone's feature maps predicts the part mask, supervised by
      the data key ``target`` (default ``"part_mask"``) with a Dice + BCE loss
      (``weight``); ``MaskToBox`` turns the predicted mask into the box. No
      annotation is needed at test time: the model, and the model ``export``
      writes, take only the image. The mask logits are a training-only
      output (export drops them); the decoder that produces the box stays,
      since the logits need it.
    - ``box_source="oracle"``: the true box is a model input, data key
      ``box`` (default ``"part_box"``), at training **and at test time**. A
      user rarely has the part box at test time, so read its results as an
      upper reference for the predicted box, not as what a deployed model
      reaches. This was the only source in 0.1: ``DualInput()`` and
      ``DualInput(box="part_box")`` still mean it.

    The predicted box is a constant for the classifier's gradient
    (``box_gradient=False``, the default): only the mask loss trains the
    locator, so the classification loss cannot move the crop towards a
    shortcut (the background) instead of the part. The box is grown by
    ``margin`` on each side and to at least ``min_size``, which absorbs small
    localisation errors; a predicted mask with no pixel above ``mask_floor``
    gives a ``min_size`` box around its peak.

    Fusion:
        ``"concat"``: concatenated pooled features into one linear classifier,
        written as two CAM heads whose logits add up, so the image stream still
        has an exact class activation map (``cam``) and CAM priors still work.
        ``"sum"`` / ``"gated"``: ``DualInputFusion`` of the pooled features and
        a Dense classifier (no ``cam`` output).

    Outputs: ``logits`` (and ``cam`` with concat); with ``box_source="predicted"``
    also ``<name>_box`` (the predicted box: the network computes it, but it
    is a training-only output, so export does not serve it) and
    ``<name>_mask`` (mask logits, training-only).

    Args:
        box: data key of the true part box (oracle only; default
            ``"part_box"``).
        shared: share backbone weights between the streams.
        fusion: ``"concat"``, ``"sum"`` or ``"gated"``.
        crop_size: (h, w) of the crop; default: the image size (needed when shared).
        name: term name in logs.
        box_source: ``"oracle"`` (default when ``target`` is not given) or
            ``"predicted"`` (default when it is).
        target: data key of the part mask that supervises the locator
            (predicted box only; default ``"part_mask"``).
        weight: weight of the part-mask loss (predicted box; the oracle has
            no loss term, its weight is None).
        margin: added to each side of the predicted box, normalised units.
        min_size: smallest predicted box side, normalised.
        mask_floor: predicted mask probability below which a pixel is not part
            of the part (``MaskToBox(floor=...)``).
        box_gradient: let the classification loss train the locator through
            the crop (the box is differentiable); False treats it as a constant.
        levels, filters: the mask decoder's pyramid levels and width, as in
            ``MaskDecoder``.
        dice_weight, bce_weight: the mask loss's mix.

    Renamed in 0.2 (the old names still work, with a ``DeprecationWarning``):
    ``part`` is ``box``, ``part_mask`` is ``target``, and ``box="predicted"`` /
    ``box="oracle"`` (unreleased) is ``box_source``: a ``box`` equal to one
    of those two words is read as the source, not as a data key.

    Example:

    >>> import keras_priors as kp
    >>> kp.priors.DualInput(box_source="predicted").required_keys
    ('part_mask',)
    >>> kp.priors.DualInput(box="part_box").box_source  # 0.1's oracle box
    'oracle'
    """

    part = RenamedAttribute("part", "box")
    part_mask = RenamedAttribute("part_mask", "target")

    @renamed_arguments(before=_box_was_the_source, part="box", part_mask="target")
    def __init__(self, box: str | None = None, shared: bool = True, fusion: str = "concat",
                 crop_size: tuple | None = None, name: str | None = None, *, box_source: str | None = None,
                 target: str | None = None, weight: float | None = None, margin: float = 0.05,
                 min_size: float = 0.15, mask_floor: float = 0.5, box_gradient: bool = False, levels: int = 3,
                 filters: int = 16, dice_weight: float = 1.0, bce_weight: float = 1.0):
        owner = "DualInput"
        if box_source is None:
            box_source = "predicted" if target is not None and box is None else "oracle"
        box_source = check_one_of("box_source", box_source, BOX_SOURCES, owner=owner)
        if box_source == "oracle":
            if target is not None:
                raise ValueError(
                    "DualInput: `target` supervises the predicted box; the oracle box is read from `box`. "
                    f"Expected target=None with box_source='oracle'. Received: target={target!r}"
                )
            if weight not in (None, 0, 0.0):
                raise ValueError(
                    "DualInput: the oracle box has no loss term to weigh. Expected weight=None (or 0) with "
                    f"box_source='oracle'. Received: weight={weight!r}"
                )
            weight = None
            box = "part_box" if box is None else box
        else:
            if box is not None:
                raise ValueError(
                    "DualInput: `box` names the true box, a model input with the oracle; the predicted box needs "
                    f"none. Expected box=None with box_source='predicted'. Received: box={box!r}"
                )
            weight = 1.0 if weight is None else weight
            target = "part_mask" if target is None else target
        for key_name, key in (("box", box), ("target", target)):
            if key is not None and (not isinstance(key, str) or not key):
                raise ValueError(f"DualInput: Expected `{key_name}` to be a data key (a non-empty string). "
                                 f"Received: {key_name}={key!r}")
        super().__init__(weight=weight, name=name)
        self.box_source = box_source
        self.box = box
        self.target = target
        self.shared = bool(shared)
        self.fusion = check_one_of("fusion", fusion, ("concat", "sum", "gated"), owner=owner)
        self.crop_size = tuple(crop_size) if crop_size else None
        self.margin = check_non_negative("margin", margin, owner=owner)
        self.min_size = check_fraction("min_size", min_size, owner=owner)
        self.mask_floor = check_fraction("mask_floor", mask_floor, owner=owner)
        if self.mask_floor >= 1.0:
            raise ValueError(f"DualInput: Expected `mask_floor` in [0, 1). Received: mask_floor={mask_floor!r}")
        self.box_gradient = bool(box_gradient)
        self.levels = check_positive_int("levels", levels, owner=owner)
        self.filters = check_positive_int("filters", filters, owner=owner)
        self.dice_weight = dice_weight
        self.bce_weight = bce_weight
        losses.MaskLoss(dice_weight=dice_weight, bce_weight=bce_weight)  # validates
        if box_source == "predicted" and self.min_size == 0.0:
            raise ValueError("DualInput: an unsure predicted mask falls back to a `min_size` box on its peak. "
                             f"Expected `min_size` > 0 with box_source='predicted'. Received: min_size={min_size!r}")
        self.required_keys = (box,) if box_source == "oracle" else (target,)
        # Output names of the predicted box and of the part-mask logits (both training-only outputs).
        self.box_output, self.mask_output = f"{self.name}_box", f"{self.name}_mask"


    def build_head(self, ctx):
        image = ctx.inputs["image"]
        size = self.crop_size or tuple(image.shape[1:3])
        if self.shared and size != tuple(image.shape[1:3]):
            raise ValueError(
                f"DualInput: a shared backbone needs crop_size equal to the image size {tuple(image.shape[1:3])}. "
                f"Received: crop_size={self.crop_size}"
            )
        if self.box_source == "oracle":
            box = keras.Input(shape=(4,), name=self.box)
            ctx.inputs[self.box] = box
        else:
            box = self._locate(ctx, image)
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
            fused = layers.DualInputFusion(fusion=self.fusion, name="fusion")([a, b])
            ctx.outputs["logits"] = keras.layers.Dense(k, name="classifier")(fused)
        return True

    def _locate(self, ctx, image):
        """Part-mask logits from the image stream's feature maps, then the box they give."""
        names = list(ctx.features)[-self.levels:]
        feats = [ctx.features[n] for n in names]
        # Logits at the finest level read (no upsampling: a float32 resize of float16 logits breaks XLA's
        # mixed-precision gradient); MaskToBox maps the mask cells to image pixels.
        head = layers.MaskDecoderHead(filters=self.filters, num_masks=1, name=f"{self.name}_mask_decoder")
        mask_logits = head(feats if len(feats) > 1 else feats[0])
        box = layers.MaskToBox(method="moments", from_logits=True, floor=self.mask_floor, margin=self.margin,
                               min_size=self.min_size, empty="argmax", stop_gradient=not self.box_gradient,
                               image_size=tuple(image.shape[1:3]), name=f"{self.name}_locate")(mask_logits)
        ctx.outputs[self.mask_output] = mask_logits
        ctx.training_only.add(self.mask_output)
        ctx.outputs[self.box_output] = box
        ctx.training_only.add(self.box_output)  # the network computes it; export does not serve it
        return box

    def term_names(self):
        return [f"{self.name}_mask"] if self.box_source == "predicted" else []

    def data_spec(self):
        return {self.box: BOX} if self.box_source == "oracle" else {self.target: MASK}

    def unweighted_loss_terms(self, targets, outputs, num_classes):
        if self.box_source != "predicted":
            return {}
        value = losses.mask_loss(targets[self.target], outputs[self.mask_output],
                                 dice_weight=self.dice_weight, bce_weight=self.bce_weight)
        return {f"{self.name}_mask": ops.mean(value)}

    def get_config(self):
        return {"box": self.box, "shared": self.shared, "fusion": self.fusion, "crop_size": self.crop_size,
                "name": self.name, "box_source": self.box_source, "target": self.target,
                "weight": self.weight, "margin": self.margin,
                "min_size": self.min_size, "mask_floor": self.mask_floor, "box_gradient": self.box_gradient,
                "levels": self.levels, "filters": self.filters, "dice_weight": self.dice_weight,
                "bce_weight": self.bce_weight}
