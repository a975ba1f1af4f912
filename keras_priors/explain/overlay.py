"""Overlay a saliency map on an image as a uint8 RGB array (for PNGs, TensorBoard)."""

from __future__ import annotations

import numpy as np


def _jet(x: np.ndarray) -> np.ndarray:
    """The classic 'jet' colormap for values in [0, 1] -> (..., 3) in [0, 1]."""
    r = np.clip(1.5 - np.abs(4.0 * x - 3.0), 0.0, 1.0)
    g = np.clip(1.5 - np.abs(4.0 * x - 2.0), 0.0, 1.0)
    b = np.clip(1.5 - np.abs(4.0 * x - 1.0), 0.0, 1.0)
    return np.stack([r, g, b], axis=-1)


def overlay(image, heatmap, alpha: float = 0.5) -> np.ndarray:
    """Blend a jet-coloured ``heatmap`` over ``image``.

    Args:
        image: (H, W, 3) or (H, W, 1)/(H, W) float in [0, 1] or uint8.
        heatmap: (H, W) map in [0, 1] (e.g. one map from an explainer).
        alpha: weight of the heatmap, in [0, 1].

    Returns:
        (H, W, 3) uint8 RGB array.

    Example:
        >>> import numpy as np
        >>> image = np.zeros((4, 4, 3), "float32")   # a black image
        >>> heatmap = np.zeros((4, 4), "float32"); heatmap[0, 0] = 1.0
        >>> png = overlay(image, heatmap, alpha=0.5)
        >>> png.shape, png.dtype.name
        ((4, 4, 3), 'uint8')
        >>> png[0, 0].tolist(), png[3, 3].tolist()   # 1.0 is jet's dark red, 0.0 its dark blue
        ([64, 0, 0], [0, 0, 64])
    """
    img = np.asarray(image)
    if img.dtype == np.uint8:
        img = img.astype(np.float32) / 255.0
    img = np.asarray(img, np.float32)
    if img.ndim == 2:
        img = img[..., None]
    if img.ndim != 3 or img.shape[-1] not in (1, 3):
        raise ValueError(f"Expected `image` of shape (H, W, 3) or (H, W, 1). Received: image with shape {img.shape}.")
    if img.shape[-1] == 1:
        img = np.repeat(img, 3, axis=-1)
    hm = np.asarray(heatmap, np.float32)
    if hm.ndim == 3 and hm.shape[-1] == 1:
        hm = hm[..., 0]
    if hm.shape != img.shape[:2]:
        raise ValueError(
            f"Expected `heatmap` of shape {img.shape[:2]} to match the image. Received: heatmap with shape {hm.shape}."
        )
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"Expected `alpha` in [0, 1]. Received: alpha={alpha}")
    out = (1.0 - alpha) * np.clip(img, 0, 1) + alpha * _jet(np.clip(hm, 0, 1))
    return np.round(np.clip(out, 0.0, 1.0) * 255.0).astype(np.uint8)
