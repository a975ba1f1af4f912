"""The counterexample prior: every object on another training image's background."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.priors.prior import MASK, Prior
from keras_priors.validation import check_fraction, check_one_of

_FILLS = ("mean", "none")


@keras_priors_export("keras_priors.priors.BackgroundSwap")
class BackgroundSwap(Prior):
    """Composite each object onto the background of another image in the batch.

    The mask is the prior: with ``x' = m * x + (1 - m) * b``, where ``b`` is
    the background of a randomly chosen other training image of the same
    batch, the background of a training image no longer depends on its label,
    so the network gains nothing from reading it. The label and masks are
    unchanged (the object stays where it was). This is the "counterexamples"
    strategy of the explanatory-interactive-learning typology (Friedrich et
    al. 2023), in the form Xiao et al. (2021) use to measure background
    reliance (ImageNet-9 "Mixed-Rand"). It runs inside the train step on every
    backend and costs nothing at inference; the mask is needed at training
    time only.

    Where the other image's own object lies, its background is unknown:
    ``fill="mean"`` paints that region with the mean colour of the other
    image's visible background, so no second object (and no second label)
    appears in the composite; ``fill="none"`` keeps the other object's pixels.

    Args:
        mask: data key of the object mask (B, H, W, 1) in [0, 1], same height
            and width as the image; 1 on the object.
        probability: fraction of the training images that get a swapped
            background (each image decides independently). 1.0 (default)
            makes the background independent of the label.
        fill: ``"mean"`` (default) or ``"none"``, see above.
        name: name of the prior (logs, config).

    Example:

    >>> import numpy as np, keras
    >>> import keras_priors as kp
    >>> prior = kp.priors.BackgroundSwap(mask="object_mask")
    >>> batch = {"image": np.stack([np.zeros((4, 4, 3)), np.ones((4, 4, 3))]).astype("float32"),
    ...          "object_mask": np.pad(np.ones((2, 2, 2, 1)), ((0, 0), (1, 1), (1, 1), (0, 0))).astype("float32")}
    >>> out = prior.transform_batch(batch, keras.random.SeedGenerator(6))  # a seed that swaps on every backend
    >>> swapped = keras.ops.convert_to_numpy(out["image"])
    >>> float(swapped[0, 1, 1, 0]), float(swapped[0, 0, 0, 0])  # object kept, background of image 1
    (0.0, 1.0)

    Reference:
        Friedrich et al., "A typology for exploring the mitigation of shortcut
        behaviour", Nature Machine Intelligence 2023 (counterexamples);
        Xiao et al., "Noise or Signal: The Role of Image Backgrounds in Object
        Recognition", ICLR 2021.
    """

    def __init__(self, mask: str = "object_mask", probability: float = 1.0, fill: str = "mean",
                 name: str | None = None):
        super().__init__(weight=None, name=name)  # no loss term
        if not isinstance(mask, str) or not mask:
            raise ValueError(f"BackgroundSwap: Expected `mask` to be a data key (a non-empty string). "
                             f"Received: mask={mask!r}")
        self.mask = mask
        self.probability = check_fraction("probability", probability, "BackgroundSwap")
        self.fill = check_one_of("fill", fill, _FILLS, owner="BackgroundSwap")
        self.required_keys = (mask,)

    def transform_batch(self, batch, seed_generator):
        image = batch["image"]
        dtype = image.dtype
        mask = ops.cast(batch[self.mask], dtype)
        if tuple(mask.shape[1:3]) != tuple(image.shape[1:3]):
            raise ValueError(
                f"BackgroundSwap: Expected the {self.mask!r} mask to have the image's height and width "
                f"{tuple(image.shape[1:3])}. Received: {self.mask}.shape={tuple(mask.shape)}"
            )
        n = ops.shape(image)[0]
        # A random derangement-free permutation is not needed: an image paired with itself keeps
        # its background, which happens with probability 1/B and leaves the label independent.
        order = keras.random.shuffle(ops.arange(n), seed=seed_generator)
        other = ops.take(image, order, axis=0)
        if self.fill == "mean":
            other_mask = ops.take(mask, order, axis=0)
            visible = 1.0 - other_mask
            area = ops.maximum(ops.sum(visible, axis=(1, 2), keepdims=True), 1.0)
            mean = ops.sum(other * visible, axis=(1, 2), keepdims=True) / area
            other = other * visible + mean * other_mask
        swapped = mask * image + (1.0 - mask) * other
        if self.probability < 1.0:
            u = keras.random.uniform((n, 1, 1, 1), seed=seed_generator)
            swapped = ops.where(u < self.probability, swapped, image)
        return {**batch, "image": ops.cast(swapped, dtype)}

    def data_spec(self):
        return {self.mask: MASK}

    def get_config(self):
        return {"mask": self.mask, "probability": self.probability, "fill": self.fill, "name": self.name}
