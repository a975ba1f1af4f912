"""TensorBoard callback that tracks the effective receptive field over training."""

from __future__ import annotations

from typing import Any, Sequence

import keras
import numpy as np

from keras_priors.api_export import keras_priors_export
from keras_priors.receptive_field.effective import effective_receptive_field
from keras_priors.validation import check_positive_int


@keras_priors_export("keras_priors.receptive_field.ERFImages")
class ERFImages(keras.callbacks.Callback):
    """Writes the effective receptive field of a layer to TensorBoard every few epochs.

    Luo et al. observed that the ERF grows during training; this callback logs
    the ERF map as an image (``erf/<layer>``) and its 50 %/90 % mass radii as
    scalars, so the growth can be followed. The map is computed with the
    backend's own gradients (TF or JAX) and written with ``tf.summary``.

    Args:
        layer: name of the probed layer (``"backbone/conv4"`` for nested models).
        log_dir: TensorBoard log directory.
        every_n_epochs: log at epochs 0, n, 2n, ...
        inputs: images ``(N, H, W, C)`` to average over; default random inputs.
        num_samples: number of samples averaged.
        input_shape: ``(H, W, C)`` for random inputs when the model has
            unknown input sizes.
        unit: probed output unit; default the centre unit.

    Example:
    >>> import os, tempfile, keras, numpy as np
    >>> model = keras.Sequential([keras.Input((16, 16, 1))]
    ...                          + [keras.layers.Conv2D(2, 3, name=f"conv{i}") for i in (1, 2, 3)])
    >>> model.compile(optimizer="sgd", loss="mse")
    >>> x, y = np.zeros((4, 16, 16, 1), "float32"), np.zeros((4, 10, 10, 2), "float32")
    >>> tmp = tempfile.TemporaryDirectory()
    >>> cb = ERFImages("conv3", log_dir=tmp.name, every_n_epochs=2)
    >>> history = model.fit(x, y, epochs=1, callbacks=[cb], verbose=0)   # logs at epoch 0
    >>> [f.startswith("events.out.tfevents") for f in os.listdir(tmp.name)]
    [True]
    >>> tmp.cleanup()

    Reference:
        Luo et al., "Understanding the Effective Receptive Field in Deep
        Convolutional Neural Networks", NeurIPS 2016.
    """

    def __init__(
        self,
        layer: str,
        log_dir: str,
        every_n_epochs: int = 1,
        inputs: Any = None,
        num_samples: int = 8,
        input_shape: Sequence[int] | None = None,
        unit: Sequence[int] | None = None,
    ):
        super().__init__()
        if not isinstance(layer, str) or not layer:
            raise ValueError(f"Expected `layer` to be a non-empty layer name. Received: layer={layer!r}")
        if not isinstance(log_dir, str) or not log_dir:
            raise ValueError(f"Expected `log_dir` to be a directory path. Received: log_dir={log_dir!r}")
        self.layer = layer
        self.log_dir = log_dir
        self.every_n_epochs = check_positive_int("every_n_epochs", every_n_epochs, owner="ERFImages")
        self.inputs = inputs
        self.num_samples = check_positive_int("num_samples", num_samples, owner="ERFImages")
        self.input_shape = input_shape
        self.unit = unit
        self.history: list[tuple[int, Any]] = []
        self._writer = None

    def get_config(self) -> dict:
        """Constructor arguments (``inputs`` is data, not config, and is left out)."""
        return {
            "layer": self.layer,
            "log_dir": self.log_dir,
            "every_n_epochs": self.every_n_epochs,
            "num_samples": self.num_samples,
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "unit": None if self.unit is None else list(self.unit),
        }

    @classmethod
    def from_config(cls, config: dict) -> "ERFImages":
        return cls(**config)

    def _get_writer(self):
        if self._writer is None:
            import tensorflow as tf

            self._writer = tf.summary.create_file_writer(self.log_dir)
        return self._writer

    def on_epoch_end(self, epoch, logs=None):
        if epoch % self.every_n_epochs != 0:
            return
        result = effective_receptive_field(
            self.model, self.layer, inputs=self.inputs, num_samples=self.num_samples,
            input_shape=self.input_shape, unit=self.unit,
        )
        self.history.append((epoch, result))
        m = np.abs(result.map)
        peak = m.max()
        img = (m / peak if peak > 0 else m).astype("float32")[None, :, :, None]
        import tensorflow as tf

        tag = self.layer.replace("/", "_")
        with self._get_writer().as_default():
            tf.summary.image(f"erf/{tag}", img, step=epoch)
            tf.summary.scalar(f"erf/{tag}/radius_50", result.radius_50, step=epoch)
            tf.summary.scalar(f"erf/{tag}/radius_90", result.radius_90, step=epoch)
            tf.summary.scalar(f"erf/{tag}/std_y", result.std[0], step=epoch)
        self._get_writer().flush()

    def on_train_end(self, logs=None):
        if self._writer is not None:
            self._writer.close()
            self._writer = None
