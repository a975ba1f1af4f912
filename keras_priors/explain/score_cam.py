"""Score-CAM: channel weights are the class scores of the image masked by each channel."""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_priors.explain._utils import normalize_maps, resize_maps, softmax_np
from keras_priors.explain.base_cam import BaseCAM
from keras_priors.validation import check_positive_int


class ScoreCAM(BaseCAM):
    """Score-CAM: ``w_k = softmax(f(X * norm(up(A_k))))_c``, no gradients.

    Each channel of the feature map is upsampled to image size and min-max
    normalised into a soft mask; the classifier runs on every masked image
    (batched, ``batch_size`` masked images per forward) and the target class's
    softmax probability is the channel weight (as in the authors' code).
    ``max_n`` keeps only the ``max_n`` channels with the highest spatial
    variance (Faster Score-CAM); the others get weight 0.

    Args:
        model: a functional/Sequential Keras classifier.
        layer: None (last 4D layer), a name, an ``"outer/inner"`` path, or a Layer.
        output: which model output (index or name); None = "logits" or the first.
        batch_size: masked images per forward pass.
        max_n: None (all channels) or the number of highest-variance channels kept.

    Example:
        >>> maps = ScoreCAM(model, batch_size=64, max_n=16)(images)

    Reference:
        Wang et al., "Score-CAM: Score-Weighted Visual Explanations for
        Convolutional Neural Networks", CVPR-W 2020.
    """

    def __init__(self, model, layer=None, output=None, batch_size: int = 32, max_n: int | None = None):
        super().__init__(model, layer=layer, output=output, use_logits=True)
        self.batch_size = check_positive_int("batch_size", batch_size, "ScoreCAM")
        self.max_n = None if max_n is None else check_positive_int("max_n", max_n, "ScoreCAM")

    def _probs(self, batch):
        logits = self.runner.logits(ops.convert_to_tensor(batch))
        return softmax_np(np.asarray(ops.convert_to_numpy(ops.cast(logits, "float32")), np.float64))

    def get_cam_weights(self, images, targets, activations, grads):
        B, H, W = images.shape[:3]
        K = activations.shape[-1]
        weights = np.zeros((B, K), np.float32)
        for b in range(B):
            acts = np.moveaxis(activations[b], -1, 0)  # (K, h, w)
            channels = np.arange(K)
            if self.max_n is not None and self.max_n < K:
                var = acts.reshape(K, -1).var(axis=1)
                channels = np.sort(np.argsort(-var, kind="stable")[: self.max_n])
            masks = normalize_maps(resize_maps(acts[channels], (H, W)))  # (n, H, W)
            for start in range(0, len(channels), self.batch_size):
                m = masks[start : start + self.batch_size]
                probs = self._probs(images[b][None] * m[..., None])
                weights[b, channels[start : start + self.batch_size]] = probs[:, targets[b]]
        return weights
