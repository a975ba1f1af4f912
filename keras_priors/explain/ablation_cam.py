"""Ablation-CAM: channel weights are the relative drop of the class score when the channel is zeroed."""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_priors.explain import _graph
from keras_priors.explain.base_cam import BaseCAM, explainer_docstring
from keras_priors.validation import check_positive_int


def _relative_drop(scores, ablated):
    """``(y - y_k) / y`` with ``y`` (B, 1) and ``y_k`` (B, K); a zero ``y`` divides by 1 instead."""
    scores = np.asarray(scores, np.float32)
    return ((scores - ablated) / np.where(scores == 0.0, 1.0, scores)).astype(np.float32)


@explainer_docstring
class AblationCAM(BaseCAM):
    """Ablation-CAM: ``w_k = (y_c - y_c^k) / y_c``, ``y_c^k`` the score with channel ``k`` of the map set to 0.

    No gradients: the classifier's tail (from the explained layer to the
    score) runs once per (image, channel) with that channel zeroed. The map
    is ``relu(sum_k w_k A_k)``, upsampled and min-max normalised. The weights
    are normalised as pytorch-grad-cam's ``AblationCAM`` does, by the score
    itself (no absolute value: a negative score turns the map over; a score
    of exactly 0 is not divided by). The ablated channel is set to 0, as in
    the paper; pytorch-grad-cam instead sets it to ``min(A) - 1e7`` when the
    feature map has negative values.

    Batched: the feature map is computed once, then ``batch_size`` ablated
    copies (pairs of all images of the batch packed together) go through the
    tail per forward pass, in one compiled function (the last chunk is
    padded, so one trace serves every chunk). The trunk up to the layer is
    not run again.

    Args:
        {model_args}
        batch_size: ablated feature maps per forward pass of the tail.
        run_eagerly: run op by op (a loop over images and chunks) instead of
            compiled functions (see :class:`BaseCAM`).
        jit_compile: TensorFlow only: compile with XLA.

    Example:
        {example_model}
        >>> maps = AblationCAM(model, batch_size=8)(images, targets=[1, 0])   # 2 x 8 ablations
        >>> maps.shape
        (2, 16, 16)

    Reference:
        Desai & Ramaswamy, "Ablation-CAM: Visual Explanations for Deep
        Convolutional Network via Gradient-free Localization", WACV 2020.
    """

    def __init__(self, model, layer=None, output=None, use_logits: bool = True, batch_size: int = 128,
                 run_eagerly: bool = False, jit_compile: bool = False):
        super().__init__(model, layer=layer, output=output, use_logits=use_logits, run_eagerly=run_eagerly,
                         jit_compile=jit_compile)
        self.batch_size = check_positive_int("batch_size", batch_size, "AblationCAM")

    def cache_config(self):
        """Nothing else changes the compiled functions (``batch_size`` acts outside them)."""
        return ()

    def _scores(self, images, feats, targets):
        logits = ops.cast(self.runner.logits_from_features(ops.convert_to_tensor(images),
                                                           ops.convert_to_tensor(feats)), "float32")
        return np.asarray(ops.convert_to_numpy(_graph.gather_scores(logits, targets)), np.float32)

    def get_cam_weights(self, images, targets, activations, grads):
        """Channel weights (B, K), eagerly: one forward pass of the tail per chunk of one image's ablations."""
        activations = np.asarray(activations, np.float32)
        B, K = activations.shape[0], activations.shape[-1]
        targets = np.asarray(targets, np.int32)
        ablated = np.zeros((B, K), np.float32)
        for b in range(B):
            for start in range(0, K, self.batch_size):
                channels = np.arange(start, min(start + self.batch_size, K))
                feats = np.repeat(activations[b][None], len(channels), axis=0)
                feats[np.arange(len(channels)), ..., channels] = 0.0
                imgs = np.repeat(images[b][None], len(channels), axis=0)
                ablated[b, channels] = self._scores(imgs, feats, np.full(len(channels), targets[b], np.int32))
        scores = self._scores(images, activations, targets)
        return _relative_drop(scores[:, None], ablated)

    # === Compiled path ===
    def compiled_maps(self, images, targets) -> np.ndarray:
        B, H, W = images.shape[:3]
        feats_fn = self.compiled_function("features_and_scores", (H, W), self._build_features_fn,
                                          self.images_signature(images) + [((None,), "int32")])
        feats, scores, targets = feats_fn(ops.convert_to_tensor(images), self._targets_tensor(targets, B))
        K = int(feats.shape[-1])
        n = B * K
        chunk = min(self.batch_size, n)
        pad = -n % chunk
        pairs = np.concatenate([np.arange(n), np.zeros(pad, int)]).astype(np.int32)
        signature = (self.images_signature(images) + [((None,) + tuple(feats.shape[1:]), "float32")]
                     + [((None,), "int32")] * 3)
        fn = self.compiled_function("ablated_scores", (H, W), self._build_ablated_fn, signature)
        images_t = ops.convert_to_tensor(images)
        out = []
        for start in range(0, n + pad, chunk):
            sl = pairs[start:start + chunk]
            out.append(fn(images_t, feats, ops.convert_to_tensor(sl // K), ops.convert_to_tensor(sl % K), targets))
        ablated = np.concatenate([np.asarray(ops.convert_to_numpy(o), np.float32) for o in out])[:n]
        scores = np.asarray(ops.convert_to_numpy(scores), np.float32)
        weights = _relative_drop(scores[:, None], ablated.reshape(B, K))
        acts = np.asarray(ops.convert_to_numpy(feats), np.float32)
        cam = np.maximum(np.einsum("bhwk,bk->bhw", acts, weights), 0.0)
        return self.postprocess(cam, (H, W))

    def _build_features_fn(self, size):
        def features_fn(x, targets):
            feats, logits = self.runner.features_and_logits(x)
            logits = ops.cast(logits, "float32")
            predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
            targets = ops.where(targets < 0, predicted, targets)
            return ops.cast(feats, "float32"), _graph.gather_scores(logits, targets), targets

        return features_fn

    def _build_ablated_fn(self, size):
        def ablated_fn(images, feats, image_index, channel_index, targets):
            keep = 1.0 - ops.one_hot(channel_index, ops.shape(feats)[-1], dtype="float32")  # (n, K)
            ablated = ops.take(feats, image_index, axis=0) * keep[:, None, None, :]
            logits = self.runner.logits_from_features(ops.take(images, image_index, axis=0), ablated)
            return _graph.gather_scores(ops.cast(logits, "float32"), ops.take(targets, image_index, axis=0))

        return ablated_fn
