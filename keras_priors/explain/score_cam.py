"""Score-CAM: channel weights are the class scores of the image masked by each channel."""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_priors.explain._utils import (
    normalize_maps,
    normalize_maps_tensor,
    softmax_np,
)
from keras_priors.explain.resize_cam import resize_cam
from keras_priors.explain.base_cam import BaseCAM, explainer_docstring
from keras_priors.validation import check_positive_int


@explainer_docstring
class ScoreCAM(BaseCAM):
    """Score-CAM: ``w_k = softmax(f(X * norm(up(A_k))))_c``, no gradients.

    Each channel of the feature map is upsampled to image size and min-max
    normalised into a soft mask; the classifier runs on every masked image
    (batched, ``batch_size`` masked images per forward) and the target class's
    softmax probability is the channel weight (as in the authors' code).
    ``max_n`` keeps only the ``max_n`` channels with the highest spatial
    variance (Faster Score-CAM); the others get weight 0.

    Compiled (the default), one call of a compiled function masks and scores
    ``batch_size`` (image, channel) pairs at once, pairs of all images of the
    batch packed together (the last chunk is padded, so one trace serves every
    chunk). A channel whose map is constant gives an all-zero mask, i.e. the
    all-zero image, for every image: it is scored once per call instead of once
    per channel (the same number, without the forward passes).

    Args:
        model: a functional/Sequential Keras classifier.
        layer: None (last 4D layer), a name, an ``"outer/inner"`` path, or a Layer.
        output: which model output (index or name); None = "logits" or the first.
        batch_size: masked images per forward pass.
        max_n: None (all channels) or the number of highest-variance channels kept.
        run_eagerly: run op by op (a numpy loop over images and chunks) instead
            of compiled functions (see :class:`BaseCAM`).
        jit_compile: TensorFlow only: compile with XLA.

    Example:
        {example_model}
        >>> maps = ScoreCAM(model, batch_size=8, max_n=4)(images)   # the 4 most varied of 8 channels
        >>> maps.shape
        (2, 16, 16)

    Reference:
        Wang et al., "Score-CAM: Score-Weighted Visual Explanations for
        Convolutional Neural Networks", CVPR-W 2020.
    """

    def __init__(self, model, layer=None, output=None, batch_size: int = 32, max_n: int | None = None,
                 run_eagerly: bool = False, jit_compile: bool = False):
        super().__init__(model, layer=layer, output=output, use_logits=True, run_eagerly=run_eagerly,
                         jit_compile=jit_compile)
        self.batch_size = check_positive_int("batch_size", batch_size, "ScoreCAM")
        self.max_n = None if max_n is None else check_positive_int("max_n", max_n, "ScoreCAM")

    def _probs(self, batch):
        logits = self.runner.logits(ops.convert_to_tensor(batch))
        return softmax_np(np.asarray(ops.convert_to_numpy(ops.cast(logits, "float32")), np.float64))

    def _channels(self, acts):
        """Indices of the channels scored for one image's (K, h, w) maps (all, or the max_n of highest variance)."""
        K = acts.shape[0]
        if self.max_n is None or self.max_n >= K:
            return np.arange(K)
        var = acts.reshape(K, -1).var(axis=1)
        return np.sort(np.argsort(-var, kind="stable")[: self.max_n])

    def cache_config(self):
        """Nothing else changes the compiled functions (``batch_size`` and ``max_n`` act outside them)."""
        return ()

    def get_cam_weights(self, images, targets, activations, grads):
        """Channel weights (B, K), eagerly: one forward pass per chunk of one image's masked copies."""
        B, H, W = images.shape[:3]
        K = activations.shape[-1]
        weights = np.zeros((B, K), np.float32)
        for b in range(B):
            acts = np.moveaxis(activations[b], -1, 0)  # (K, h, w)
            channels = self._channels(acts)
            masks = normalize_maps(resize_cam(acts[channels], (H, W)))  # (n, H, W)
            for start in range(0, len(channels), self.batch_size):
                m = masks[start : start + self.batch_size]
                probs = self._probs(images[b][None] * m[..., None])
                weights[b, channels[start : start + self.batch_size]] = probs[:, targets[b]]
        return weights

    # === Compiled path ===
    def compiled_maps(self, images, targets) -> np.ndarray:
        B, H, W = images.shape[:3]
        feats_fn = self.compiled_function("features_and_logits", (H, W), self._build_features_fn,
                                          self.images_signature(images))
        acts, logits = feats_fn(ops.convert_to_tensor(images))
        acts = np.asarray(ops.convert_to_numpy(acts), np.float32)
        if targets is None:
            targets = np.argmax(ops.convert_to_numpy(logits), axis=-1).astype(np.int32)
        weights = self.compiled_weights(images, targets, acts)
        cam = np.maximum(np.einsum("bhwk,bk->bhw", acts, weights), 0.0)
        return self.postprocess(cam, (H, W))

    def _build_features_fn(self, size):
        def features_fn(x):
            feats, logits = self.runner.features_and_logits(x)
            return ops.cast(feats, "float32"), ops.cast(logits, "float32")

        return features_fn

    def _build_scores_fn(self, size):
        def scores_fn(images, maps, image_index, map_index, targets):
            masks = normalize_maps_tensor(resize_cam(ops.take(maps, map_index, axis=0), size))
            batch = ops.take(images, image_index, axis=0) * ops.cast(ops.expand_dims(masks, -1), images.dtype)
            probs = ops.softmax(ops.cast(self.runner.logits(batch), "float32"), axis=-1)
            return ops.squeeze(ops.take_along_axis(probs, ops.expand_dims(targets, -1), axis=-1), -1)

        return scores_fn

    def compiled_weights(self, images, targets, activations, eps: float = 1e-7) -> np.ndarray:
        """Channel weights (B, K): masked forwards in chunks of ``batch_size`` (image, channel) pairs."""
        B, H, W = images.shape[:3]
        K = activations.shape[-1]
        maps = np.moveaxis(activations, -1, 1)  # (B, K, h, w)
        pairs_b, pairs_k = [], []
        for b in range(B):
            channels = self._channels(maps[b])
            pairs_b.append(np.full(len(channels), b))
            pairs_k.append(channels)
        pairs_b, pairs_k = np.concatenate(pairs_b), np.concatenate(pairs_k)
        # A constant map normalises to an all-zero mask, whatever the image: score the zero image once.
        flat = maps.reshape(B * K, -1)
        constant = (flat.max(axis=1) - flat.min(axis=1) <= eps)[pairs_b * K + pairs_k]
        weights = np.zeros((B, K), np.float32)
        if constant.any():
            zero = np.zeros((1,) + images.shape[1:], np.float32)
            logits = ops.convert_to_numpy(self.runner_logits_compiled(zero))
            p0 = softmax_np(np.asarray(logits, np.float64))[0]
            weights[pairs_b[constant], pairs_k[constant]] = p0[targets[pairs_b[constant]]]
            pairs_b, pairs_k = pairs_b[~constant], pairs_k[~constant]
        n = len(pairs_b)
        if n == 0:
            return weights
        chunk = min(self.batch_size, n)
        pad = -n % chunk
        idx_b = np.concatenate([pairs_b, np.zeros(pad, int)]).astype(np.int32)
        idx_map = np.concatenate([pairs_b * K + pairs_k, np.zeros(pad, int)]).astype(np.int32)
        tgt = np.asarray(targets, np.int32)[idx_b]
        signature = self.images_signature(images) + [((None,) + maps.shape[2:], "float32")] + [((None,), "int32")] * 3
        fn = self.compiled_function("scores", (H, W), self._build_scores_fn, signature)
        images_t = ops.convert_to_tensor(images)
        maps_t = ops.convert_to_tensor(maps.reshape(B * K, *maps.shape[2:]))
        out = []
        for start in range(0, n + pad, chunk):
            sl = slice(start, start + chunk)
            out.append(fn(images_t, maps_t, ops.convert_to_tensor(idx_b[sl]), ops.convert_to_tensor(idx_map[sl]),
                          ops.convert_to_tensor(tgt[sl])))
        scores = np.concatenate([np.asarray(ops.convert_to_numpy(o), np.float32) for o in out])[:n]
        weights[pairs_b, pairs_k] = scores
        return weights

    def runner_logits_compiled(self, images):
        fn = self.compiled_function("logits", images.shape[1:3], lambda size: self.runner.logits,
                                    self.images_signature(images))
        return ops.cast(fn(ops.convert_to_tensor(images)), "float32")
