"""Image file reading shared by the folder and CUB loaders (decoded with ``tf.io``)."""

from __future__ import annotations

import os

import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")


def decode_file(path: str, channels: int) -> np.ndarray:
    """Decode an image file to a uint8 (H, W, channels) array, or raise naming the file."""
    import tensorflow as tf

    if not os.path.isfile(path):
        raise FileNotFoundError(f"Image file not found: {path!r}")
    try:
        data = tf.io.read_file(path)
        img = tf.io.decode_image(data, channels=channels, expand_animations=False, dtype=tf.uint8)
    except (tf.errors.InvalidArgumentError, tf.errors.UnknownError, tf.errors.NotFoundError) as err:
        msg = getattr(err, "message", str(err)).splitlines()[0]
        raise ValueError(
            f"Could not decode image file {path!r}: expected a JPEG, PNG, GIF or BMP image. ({msg})"
        ) from None
    return img.numpy()


def resize(array: np.ndarray, size: int, method: str = "bilinear") -> np.ndarray:
    """Resize (H, W, C) to (size, size, C) float32 with align-corners sampling.

    Uses ``tf.image.crop_and_resize`` on the full box so that normalised box
    coordinates (``v * (size - 1)``) mean the same pixels before and after.
    """
    import tensorflow as tf

    out = tf.image.crop_and_resize(
        tf.convert_to_tensor(array, tf.float32)[None], [[0.0, 0.0, 1.0, 1.0]], [0], [size, size], method=method
    )[0]
    return out.numpy()


def load_pair(image_path: str, mask_path: str | None, size: int, threshold: float = 127.0):
    """Image as float32 [0, 1] (size, size, 3) and mask as float32 {0, 1} (size, size, 1) or None.

    The mask must have the image's height and width; it is thresholded
    (``> threshold`` on 0..255 grey values) before resizing.
    """
    img = decode_file(image_path, 3)
    mask = None
    if mask_path is not None:
        m = decode_file(mask_path, 1)
        if m.shape[:2] != img.shape[:2]:
            raise ValueError(
                f"Mask {mask_path!r} does not match its image {image_path!r}: expected size "
                f"{img.shape[:2]}, received {m.shape[:2]}"
            )
        binary = (m > threshold).astype(np.float32)
        mask = (resize(binary, size) >= 0.5).astype(np.float32)
    image = np.clip(resize(img, size) / 255.0, 0.0, 1.0).astype(np.float32)
    return image, mask, img.shape[:2]
