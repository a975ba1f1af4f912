"""The shared harness must catch the faults it exists for."""

import keras
import numpy as np
import pytest
from keras import ops

from harness import run_layer_test, run_loss_test


@keras.saving.register_keras_serializable(package="keras_priors_tests")
class _Scale(keras.layers.Layer):
    def __init__(self, units=2, **kwargs):
        super().__init__(**kwargs)
        self.units = units

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.units), initializer="ones")

    def call(self, x):
        return ops.matmul(x, self.w)

    def get_config(self):
        return {**super().get_config(), "units": self.units}


class _Forgetful(_Scale):
    """Drops `units` from its config: the round trip must fail."""

    def get_config(self):
        config = super().get_config()
        config.pop("units")
        return config


@keras.saving.register_keras_serializable(package="keras_priors_tests")
class _MeanAbs(keras.losses.Loss):
    def call(self, y_true, y_pred):
        return ops.mean(ops.abs(ops.cast(y_pred, "float32") - ops.cast(y_true, "float32")), axis=-1)


def test_harness_passes_a_correct_layer():
    run_layer_test(_Scale, {"units": 3}, input_shape=(4, 5), expected_output_shape=(4, 3),
                   expected_num_trainable_weights=1)


def test_harness_catches_wrong_shape():
    with pytest.raises(AssertionError, match="output shapes"):
        run_layer_test(_Scale, {"units": 3}, input_shape=(4, 5), expected_output_shape=(4, 2))


def test_harness_catches_broken_config():
    with pytest.raises(Exception):
        run_layer_test(_Forgetful, {"units": 3}, input_shape=(4, 5), run_training_check=False)


def test_harness_loss():
    y_true = np.zeros((2, 3), "float32")
    y_pred = np.ones((2, 3), "float32")
    assert run_loss_test(_MeanAbs, {}, y_true, y_pred, expected=1.0) == pytest.approx(1.0)
    with pytest.raises(AssertionError):
        run_loss_test(_MeanAbs, {}, y_true, y_pred, expected=0.5)
