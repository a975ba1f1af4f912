"""TensorBoard images of class activation maps over training."""

from __future__ import annotations

import numpy as np
import keras
from keras import ops

from keras_priors.data.preview import mask_outline
from keras_priors.explain.resize_cam import resize_cam
from keras_priors.metrics.worst_group_accuracy import predicted_labels
from keras_priors.validation import RenamedAttribute, check_positive_int, renamed_arguments


def _colormap(x):
    """A small perceptual-ish colormap (black-red-yellow-white) for maps in [0, 1], numpy only."""
    x = np.clip(x, 0.0, 1.0)[..., None]
    r = np.clip(3 * x, 0, 1)
    g = np.clip(3 * x - 1, 0, 1)
    b = np.clip(3 * x - 2, 0, 1)
    return np.concatenate([r, g, b], axis=-1)


def _normalize(cam):
    cam = np.maximum(cam, 0.0)
    top = cam.reshape(cam.shape[0], -1).max(axis=1).reshape(-1, 1, 1)
    return np.where(top > 0, cam / np.maximum(top, 1e-12), 0.0)


def cam_overlay_grid(images, cams_true, cams_pred, masks=None, alpha: float = 0.5) -> np.ndarray:
    """Rows of [image | CAM of the true class | CAM of the predicted class], mask outline in cyan.

    Args:
        images: (B, H, W, 3) in [0, 1].
        cams_true, cams_pred: (B, H, W) maps (any range; the positive part is shown, max-normalised).
        masks: optional (B, H, W) object masks.

    Returns:
        float32 (B * H, 3 * W, 3) image in [0, 1].
    """
    images = np.clip(np.asarray(images, "float32"), 0, 1)
    panels = [images]
    for cam in (cams_true, cams_pred):
        heat = _colormap(_normalize(np.asarray(cam, "float32")))
        panels.append((1 - alpha) * images + alpha * heat)
    if masks is not None:
        edge = mask_outline(np.asarray(masks).reshape(images.shape[:3]))
        for p in panels:
            p[edge] = (0.0, 1.0, 1.0)
    grid = np.concatenate(panels, axis=2)  # (B, H, 3W, 3)
    return grid.reshape(-1, grid.shape[2], 3).astype("float32")


def class_maps(model, batch, num_classes=None):
    """(cam_true, cam_pred, predictions) at image resolution for a dict batch, numpy."""
    out = model(batch, training=False)
    cam = np.asarray(ops.convert_to_numpy(ops.cast(out["cam"], "float32")))
    logits = np.asarray(ops.convert_to_numpy(ops.cast(out["logits"], "float32")))
    labels = np.asarray(batch["label"]).reshape(-1).astype(int)
    pred = np.asarray(ops.convert_to_numpy(predicted_labels(logits))).astype(int)
    if cam.shape[-1] == 1:  # single logit: positive = class 1, negative = class 0
        sign = lambda c: np.where(c == 1, 1.0, -1.0).reshape(-1, 1, 1)  # noqa: E731
        cam_true, cam_pred = cam[..., 0] * sign(labels), cam[..., 0] * sign(pred)
    else:
        idx = np.arange(len(labels))
        cam_true, cam_pred = cam[idx, :, :, labels], cam[idx, :, :, pred]
    size = tuple(np.asarray(batch["image"]).shape[1:3])
    return resize_cam(cam_true, size), resize_cam(cam_pred, size), pred


class CAMImages(keras.callbacks.Callback):
    """Write CAM overlay grids for a fixed validation batch to TensorBoard every N epochs.

    Each row shows the image, the CAM of the true class and the CAM of the
    predicted class, with the object mask outlined. Works for any model
    with ``logits`` and ``cam`` outputs (all zoo models), on the TensorFlow,
    JAX and torch backends (images are written with ``tf.summary``).

    Args:
        data: a dict batch, or a dataset of dict batches (its first batch is used).
        log_dir: TensorBoard log directory (the images go to ``<log_dir>/cam``).
        every_n_epochs: write every N epochs (and after the last).
        max_images: rows in the grid.
        mask: the data key of the mask whose outline is drawn (if present).
            (``mask_key`` before 0.2: still accepted, with a ``DeprecationWarning``.)

    Example:

    >>> import os, tempfile
    >>> import keras_priors as kp
    >>> model = kp.zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3))
    >>> test_ds = kp.data.kakapo("test", image_size=32, num_samples=4, batch_size=4)
    >>> tmp = tempfile.TemporaryDirectory()
    >>> cb = CAMImages(test_ds, log_dir=tmp.name, max_images=2)

    ``model.fit(train_ds, epochs=5, callbacks=[cb])`` writes the grid after
    every epoch; here the callback's epoch-end hook is called directly:

    >>> cb.set_model(model)
    >>> cb.on_epoch_end(0)
    >>> cb.on_train_end()
    >>> [f.startswith("events.out.tfevents") for f in os.listdir(os.path.join(tmp.name, "cam"))]
    [True]
    >>> tmp.cleanup()
    """

    mask_key = RenamedAttribute("mask_key", "mask")

    @renamed_arguments(mask_key="mask")
    def __init__(self, data, log_dir: str, every_n_epochs: int = 1, max_images: int = 8,
                 mask: str = "object_mask"):
        super().__init__()
        self.every_n_epochs = check_positive_int("every_n_epochs", every_n_epochs, owner="CAMImages")
        self.max_images = check_positive_int("max_images", max_images, owner="CAMImages")
        if not isinstance(data, dict):
            data = next(iter(data))
        if not isinstance(data, dict) or "image" not in data or "label" not in data:
            raise ValueError("CAMImages: Expected `data` to be (a dataset of) dict batches with 'image' and "
                             f"'label'. Received: {type(data).__name__}")
        self.batch = {k: np.asarray(v)[: self.max_images] for k, v in data.items()}
        self.log_dir = log_dir
        self.mask = mask
        self._writer = None

    def _write(self, epoch):
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(f"{self.log_dir}/cam")
        cam_true, cam_pred, _ = class_maps(self.model, self.batch)
        mask = self.batch.get(self.mask)
        grid = cam_overlay_grid(self.batch["image"], cam_true, cam_pred, None if mask is None else mask[..., 0])
        with self._writer.as_default():
            tf.summary.image("cam/image_true_predicted", grid[None], step=epoch)
        self._writer.flush()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs == 0:
            self._write(epoch)

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
