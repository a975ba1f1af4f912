"""Numpy helpers shared by explainers and metrics: interpolation matrices, normalising, input checks."""

from __future__ import annotations

import numbers

import numpy as np


def interpolation_matrix(out_size: int, in_size: int) -> np.ndarray:
    """(out_size, in_size) bilinear interpolation matrix, half-pixel centres (like tf/jax resize).

    ``M @ v`` upsamples a 1D signal ``v`` the way ``tf.image.resize(..., "bilinear")``
    does (no antialiasing), so a 2D map resizes as ``My @ m @ Mx.T``, identically on
    every backend.
    """
    m = np.zeros((out_size, in_size), np.float32)
    scale = in_size / out_size
    for i in range(out_size):
        x = (i + 0.5) * scale - 0.5
        x = min(max(x, 0.0), in_size - 1)
        x0 = int(np.floor(x))
        x1 = min(x0 + 1, in_size - 1)
        w = x - x0
        m[i, x0] += 1.0 - w
        m[i, x1] += w
    return m


def normalize_maps(maps: np.ndarray, eps: float = 1e-7) -> np.ndarray:
    """Per-map min-max normalisation to [0, 1]; a constant map becomes all zeros."""
    maps = np.asarray(maps, np.float32)
    lo = maps.min(axis=(1, 2), keepdims=True)
    hi = maps.max(axis=(1, 2), keepdims=True)
    span = hi - lo
    out = np.where(span > eps, (maps - lo) / np.maximum(span, eps), 0.0)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def check_images(images, input_shape=None, argname: str = "images") -> np.ndarray:
    """Return ``images`` as float32 (B, H, W, C), checking rank and the model's input size."""
    arr = np.asarray(images)
    if arr.ndim != 4:
        raise ValueError(
            f"Expected `{argname}` to be a batch of images with shape (batch, height, width, channels). "
            f"Received: {argname} with shape {arr.shape} (rank {arr.ndim})."
        )
    if input_shape is not None:
        want = tuple(input_shape[1:])
        for got_d, want_d in zip(arr.shape[1:], want):
            if want_d is not None and got_d != want_d:
                raise ValueError(
                    f"Expected `{argname}` of shape (batch, {', '.join(str(d) for d in want)}) to match the "
                    f"model input. Received: {argname} with shape {arr.shape}."
                )
    return arr.astype(np.float32)


def check_targets(targets, batch: int, num_classes: int, argname: str = "targets"):
    """Return ``targets`` as int32 (B,), or None. Accepts an int or one int per image."""
    if targets is None:
        return None
    if isinstance(targets, numbers.Integral) and not isinstance(targets, bool):
        arr = np.full((batch,), int(targets), np.int64)
    else:
        arr = np.asarray(targets)
        if arr.ndim == 0:
            arr = np.full((batch,), int(arr), np.int64)
        if arr.ndim != 1 or arr.shape[0] != batch or not np.issubdtype(arr.dtype, np.integer):
            raise ValueError(
                f"Expected `{argname}` to be None, an int, or {batch} ints (one per image). "
                f"Received: {argname}={targets!r}"
            )
    bad = (arr < 0) | (arr >= num_classes)
    if bad.any():
        raise ValueError(
            f"Expected `{argname}` in [0, {num_classes}) (the model has {num_classes} classes). "
            f"Received: {argname}={arr.tolist()}"
        )
    return arr.astype(np.int32)


def softmax_np(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


# === Tensor versions (keras.ops), used inside compiled explainer functions ===
def normalize_maps_tensor(maps, eps: float = 1e-7):
    """:func:`normalize_maps` with keras.ops (per-map min-max to [0, 1], constant maps -> 0)."""
    from keras import ops

    lo = ops.min(maps, axis=(1, 2), keepdims=True)
    hi = ops.max(maps, axis=(1, 2), keepdims=True)
    span = hi - lo
    out = ops.where(span > eps, (maps - lo) / ops.maximum(span, eps), ops.zeros_like(maps))
    return ops.clip(out, 0.0, 1.0)
