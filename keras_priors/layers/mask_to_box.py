"""MaskToBox: a (soft) part mask to a normalised box, for PartCrop."""

from __future__ import annotations

import math

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.layers._utils import check_rank, check_size
from keras_priors.validation import check_fraction, check_non_negative, check_one_of

_METHODS = ("moments", "extent")
_EMPTY = ("image", "argmax")


@keras_priors_export("keras_priors.layers.MaskToBox")
class MaskToBox(keras.layers.Layer):
    """Turn a part mask ``(B, H, W, 1)`` into a box ``(B, 4) = [y1, x1, y2, x2]``.

    Boxes follow the ``tf.image.crop_and_resize`` convention used by
    ``PartCrop`` and the ``part_box`` data key: normalised so that ``0`` is the
    first pixel centre and ``1`` the last (row ``r`` is at ``r / (H - 1)``).

    - ``method="moments"`` (differentiable): the mask is a weight on the
      pixels; each pixel counts as a unit square, so the mask's spread along an
      axis is its weighted variance plus ``1/12``. The box spans
      ``mean +/- num_std * std``, moved half a pixel in to the pixel centres.
      With the default ``num_std = sqrt(3)`` an exact rectangle mask gives
      exactly its own box.
      A soft prediction leaves a little mass everywhere, which widens the
      box; ``floor`` removes it: the weight is ``relu(mask - floor) / (1 - floor)``
      (a binary mask is unchanged).
    - ``method="extent"`` (not differentiable): first and last rows and columns
      where the mask exceeds ``threshold``.

    A mask coarser than the image it locates in (a decoder's output at stride
    ``s``) gives the box in that image's coordinates with ``image_size``: mask
    cell ``r`` covers image pixels ``r * s`` to ``(r + 1) * s - 1``, so the
    box spans the pixels of the cells it covers (no upsampling of the mask).

    Then ``margin`` (normalised units) is added on every side and the box is
    clipped to [0, 1]; a box narrower or shorter than ``min_size`` is grown
    about its centre to ``min_size`` and moved back inside the image if it
    sticks out. An empty mask (no mass, or nothing above ``threshold``) gives
    the whole image ``[0, 0, 1, 1]`` (``empty="image"``) or, with
    ``empty="argmax"``, a ``min_size`` box centred on the mask's largest value
    (the best guess of a predictor that is not yet sure anywhere). A constant
    (flat) mask has no peak: it gives the whole image, with either method and
    either ``empty``.

    Args:
        method: ``"moments"`` or ``"extent"``.
        num_std: half-width of the box in standard deviations (``moments``).
        threshold: mask level that counts as inside (``extent``).
        margin: added to each side, in normalised units.
        from_logits: apply a sigmoid to the input first (mask logits).
        epsilon: total mask mass below which the mask counts as empty.
        min_size: smallest box height and width, normalised, in [0, 1].
        floor: mask level below which pixels carry no weight (``moments``), in [0, 1).
        empty: ``"image"`` or ``"argmax"``: the box of an empty mask.
        stop_gradient: return the box as a constant for the gradient (no
            gradient flows back into the mask).
        image_size: ``None`` (the box is for an image of the mask's size) or
            ``(height, width)`` of the image, at least the mask's size.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: the mask, ``(B, H, W, 1)`` mask in [0, 1] (logits with ``from_logits``).

    Returns:
        ``(B, 4)`` boxes.

    Example:

    >>> import numpy as np
    >>> mask = np.zeros((1, 5, 5, 1), "float32")
    >>> mask[0, 1:4, 2:5] = 1.0
    >>> np.round(np.asarray(MaskToBox()(mask)), 4).tolist()
    [[0.25, 0.5, 0.75, 1.0]]
    """

    def __init__(
        self,
        method: str = "moments",
        num_std: float = math.sqrt(3.0),
        threshold: float = 0.5,
        margin: float = 0.0,
        from_logits: bool = False,
        epsilon: float = 1e-6,
        min_size: float = 0.0,
        floor: float = 0.0,
        empty: str = "image",
        stop_gradient: bool = False,
        image_size: tuple[int, int] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.method = check_one_of("method", method, _METHODS, "MaskToBox")
        self.num_std = check_non_negative("num_std", num_std, "MaskToBox")
        self.threshold = check_fraction("threshold", threshold, "MaskToBox")
        self.margin = check_non_negative("margin", margin, "MaskToBox")
        self.from_logits = bool(from_logits)
        self.epsilon = check_non_negative("epsilon", epsilon, "MaskToBox")
        self.min_size = check_fraction("min_size", min_size, "MaskToBox")
        self.floor = check_fraction("floor", floor, "MaskToBox")
        if self.floor >= 1.0:
            raise ValueError(f"MaskToBox: Expected `floor` in [0, 1). Received: floor={floor!r}")
        self.empty = check_one_of("empty", empty, _EMPTY, "MaskToBox")
        if self.empty == "argmax" and self.min_size == 0.0:
            raise ValueError(
                "MaskToBox: `empty='argmax'` places a `min_size` box on the mask's peak. "
                f"Expected `min_size` > 0. Received: min_size={min_size!r}"
            )
        self.stop_gradient = bool(stop_gradient)
        self.image_size = check_size("image_size", image_size, "MaskToBox")

    def build(self, input_shape):
        check_rank("mask", input_shape, 4, "MaskToBox")
        if input_shape[1] is None or input_shape[2] is None:
            raise ValueError(
                f"MaskToBox: Expected `mask` with a known height and width. Received: shape {tuple(input_shape)}"
            )
        if input_shape[-1] is not None and input_shape[-1] != 1:
            raise ValueError(
                f"MaskToBox: Expected `mask` with 1 channel, shape (B, H, W, 1). Received: shape {tuple(input_shape)}"
            )
        if self.image_size is not None and (input_shape[1] > self.image_size[0] or input_shape[2] > self.image_size[1]):
            raise ValueError(
                "MaskToBox: Expected `image_size` at least the mask's height and width. "
                f"Received: image_size={self.image_size} for a mask of shape {tuple(input_shape)}"
            )

    def call(self, inputs):
        mask = ops.cast(inputs, "float32")[..., 0]
        if self.from_logits:
            mask = ops.sigmoid(mask)
        if self.method == "moments":
            box, empty = self._moments(mask)
        else:
            box, empty = self._extent(mask)
        if self.empty == "argmax":
            box = ops.where(empty[:, None], self._peak(mask), box)
        if self.image_size is not None:
            box = self._to_image(box, mask.shape[1], mask.shape[2])
        m = self.margin
        box = box + ops.convert_to_tensor([-m, -m, m, m], "float32")
        box = ops.clip(box, 0.0, 1.0)
        if self.min_size > 0.0:
            box = self._grow(box)
        if self.empty == "argmax":  # a flat mask has no peak: the whole image
            flat = ops.max(mask, axis=(1, 2)) - ops.min(mask, axis=(1, 2)) <= self.epsilon
            empty = ops.logical_and(empty, flat)
        full = ops.convert_to_tensor([[0.0, 0.0, 1.0, 1.0]], "float32")
        box = ops.where(empty[:, None], full, box)
        if self.stop_gradient:
            box = ops.stop_gradient(box)
        return ops.cast(box, self.compute_dtype)

    def _peak(self, mask):
        """A zero-size box ``(B, 4)`` on each mask's largest value (first one on ties)."""
        height, width = mask.shape[1], mask.shape[2]
        flat = ops.argmax(ops.reshape(mask, (-1, height * width)), axis=1)
        y = ops.cast(flat // width, "float32") / float(max(height - 1, 1))
        x = ops.cast(flat % width, "float32") / float(max(width - 1, 1))
        return ops.stop_gradient(ops.stack([y, x, y, x], axis=1))

    def _to_image(self, box, height, width):
        """Normalised mask-cell box -> normalised box over the pixels of ``image_size`` those cells cover."""
        scales = []
        for cells, pixels in ((height, self.image_size[0]), (width, self.image_size[1])):
            scales.append((float(max(cells - 1, 1)), pixels / cells, float(max(pixels - 1, 1))))
        (ch, sh, ph), (cw, sw, pw) = scales
        cell = box * ops.convert_to_tensor([ch, cw, ch, cw], "float32")  # in mask cells
        low = cell * ops.convert_to_tensor([sh, sw, sh, sw], "float32")  # first pixel of a cell
        last = ops.convert_to_tensor([0.0, 0.0, sh - 1.0, sw - 1.0], "float32")  # high edges: the cell's last pixel
        return (low + last) / ops.convert_to_tensor([ph, pw, ph, pw], "float32")

    def _grow(self, box):
        """Grow each side shorter than ``min_size`` about its centre, then move the box inside [0, 1]."""
        low, high = box[:, :2], box[:, 2:]
        centre = 0.5 * (low + high)
        half = 0.5 * ops.maximum(high - low, self.min_size)
        low, high = centre - half, centre + half
        shift = ops.relu(-low) - ops.relu(high - 1.0)
        return ops.clip(ops.concatenate([low + shift, high + shift], axis=1), 0.0, 1.0)

    def _axis_moments(self, profile, size):
        """Low and high box edge (normalised) from a ``(B, size)`` mass profile."""
        total = ops.sum(profile, axis=1)
        safe = ops.maximum(total, self.epsilon)
        idx = ops.arange(size, dtype="float32")[None, :]
        mean = ops.sum(profile * idx, axis=1) / safe
        var = ops.sum(profile * ops.square(idx - mean[:, None]), axis=1) / safe
        half = ops.relu(self.num_std * ops.sqrt(var + 1.0 / 12.0) - 0.5)
        scale = float(max(size - 1, 1))
        return (mean - half) / scale, (mean + half) / scale, total

    def _moments(self, mask):
        height, width = mask.shape[1], mask.shape[2]
        if self.floor > 0.0:
            mask = ops.relu(mask - self.floor) / (1.0 - self.floor)
        y1, y2, total = self._axis_moments(ops.sum(mask, axis=2), height)
        x1, x2, _ = self._axis_moments(ops.sum(mask, axis=1), width)
        box = ops.stack([y1, x1, y2, x2], axis=1)
        return box, total <= self.epsilon

    def _axis_extent(self, inside_any, size):
        idx = ops.arange(size, dtype="float32")[None, :]
        low = ops.min(ops.where(inside_any, idx, float(size)), axis=1)
        high = ops.max(ops.where(inside_any, idx, -1.0), axis=1)
        scale = float(max(size - 1, 1))
        return low / scale, high / scale

    def _extent(self, mask):
        inside = mask > self.threshold
        rows = ops.any(inside, axis=2)
        cols = ops.any(inside, axis=1)
        y1, y2 = self._axis_extent(rows, mask.shape[1])
        x1, x2 = self._axis_extent(cols, mask.shape[2])
        box = ops.stack([y1, x1, y2, x2], axis=1)
        box = ops.stop_gradient(box)
        return box, ops.logical_not(ops.any(rows, axis=1))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], 4)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "method": self.method,
                "num_std": self.num_std,
                "threshold": self.threshold,
                "margin": self.margin,
                "from_logits": self.from_logits,
                "epsilon": self.epsilon,
                "min_size": self.min_size,
                "floor": self.floor,
                "empty": self.empty,
                "stop_gradient": self.stop_gradient,
                "image_size": self.image_size,
            }
        )
        return config
