"""The explainer base class: one hook (``get_cam_weights``) per method."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_priors.explain import _graph
from keras_priors.explain._utils import check_images, check_targets, normalize_maps, resize_maps


class BaseCAM:
    """Base class of the CAM family: ``explainer(images, targets=None) -> maps``.

    A subclass changes only how channel weights are computed
    (:meth:`get_cam_weights`); the rest (finding the layer through nested models,
    feature maps, gradients on TF or JAX, ``relu(sum_k w_k A_k)``, bilinear
    upsampling to image size, per-image min-max normalisation) is shared, as in
    pytorch-grad-cam's ``BaseCAM``.

    Works on any functional or Sequential Keras 3 classifier, including one whose
    trunk is a nested model: the graph is re-executed with a hook at the target
    layer (see ``keras_priors/explain/_graph.py``), so there is no
    "Graph disconnected" error.

    Args:
        model: a functional or Sequential Keras classifier.
        layer: the layer whose feature map is explained: None (the last layer
            with a 4D output, a nested backbone counts), a layer name, a
            ``"outer/inner"`` path into nested models, or a Layer.
        output: which model output gives the class scores (index or name); None
            picks an output named ``"logits"`` if any, else the first.
        use_logits: score the pre-softmax logit when the model ends with a
            softmax (default True, as in Grad-CAM).
    """

    #: Whether :meth:`get_cam_weights` needs gradients of the score w.r.t. the feature map.
    uses_gradients = False

    def __init__(self, model, layer=None, output=None, use_logits: bool = True):
        self.model = model
        self.layer = layer
        self.output = output
        self.use_logits = use_logits
        probe = _graph.GraphRunner(model, [], output=output, linear_output=use_logits)
        self.path, self.target_layer = _graph.resolve_layer(model, layer, probe.output_kt)
        self.runner = _graph.GraphRunner(model, self.path, output=output, linear_output=use_logits)
        if self.uses_gradients:
            _graph.check_connected(model, self.path, self.runner.output_kt)
        self.num_classes = self.runner.num_classes

    # === Hook ===
    def get_cam_weights(self, images, targets, activations, grads) -> np.ndarray:
        """Channel weights (B, K) from activations (B, h, w, K) and grads (or None)."""
        raise NotImplementedError

    # === Shared machinery ===
    def _check(self, images, targets):
        images = check_images(images, getattr(self.model, "input_shape", None))
        targets = check_targets(targets, images.shape[0], self.num_classes)
        return images, targets

    def __call__(self, images, targets=None) -> np.ndarray:
        """Maps (B, H, W) float32 in [0, 1] at image resolution.

        Args:
            images: (B, H, W, C) array.
            targets: None (the predicted class), an int, or one int per image.
        """
        images, targets = self._check(images, targets)
        raw = self.raw_maps(images, targets)
        return self.postprocess(raw, images.shape[1:3])

    def postprocess(self, raw, size):
        return normalize_maps(resize_maps(raw, size))

    def raw_maps(self, images, targets) -> np.ndarray:
        """Low-resolution maps ``relu(sum_k w_k A_k)`` (B, h, w)."""
        if self.uses_gradients:
            acts, grads, targets = self.activations_and_grads(images, targets)
        else:
            acts, logits = self.runner.features_and_logits(ops.convert_to_tensor(images))
            acts = np.asarray(ops.convert_to_numpy(acts), np.float32)
            if targets is None:
                targets = np.argmax(ops.convert_to_numpy(logits), axis=-1).astype(np.int32)
            grads = None
        weights = np.asarray(self.get_cam_weights(images, targets, acts, grads), np.float32)
        cam = np.einsum("bhwk,bk->bhw", acts, weights)
        return np.maximum(cam, 0.0)

    def predict_targets(self, images) -> np.ndarray:
        logits = self.runner.logits(ops.convert_to_tensor(images))
        return np.argmax(ops.convert_to_numpy(logits), axis=-1).astype(np.int32)

    def activations_and_grads(self, images, targets):
        """Feature map A (B,h,w,K), d score_target / dA, and the targets used (numpy)."""
        x = ops.convert_to_tensor(images)
        feats = self.runner.features(x)
        if targets is None:
            logits = self.runner.logits_from_features(x, feats)
            targets = np.argmax(ops.convert_to_numpy(logits), axis=-1).astype(np.int32)
        backend = keras.backend.backend()
        if backend == "tensorflow":
            grads = self._grads_tf(x, feats, targets)
        elif backend == "jax":
            grads = self._grads_jax(x, feats, targets)
        else:
            raise NotImplementedError(
                f"{type(self).__name__} needs gradients: supported backends are 'tensorflow' and 'jax'. "
                f"Received: keras backend {backend!r}."
            )
        return (
            np.asarray(ops.convert_to_numpy(feats), np.float32),
            np.asarray(grads, np.float32),
            targets,
        )

    def _score(self, x, feats, targets):
        logits = ops.cast(self.runner.logits_from_features(x, feats), "float32")
        return ops.sum(_graph.gather_scores(logits, targets))

    def _grads_tf(self, x, feats, targets):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(feats)
            score = self._score(x, feats, targets)
        grads = tape.gradient(score, feats)
        if grads is None:
            raise ValueError(
                f"Expected a differentiable path from `layer` to the class score. Received: "
                f"layer={'/'.join(self.path)!r}: the score does not depend on it differentiably "
                "(gradient is None)."
            )
        return grads.numpy()

    def _grads_jax(self, x, feats, targets):
        import jax

        _, vjp = jax.vjp(lambda f: self._score(x, f, targets), feats)
        (grads,) = vjp(np.float32(1.0))
        grads = np.asarray(grads)
        if grads.dtype == jax.dtypes.float0:
            raise ValueError(
                f"Expected a differentiable path from `layer` to the class score. Received: "
                f"layer={'/'.join(self.path)!r} (gradient is not defined)."
            )
        return grads
