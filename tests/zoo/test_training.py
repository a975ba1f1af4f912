
import keras
import numpy as np
import pytest

from keras_priors import priors, zoo

from harness import dict_dataset as as_dataset, to_numpy


ALL = lambda: [  # noqa: E731
    priors.CAMSuppression(classes=[0]), priors.MaskDecoder(levels=2, filters=8), priors.ConfidencePenalty(beta=0.1),
    priors.Auxiliary(num_classes=5, exclude_classes=[0]), priors.FeatureContraction(weight=1e-3),
    priors.LabelSmoothing(0.1),
]


def test_fit_logs_each_prior_term_and_metric(kakapo32):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=ALL())
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(as_dataset(kakapo32), epochs=1, verbose=0)
    logs = {k: v[-1] for k, v in history.history.items()}
    for key in ("loss", "accuracy", "classification_loss", "cam_suppression_loss", "mask_decoder_loss",
                "confidence_penalty_loss", "auxiliary_loss", "feature_contraction_loss", "cam_energy_in_mask"):
        assert key in logs and np.isfinite(logs[key]), key
    assert logs["confidence_penalty_loss"] <= 0.0  # -beta * entropy
    total = sum(logs[k] for k in logs if k.endswith("_loss"))
    assert logs["loss"] == pytest.approx(total, rel=1e-3, abs=1e-4)


def test_missing_key_fails_before_any_step(kakapo32):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.CAMSuppression()])
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"CAMSuppression needs the data key\(s\) \['object_mask'\]"):
        model.fit(as_dataset(kakapo32, drop=("object_mask",)), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 0


def test_wrong_image_size_fails_before_any_step(kakapo32):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(64, 64, 3))
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"Expected batches of shape \(batch,\) \+ \(64, 64, 3\)"):
        model.fit(as_dataset(kakapo32), epochs=1, verbose=0)


def test_cam_suppression_lowers_outside_evidence(kakapo32):
    """Training with the prior must lower the CAM penalty itself (the loss reaches the CAM).

    The default penalty is the share of the evidence outside the bird, which only moving evidence onto the
    bird lowers (wiping the CAM scores 1), so it falls steadily rather than collapsing: 4.47 -> 3.71 (x5) in
    one run, while the share of CAM energy on the bird rises.
    """
    ds = as_dataset(kakapo32)
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                      priors=[priors.CAMSuppression(classes=[0, 1], weight=5.0)])
    model.compile(optimizer=keras.optimizers.Adam(3e-3))
    history = model.fit(ds, epochs=4, verbose=0)
    values = history.history["cam_suppression_loss"]
    assert all(b < a for a, b in zip(values, values[1:])), values
    assert values[-1] < 0.9 * values[0], values
    energy = history.history["cam_energy_in_mask"]
    assert energy[-1] > energy[0], energy


def test_save_load_round_trip(kakapo32, tmp_path):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=ALL())
    model.compile(optimizer="adam")
    model.fit(as_dataset(kakapo32), epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert [type(p).__name__ for p in loaded.priors] == [type(p).__name__ for p in model.priors]
    assert loaded.priors[0].classes == [0]
    batch = next(iter(as_dataset(kakapo32)))
    a, b = model(batch), loaded(batch)
    for k in a:
        np.testing.assert_allclose(to_numpy(a[k]), to_numpy(b[k]), atol=1e-5)
    loaded.fit(as_dataset(kakapo32), epochs=1, verbose=0)  # still trainable after reload


def test_dual_input_trains_and_needs_the_box(kakapo32):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                      priors=[priors.DualInput(box="part_box"), priors.CAMSuppression()])
    assert set(model.network.input) == {"image", "part_box"}
    model.compile(optimizer="adam")
    history = model.fit(as_dataset(kakapo32), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    with pytest.raises(ValueError, match="part_box"):
        model.fit(as_dataset(kakapo32, drop=("part_box",)), epochs=1, verbose=0)
    gated = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                      priors=[priors.DualInput(fusion="gated", shared=False)])
    assert "cam" not in gated.network.output
    with pytest.raises(ValueError, match="no `cam` output"):
        zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                  priors=[priors.DualInput(fusion="sum"), priors.CAMSuppression()])


def test_pretrained_weights_and_freeze_then_unfreeze(kakapo32, tmp_path):
    source = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3))
    path = str(tmp_path / "backbone.weights.h5")
    source.backbone.save_weights(path)
    model = zoo.build("resnet_tiny", num_classes=3, input_shape=(32, 32, 3),
                      priors=[priors.Pretrained(path, freeze_epochs=1)])
    for a, b in zip(source.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    model.compile(optimizer=keras.optimizers.Adam(1e-2))
    head_before = np.asarray(model.network.get_layer("classifier").kernel).copy()
    model.fit(as_dataset(kakapo32), epochs=1, verbose=0)  # frozen phase only
    for a, b in zip(source.backbone.weights, model.backbone.weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert not np.allclose(head_before, np.asarray(model.network.get_layer("classifier").kernel))
    history = model.fit(as_dataset(kakapo32), epochs=2, initial_epoch=1, verbose=0)
    assert history.epoch == [1]
    changed = [not np.allclose(np.asarray(a), np.asarray(b)) for a, b in zip(source.backbone.trainable_weights,
                                                                            model.backbone.trainable_weights)]
    assert any(changed)


def test_pretrained_wrong_architecture(tmp_path):
    other = zoo.build("resnet_small", num_classes=2, input_shape=(32, 32, 3))
    path = str(tmp_path / "small.weights.h5")
    other.backbone.save_weights(path)
    with pytest.raises(ValueError, match="do not fit the backbone"):
        zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.Pretrained(path)])
    with pytest.raises(FileNotFoundError, match="nope.weights.h5"):
        zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), weights=str(tmp_path / "nope.weights.h5"))
