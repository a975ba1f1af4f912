"""FreezeBackbone + GradientGate: freeze-then-unfreeze inside one fit, on TensorFlow and JAX."""

import keras
import numpy as np
import pytest

from keras_priors import priors, zoo
from keras_priors.callbacks.freeze import FreezeBackbone, GradientGate, find_gates
from keras_priors.data.kakapo import make_kakapo

from harness import dict_dataset, run_layer_test, to_numpy


def _data():
    return dict_dataset(make_kakapo(16, image_size=32, seed=5), batch_size=8)


class _Snapshots(keras.callbacks.Callback):
    """Backbone weights, gate and learning rate at the end of every epoch."""

    def __init__(self):
        super().__init__()
        self.epochs = []

    def on_epoch_end(self, epoch, logs=None):
        backbone = self.model.backbone
        self.epochs.append({
            "trainable": [np.array(w) for w in backbone.trainable_weights],
            "moving": [np.array(w) for w in backbone.non_trainable_weights],
            "head": np.array(self.model.network.get_layer("classifier").kernel),
            "gate": float(to_numpy(find_gates(self.model)[0].gate)),
            "lr": float(to_numpy(self.model.optimizer.learning_rate)),
        })


def _gated_model(tmp_path, freeze_epochs=1):
    source = zoo.get_spec("resnet_tiny").builder((32, 32, 3))
    path = str(tmp_path / "backbone.weights.h5")
    source.save_weights(path)
    model = zoo.build("resnet_tiny", num_classes=3, input_shape=(32, 32, 3),
                      priors=[priors.Pretrained(path, freeze_epochs=freeze_epochs, mode="gate")])
    model.compile(optimizer=keras.optimizers.Adam(1e-2), jit_compile=False)
    return source, model


@pytest.mark.parity
def test_gate_freezes_then_unfreezes_within_one_fit(tmp_path):
    source, model = _gated_model(tmp_path)
    loaded = [np.array(w) for w in source.trainable_weights]
    moving = [np.array(w) for w in source.non_trainable_weights]
    head0 = np.array(model.network.get_layer("classifier").kernel)
    snaps = _Snapshots()
    history = model.fit(_data(), epochs=2, verbose=0, callbacks=[snaps])
    assert history.epoch == [0, 1]
    frozen, tuned = snaps.epochs
    # Epoch 0: backbone weights exactly as loaded, the head trained, gate closed.
    for a, b in zip(loaded, frozen["trainable"]):
        np.testing.assert_array_equal(a, b)
    assert not np.allclose(head0, frozen["head"])
    assert frozen["gate"] == 0.0 and frozen["lr"] == pytest.approx(1e-2)
    # Documented: BatchNorm moving statistics adapt while frozen (training-mode BN).
    assert any(not np.allclose(a, b) for a, b in zip(moving, frozen["moving"]))
    # Epoch 1 (same fit): gate open, learning rate scaled by 0.1, backbone weights move.
    assert tuned["gate"] == 1.0 and tuned["lr"] == pytest.approx(1e-3)
    assert sum(not np.allclose(a, b) for a, b in zip(frozen["trainable"], tuned["trainable"])) > len(loaded) // 2
    # Resumed with the gate already open: the learning rate is not scaled twice.
    model.fit(_data(), epochs=3, initial_epoch=2, verbose=0)
    assert float(to_numpy(model.optimizer.learning_rate)) == pytest.approx(1e-3)


def test_gate_state_is_saved_with_the_model(tmp_path):
    _, model = _gated_model(tmp_path)
    find_gates(model)[0].gate.assign(1.0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path, compile=False)
    assert float(to_numpy(find_gates(reloaded)[0].gate)) == 1.0
    assert reloaded.priors[0].mode == "gate"


@pytest.mark.parity
def test_gradient_gate_is_identity_and_scales_gradient():
    x = np.random.default_rng(0).normal(size=(2, 3, 3, 4)).astype("float32")
    inp = keras.Input((3, 3, 4))
    gate = GradientGate(open=False)
    scale = keras.layers.Dense(1, use_bias=False, kernel_initializer="ones")
    model = keras.Model(inp, keras.layers.Flatten()(gate(scale(inp))))
    # The gate is the identity: exactly the Dense output (the Dense itself is x.sum(-1) up to float rounding,
    # which oneDNN's matmul order makes differ from numpy's sum by ~2e-7 on some CPUs).
    np.testing.assert_array_equal(to_numpy(model(x)), to_numpy(scale(x)).reshape(2, -1))
    np.testing.assert_allclose(to_numpy(model(x)), x.sum(-1).reshape(2, -1), rtol=1e-6, atol=1e-6)
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    target = np.zeros((2, 9), "float32")
    model.fit(x, target, epochs=1, verbose=0)
    np.testing.assert_array_equal(to_numpy(scale.kernel), np.ones((4, 1), "float32"))
    gate.gate.assign(1.0)
    model.fit(x, target, epochs=1, verbose=0)
    assert not np.allclose(to_numpy(scale.kernel), 1.0)


def test_gradient_gate_layer_contract():
    run_layer_test(GradientGate, {"open": True}, input_shape=(2, 4, 4, 3), expected_output_shape=(2, 4, 4, 3),
                   expected_num_trainable_weights=0, run_training_check=False)


def test_errors_name_the_problem(tmp_path):
    plain = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3))
    plain.compile(optimizer="adam")
    with pytest.raises(ValueError, match="GradientGate"):
        plain.fit(_data(), epochs=1, verbose=0, callbacks=[FreezeBackbone(1)])
    path = str(tmp_path / "b.weights.h5")
    plain.backbone.save_weights(path)
    with pytest.raises(ValueError, match="list Pretrained first"):
        zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                  priors=[priors.SpatialAttention(), priors.Pretrained(path, freeze_epochs=1, mode="gate")])
    with pytest.raises(ValueError, match="mode"):
        priors.Pretrained(path, mode="later")
    _, model = _gated_model(tmp_path)
    model.compile(optimizer=keras.optimizers.Adam(keras.optimizers.schedules.ExponentialDecay(1e-2, 10, 0.9)))
    with pytest.raises(ValueError, match="learning-rate schedule"):  # raised as the gate opens, before a step
        model.fit(_data(), epochs=1, verbose=0, callbacks=[FreezeBackbone(0, learning_rate_factor=0.1)])
