"""LabelGenerator: the MAXL label-generation network and its masked softmax."""

from __future__ import annotations

import numbers

import keras
import numpy as np
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.validation import check_positive_int


def check_psi(psi, owner: str = "MAXL") -> tuple:
    """Return ``psi`` as a tuple of ints >= 1, or raise naming what was received."""
    if isinstance(psi, (str, bytes)) or not hasattr(psi, "__iter__"):
        raise ValueError(
            f"{owner}: Expected `psi` to be a list of auxiliary class counts, one int >= 1 per "
            f"primary class. Received: psi={psi!r}"
        )
    psi = tuple(psi)
    if len(psi) < 1:
        raise ValueError(f"{owner}: Expected `psi` to have one entry per primary class. Received: psi={psi!r}")
    for i, n in enumerate(psi):
        if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
            raise ValueError(
                f"{owner}: Expected every auxiliary class count in `psi` to be an integer >= 1. "
                f"Received: psi[{i}]={n!r} in psi={list(psi)!r}"
            )
    return tuple(int(n) for n in psi)


def hierarchy_mask(psi) -> np.ndarray:
    """``(len(psi), sum(psi))`` float32 0/1 matrix: row ``i`` is 1 on primary class ``i``'s block."""
    psi = check_psi(psi, "hierarchy_mask")
    mask = np.zeros((len(psi), sum(psi)), np.float32)
    start = 0
    for i, n in enumerate(psi):
        mask[i, start:start + n] = 1.0
        start += n
    return mask


def masked_softmax(logits, labels, psi):
    """Softmax of ``logits`` restricted to the auxiliary block of each sample's primary class.

    The reference implementation (lorenmt/maxl, ``mask_softmax``) multiplies
    ``exp(logits)`` by a mask that is 1 inside the block and 1e-8 outside; here
    the mass outside the block is exactly zero and the exponent is shifted by
    the in-block maximum, so large logits do not overflow.

    Args:
        logits: ``(B, sum(psi))`` auxiliary logits.
        labels: ``(B,)`` integer primary labels in ``[0, len(psi))``.
        psi: auxiliary class counts per primary class.

    Returns:
        ``(B, sum(psi))`` probabilities, zero outside the sample's block.
    """
    mask_table = ops.convert_to_tensor(hierarchy_mask(psi))
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    mask = ops.take(mask_table, labels, axis=0)
    logits = ops.cast(logits, "float32")
    shifted = logits - ops.stop_gradient(
        ops.max(ops.where(mask > 0, logits, ops.full_like(logits, -1e30)), axis=-1, keepdims=True))
    exp = ops.exp(ops.where(mask > 0, shifted, ops.zeros_like(shifted))) * mask
    return exp / ops.sum(exp, axis=-1, keepdims=True)


@keras_priors_export("keras_priors.maxl.LabelGenerator")
class LabelGenerator(keras.layers.Layer):
    """MAXL label generator: image and primary label to a soft auxiliary label.

    An encoder (a small conv net by default, or any model or layer mapping
    images to a feature map, a vector, or a dict of pyramid maps), global
    average pooling, a hidden ``Dense`` + ReLU and a ``Dense`` to ``sum(psi)``
    logits, then :func:`masked_softmax`: a sample of primary class ``i`` only
    gets mass on the ``psi[i]`` auxiliary classes of block ``i``.

    Args:
        psi: auxiliary class counts per primary class (``len(psi)`` primary
            classes, ``sum(psi)`` auxiliary classes).
        encoder: ``None`` for the default conv net, or a layer/model on images.
        feature: the key to read when ``encoder`` returns a dict (default: the
            last key in sorted order, the coarsest pyramid level).
        widths: channel widths of the default encoder (3x3 conv, BN, ReLU, 2x2
            max-pool per width).
        stem_strides: stride of the default encoder's first convolution. 2
            (default) runs the generator at half resolution: at 32 px a
            full-resolution generator costs as much as the resnet_tiny network
            it labels for (forward and backward), a quarter of that at stride 2.
        hidden_units: width of the hidden dense layer.
        **kwargs: base layer arguments.

    Call arguments:
        images: ``(B, H, W, C)`` images.
        labels: ``(B,)`` integer primary labels.
        training: batch-norm mode.

    Returns:
        ``(B, sum(psi))`` auxiliary label distributions.

    Example:

    >>> import numpy as np
    >>> gen = LabelGenerator(psi=[2, 3])
    >>> q = gen(np.zeros((4, 16, 16, 3), "float32"), np.array([0, 1, 1, 0]))
    >>> tuple(q.shape)
    (4, 5)

    Reference:
        Liu, Davison, Johns. Self-Supervised Generalisation with Meta
        Auxiliary Learning. NeurIPS 2019.
    """

    def __init__(self, psi, encoder=None, feature=None, widths=(16, 32, 64), hidden_units: int = 64,
                 stem_strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.psi = check_psi(psi, "LabelGenerator")
        self.widths = tuple(check_positive_int("widths", w, "LabelGenerator") for w in widths)
        self.hidden_units = check_positive_int("hidden_units", hidden_units, "LabelGenerator")
        self.stem_strides = check_positive_int("stem_strides", stem_strides, "LabelGenerator")
        self.feature = feature
        self._custom_encoder = encoder is not None
        # === Layers ===
        if encoder is None:
            stack = []
            for i, w in enumerate(self.widths):
                stack += [
                    keras.layers.Conv2D(w, 3, strides=self.stem_strides if i == 0 else 1, padding="same",
                                        use_bias=False, name=f"conv{i + 1}"),
                    keras.layers.BatchNormalization(name=f"bn{i + 1}"),
                    keras.layers.ReLU(name=f"relu{i + 1}"),
                    keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i + 1}"),
                ]
            encoder = keras.Sequential(stack, name="encoder")
        self.encoder = encoder
        self.hidden = keras.layers.Dense(self.hidden_units, activation="relu", name="hidden")
        self.classifier = keras.layers.Dense(sum(self.psi), name="aux_logits")

    def build(self, images_shape, labels_shape=None):
        shape = tuple(images_shape)
        self.encoder.build(shape)
        out = self.encoder.compute_output_spec(keras.KerasTensor(shape))
        out = self._select(out)
        channels = out.shape[-1]
        self.hidden.build((shape[0], channels))
        self.classifier.build((shape[0], self.hidden_units))

    def _select(self, features):
        if isinstance(features, dict):
            key = self.feature if self.feature is not None else sorted(features)[-1]
            if key not in features:
                raise ValueError(
                    f"LabelGenerator: Expected `feature` to be one of the encoder's outputs "
                    f"{sorted(features)}. Received: feature={key!r}")
            features = features[key]
        return features

    def call(self, images, labels, training=None):
        x = self._select(self.encoder(images, training=training))
        if len(x.shape) == 4:
            x = ops.mean(x, axis=(1, 2))
        logits = self.classifier(self.hidden(x))
        return masked_softmax(logits, labels, self.psi)

    def compute_output_shape(self, images_shape, labels_shape=None):
        return (images_shape[0], sum(self.psi))

    def get_config(self):
        config = super().get_config()
        config.update({
            "psi": list(self.psi),
            "encoder": keras.saving.serialize_keras_object(self.encoder) if self._custom_encoder else None,
            "feature": self.feature,
            "widths": list(self.widths),
            "hidden_units": self.hidden_units,
            "stem_strides": self.stem_strides,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        if config.get("encoder") is not None:
            config["encoder"] = keras.saving.deserialize_keras_object(config["encoder"])
        return cls(**config)
