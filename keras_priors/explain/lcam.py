"""L-CAM: a learned attention module on a frozen classifier, one forward pass at inference."""

from __future__ import annotations

import inspect

import keras
import numpy as np
from keras import ops

from keras_priors.explain import _compile, _graph
from keras_priors.explain._utils import (
    normalize_maps_tensor,
)
from keras_priors.explain.resize_cam import resize_cam
from keras_priors.explain.base_cam import BaseCAM, _resolve_targets, explainer_docstring
from keras_priors.validation import check_non_negative, check_one_of

VARIANTS = ("Fm", "Img")


def lcam_objective(
    labels,
    logits,
    attention,
    ce_weight: float = 1.5,
    area_weight: float = 2.0,
    tv_weight: float = 0.01,
    area_power: float = 0.3,
    area_eps: float = 5e-4,
    border_penalty: float = 0.3,
):
    """The L-CAM training objective, as in the authors' code (bmezaris/L-CAM), with keras.ops.

    ``ce_weight * CE(labels, logits) + area_weight * mean((A + area_eps) ** area_power)
    + tv_weight * TV(A)`` where ``A`` (B, h, w) is the sigmoid attention of each
    image's label and ``TV(A) = (sum dA_y^2 + sum dA_x^2 + border_penalty *
    sum(A^2 over the four borders)) / (2 * B)`` (the border rows/columns are
    summed separately, so corners count twice, as in the reference).

    Note: the reference's training script passes ``a[:, labels]`` (every label of
    the batch, for every image) to the loss; we use each image's own label,
    which is what the paper describes.

    Args:
        labels: (B,) int class labels.
        logits: (B, classes) logits of the classifier on the masked input.
        attention: (B, h, w) sigmoid attention of the label class.

    Returns:
        A float32 scalar tensor.
    """
    labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
    logits = ops.cast(logits, "float32")
    a = ops.cast(attention, "float32")
    ce = ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
    area = ops.mean(ops.power(a + area_eps, area_power))
    dy = ops.sum(ops.square(a[:, 1:, :] - a[:, :-1, :]))
    dx = ops.sum(ops.square(a[:, :, 1:] - a[:, :, :-1]))
    border = ops.sum(ops.square(a[:, -1, :])) + ops.sum(ops.square(a[:, 0, :]))
    border = border + ops.sum(ops.square(a[:, :, -1])) + ops.sum(ops.square(a[:, :, 0]))
    batch = ops.cast(ops.shape(a)[0], "float32")
    tv = (dy + dx + border_penalty * border) / (2.0 * batch)
    return ce_weight * ce + area_weight * area + tv_weight * tv


#: The weights of :func:`lcam_objective` and their defaults, read from its signature (written there only).
OBJECTIVE_DEFAULTS = {
    name: param.default
    for name, param in inspect.signature(lcam_objective).parameters.items()
    if param.default is not inspect.Parameter.empty
}


class LCAMTrainer(keras.Model):
    """Trains the L-CAM attention module on a frozen classifier with plain ``fit(images, labels)``.

    ``call(images)`` returns ``{"attention": c, "features": f}`` with ``c`` the
    pre-sigmoid attention (B, h, w, classes) of the 1x1 convolution on the
    feature map ``f``. ``compute_loss`` picks each image's label channel
    ``A = sigmoid(c[..., y])`` and runs the frozen classifier again:
    variant ``"Fm"`` multiplies ``A`` into the feature map before the rest of the
    classifier, ``"Img"`` multiplies the upsampled ``A`` into the image and runs
    the whole classifier. The loss is :func:`lcam_objective`.

    Args:
        classifier: the frozen functional/Sequential classifier (its variables
            are set non-trainable).
        layer: feature layer (None, a name or an ``"outer/inner"`` path).
        variant: "Fm" or "Img".
        output: which classifier output gives the logits.
        **kwargs: the weights of :func:`lcam_objective` (``ce_weight``,
            ``area_weight``, ``tv_weight``, ``area_power``, ``area_eps``,
            ``border_penalty``; each >= 0, its defaults there), then
            ``keras.Model`` arguments (``name``).
    """

    def __init__(self, classifier, layer=None, variant: str = "Fm", output=None, **kwargs):
        objective_kwargs = {name: kwargs.pop(name, default) for name, default in OBJECTIVE_DEFAULTS.items()}
        super().__init__(**kwargs)
        # === Config ===
        self.variant = check_one_of("variant", variant, set(VARIANTS), "LCAM")
        self.objective_kwargs = {name: check_non_negative(name, value, "LCAM")
                                 for name, value in objective_kwargs.items()}
        # === Layers ===
        self.classifier = classifier
        classifier.trainable = False
        probe = _graph.GraphRunner(classifier, [], output=output, linear_output=True)
        self.layer_path, _ = _graph.resolve_layer(classifier, layer, probe.output_kt)
        self.runner = _graph.GraphRunner(classifier, self.layer_path, output=output, linear_output=True)
        _graph.check_connected(classifier, self.layer_path, self.runner.output_kt)
        self.num_classes = self.runner.num_classes
        self.attention = keras.layers.Conv2D(self.num_classes, 1, name="lcam_attention")

    def call(self, images, training=False):
        features = self.runner.features(images)
        return {"attention": self.attention(features), "features": features}

    def masked_logits(self, images, y_pred, labels):
        """Logits of the frozen classifier with the label's attention applied, and that attention."""
        c = ops.cast(y_pred["attention"], "float32")
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        idx = ops.reshape(labels, (-1, 1, 1, 1))
        a = ops.sigmoid(ops.squeeze(ops.take_along_axis(c, idx, axis=-1), -1))  # (B, h, w)
        if self.variant == "Fm":
            feats = y_pred["features"]
            masked = feats * ops.cast(ops.expand_dims(a, -1), feats.dtype)
            logits = self.runner.logits_from_features(images, masked)
        else:
            up = resize_cam(a, (images.shape[1], images.shape[2]))
            logits = self.runner.logits(images * ops.cast(ops.expand_dims(up, -1), images.dtype))
        return logits, a

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        if y is None:
            raise ValueError("Expected `y` (integer class labels) to train L-CAM. Received: y=None")
        logits, a = self.masked_logits(x, y_pred, y)
        return lcam_objective(y, logits, a, **self.objective_kwargs)


@explainer_docstring
class LCAM(BaseCAM):
    """L-CAM: learned class activation maps from an attention module on a frozen classifier.

    A 1x1 convolution from the feature map to one channel per class (sigmoid)
    is trained with ``.fit(images, labels)`` while the classifier stays frozen.
    Variant ``"Fm"`` multiplies the label's attention into the feature map
    before the frozen head; ``"Img"`` multiplies the upsampled attention into the
    image and runs the frozen classifier again. The objective is
    :func:`lcam_objective` (weights configurable). At inference one forward pass
    gives the map: the target channel's pre-sigmoid attention, upsampled and
    min-max normalised. That pass (features, logits for the predicted class,
    attention, upsampling, normalisation) is one compiled call unless
    ``run_eagerly=True`` (see :class:`BaseCAM`).

    Args:
        model: the classifier to explain (functional or Sequential; it is frozen).
        variant: "Fm" or "Img".
        layer: feature layer (None = last 4D layer, a name or an ``"outer/inner"`` path).
        output: which classifier output gives the logits.
        run_eagerly: run inference op by op instead of one compiled function.
        jit_compile: TensorFlow only: compile inference with XLA.
        **objective_kwargs: the weights of :func:`lcam_objective` (``ce_weight``,
            ``area_weight``, ``tv_weight``, ``area_power``, ``area_eps``,
            ``border_penalty``), its defaults the authors' values.

    Example:
        {example_model}
        >>> labels = np.array([0, 1])
        >>> lcam = LCAM(model, variant="Fm")
        >>> history = lcam.fit(images, labels, epochs=1, batch_size=2, verbose=0)
        >>> maps = lcam(images, targets=labels)
        >>> maps.shape
        (2, 16, 16)

    Reference:
        Gkartzonika, Gkalelis, Mezaris, "Learning Visual Explanations for DCNN-Based
        Image Classifiers Using an Attention Mechanism", ECCV Workshops 2022.
    """

    def __init__(self, model, variant: str = "Fm", layer=None, output=None, run_eagerly: bool = False,
                 jit_compile: bool = False, **objective_kwargs):
        self.variant = variant
        self.trainer = LCAMTrainer(model, layer=layer, variant=variant, output=output, **objective_kwargs)
        super().__init__(model, layer=layer, output=output, use_logits=True, run_eagerly=run_eagerly,
                         jit_compile=jit_compile)

    def _build_runner(self):
        # The trainer's: the attention is trained and read on the same feature map.
        path = self.trainer.layer_path
        return path, _graph.layer_at(self.model, path), self.trainer.runner

    def compile(self, optimizer="adam", **kwargs):
        """Compile the trainer (no loss argument: the objective is built in)."""
        self.trainer.compile(optimizer=optimizer, **kwargs)

    def fit(self, x=None, y=None, **kwargs):
        """Train the attention module: ``x`` images, ``y`` integer labels (or a dataset of pairs)."""
        if not self.trainer.compiled:
            self.compile(keras.optimizers.Adam(1e-3))
        return self.trainer.fit(x, y, **kwargs)

    def raw_maps(self, images, targets):
        if targets is None:
            targets = self.predict_targets(images)
        c = self.trainer(ops.convert_to_tensor(images))["attention"]
        c = np.asarray(ops.convert_to_numpy(ops.cast(c, "float32")))
        return c[np.arange(len(images)), :, :, targets]

    def compiled_maps(self, images, targets) -> np.ndarray:
        if not self.trainer.attention.built:
            self.trainer(ops.convert_to_tensor(images[:1]))  # create the attention weights outside the trace
        return super().compiled_maps(images, targets)

    def _variables(self):
        return _compile.unique_variables(self.model, self.trainer)

    def _build_maps_fn(self, size):
        def maps_fn(x, targets):
            feats, logits = self.runner.features_and_logits(x)
            targets = _resolve_targets(targets, ops.cast(logits, "float32"))
            c = ops.cast(self.trainer.attention(feats), "float32")  # (B, h, w, classes)
            idx = ops.reshape(targets, (-1, 1, 1, 1))
            a = ops.squeeze(ops.take_along_axis(c, idx, axis=-1), -1)
            return normalize_maps_tensor(resize_cam(a, size))

        return maps_fn
