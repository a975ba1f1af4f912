import os

import keras
import numpy as np
import pytest

from keras_priors import priors, zoo

from harness import dict_dataset

tf = pytest.importorskip("tensorflow")


def _trained(kakapo32, prior_list):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=prior_list)
    model.compile(optimizer="adam")
    model.fit(dict_dataset(kakapo32), epochs=1, verbose=0)
    return model


def test_export_strips_training_heads_and_matches_keras(kakapo32, tmp_path):
    model = _trained(kakapo32, [priors.CAMSuppression(), priors.MaskDecoder(levels=2, filters=8),
                                priors.Auxiliary(num_classes=5)])
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    assert sorted(os.listdir(tmp_path)) == ["exported"]  # no temporary folder left behind
    reloaded = tf.saved_model.load(path)
    images = kakapo32["image"][:8]
    served = reloaded.serve({"image": tf.constant(images)})
    expected = model({"image": images}, training=False)
    np.testing.assert_allclose(served["logits"].numpy(), np.asarray(expected["logits"]), atol=1e-5)
    probs = served["probabilities"].numpy()
    np.testing.assert_allclose(probs.sum(-1), 1.0, atol=1e-5)
    cams = reloaded.cam({"image": tf.constant(images)})
    np.testing.assert_allclose(cams["cam"].numpy(), np.asarray(expected["cam"]), atol=1e-5)
    assert cams["cam_upsampled"].shape == (8, 32, 32, 2)
    names = " ".join(v.name for v in reloaded.variables)
    assert "decoder" not in names and "auxiliary" not in names
    n_exported = sum(int(np.prod(v.shape)) for v in reloaded.variables)
    assert n_exported == model.inference_model().count_params()
    assert n_exported < model.count_params()


def test_export_after_keras_round_trip(kakapo32, tmp_path):
    model = _trained(kakapo32, [priors.MaskDecoder(levels=2, filters=8)])
    model.save(str(tmp_path / "m.keras"))
    loaded = keras.saving.load_model(str(tmp_path / "m.keras"))
    loaded.export(str(tmp_path / "exported"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "exported"))
    images = kakapo32["image"][:4]
    np.testing.assert_allclose(reloaded.serve({"image": tf.constant(images)})["logits"].numpy(),
                               np.asarray(model({"image": images})["logits"]), atol=1e-5)


def test_dual_input_export_takes_the_box(kakapo32, tmp_path):
    model = _trained(kakapo32, [priors.DualInput()])
    model.export(str(tmp_path / "dual"), verbose=False)
    reloaded = tf.saved_model.load(str(tmp_path / "dual"))
    batch = {"image": kakapo32["image"][:4], "part_box": kakapo32["part_box"][:4]}
    out = reloaded.serve({k: tf.constant(v) for k, v in batch.items()})
    np.testing.assert_allclose(out["logits"].numpy(), np.asarray(model(batch)["logits"]), atol=1e-5)


def test_failed_export_leaves_nothing(kakapo32, tmp_path, monkeypatch):
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3))

    def boom(*a, **k):
        os.makedirs(os.path.join(a[1], "variables"), exist_ok=True)  # a half-written SavedModel
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        model.export(str(tmp_path / "exported"), verbose=False)
    assert os.listdir(tmp_path) == []
