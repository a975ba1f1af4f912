"""DualInput with a predicted box (locate, then zoom) and the oracle box of 0.1."""


import keras
import numpy as np
import pytest

import keras_priors as kp
from harness import to_numpy
from keras_priors import priors, zoo


@pytest.fixture(scope="module")
def kakapo_tiny():
    train, test = kp.data.kakapo(split=("train", "test"), image_size=32, num_samples={"train": 48, "test": 16},
                                 batch_size=16, seed=1)
    return train, test


def _build(prior, **kwargs):
    return zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[prior], **kwargs)


def _first_batch(ds):
    return {k: to_numpy(v) for k, v in next(iter(ds)).items()}


@pytest.mark.parity
def test_predicted_box_fits_and_the_inference_model_takes_only_the_image(kakapo_tiny):
    train, test = kakapo_tiny
    model = _build(priors.DualInput(box_source="predicted", filters=8))
    assert model.input_keys == ("image",)
    assert model.training_only == ("dual_input_box", "dual_input_mask")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(train, epochs=1, verbose=0)
    assert np.isfinite(history.history["dual_input_mask_loss"][-1]) and history.history["dual_input_mask_loss"][-1] > 0
    assert np.isfinite(history.history["loss"][-1])
    images = _first_batch(test)["image"]
    out = model({"image": images}, training=False)
    box = to_numpy(keras.ops.convert_to_numpy(out["dual_input_box"]))
    assert box.shape == (16, 4) and np.all(box[:, 2:] - box[:, :2] >= 0.15 - 1e-6)
    assert np.all((box >= 0) & (box <= 1))
    inf = model.inference_model()
    assert list(inf.input) == ["image"]
    assert sorted(inf.output) == ["cam", "logits", "probabilities"]
    np.testing.assert_allclose(to_numpy(keras.ops.convert_to_numpy(inf({"image": images})["logits"])),
                               to_numpy(keras.ops.convert_to_numpy(out["logits"])), atol=1e-5)
    # the locator stays in the inference model (its box feeds the logits): the decoder's weights are there
    assert any("dual_input_mask_decoder" in w.path for w in inf.weights)
    results = model.evaluate(test, verbose=0, return_dict=True)
    assert 0.0 <= results["accuracy"] <= 1.0


def test_export_takes_only_the_image_and_matches_keras(kakapo_tiny, tmp_path):
    tf = pytest.importorskip("tensorflow")
    train, test = kakapo_tiny
    model = _build(priors.DualInput(box_source="predicted", filters=8))
    model.compile(optimizer="adam")
    model.fit(train.take(1), epochs=1, verbose=0)
    path = str(tmp_path / "exported")
    model.export(path, verbose=False)
    reloaded = tf.saved_model.load(path)
    images = _first_batch(test)["image"][:8]
    served = reloaded.serve({"image": tf.constant(images)})
    np.testing.assert_allclose(served["logits"].numpy(), to_numpy(model({"image": images})["logits"]), atol=1e-5)
    with pytest.raises((TypeError, ValueError)):  # the serve signature has no box input
        reloaded.serve({"image": tf.constant(images), "part_box": tf.zeros((8, 4))})
    n_exported = sum(int(np.prod(v.shape)) for v in reloaded.variables)
    assert n_exported == model.inference_model().count_params()


@pytest.mark.parity
def test_keras_save_and_reload(kakapo_tiny, tmp_path):
    train, test = kakapo_tiny
    prior = priors.DualInput(box_source="predicted", margin=0.1, min_size=0.2, filters=8, levels=2, fusion="gated",
                             shared=False, name="head")
    model = _build(prior)
    model.compile(optimizer="adam")
    model.fit(train.take(1), epochs=1, verbose=0)
    path = str(tmp_path / "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.priors[0].get_config() == prior.get_config()
    assert loaded.input_keys == ("image",) and loaded.training_only == ("head_box", "head_mask")
    images = _first_batch(test)["image"]
    for key in ("logits", "head_box", "head_mask"):
        np.testing.assert_allclose(to_numpy(loaded({"image": images})[key]),
                                   to_numpy(model({"image": images})[key]), atol=1e-5)
    locate = loaded.network.get_layer("head_locate")
    assert (locate.margin, locate.min_size, locate.empty, locate.stop_gradient) == (0.1, 0.2, "argmax", True)
    loaded.compile(optimizer="adam")
    loaded.fit(train.take(1), epochs=1, verbose=0)  # trains on after reloading


def test_the_classifier_trains_the_locator_only_with_box_gradient():
    tf = pytest.importorskip("tensorflow")
    if keras.backend.backend() != "tensorflow":
        pytest.skip("uses tf.GradientTape")
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(size=(4, 32, 32, 3)).astype("float32"))
    for box_gradient in (False, True):
        keras.utils.set_random_seed(0)
        model = _build(priors.DualInput(box_source="predicted", box_gradient=box_gradient, filters=8, mask_floor=0.0))
        decoder = model.network.get_layer("dual_input_mask_decoder")
        with tf.GradientTape() as tape:
            logits = model({"image": images}, training=True)["logits"]
            loss = tf.reduce_sum(logits[:, 0])
        grads = tape.gradient(loss, decoder.trainable_weights)
        size = sum(0.0 if g is None else float(tf.reduce_sum(tf.abs(g))) for g in grads)
        assert (size > 0) == box_gradient, (box_gradient, size)


def test_oracle_box_is_the_default_of_0_1():
    for prior in (priors.DualInput(), priors.DualInput(box="part_box"), priors.DualInput("part_box", True, "sum"),
                  priors.DualInput(box_source="oracle", box="head_box")):
        assert prior.box_source == "oracle" and prior.term_names() == [] and prior.weight is None
    assert priors.DualInput(box_source="oracle", box="head_box").required_keys == ("head_box",)
    model = _build(priors.DualInput(box="part_box"))
    assert model.input_keys == ("image", "part_box") and model.training_only == ()
    # a config saved by 0.1 has only these keys: it still means the oracle box
    with pytest.warns(DeprecationWarning, match="DualInput: the argument `part` is deprecated; use `box`"):
        old = priors.DualInput.from_config({"part": "part_box", "shared": True, "fusion": "concat",
                                            "crop_size": None, "name": "dual_input"})
    assert old.box_source == "oracle" and old.box == "part_box"


def test_predicted_box_config_and_keys():
    prior = priors.DualInput(box_source="predicted")
    assert prior.required_keys == ("part_mask",) and prior.weight == 1.0 and prior.box is None
    assert prior.term_names() == ["dual_input_mask"]
    assert priors.DualInput(target="head_mask").box_source == "predicted"
    assert priors.DualInput(target="head_mask").required_keys == ("head_mask",)
    for p in (prior, priors.DualInput(box_source="predicted", weight=0.3, margin=0.0, box_gradient=True,
                                      fusion="sum"),
              priors.DualInput(fusion="gated")):
        clone = priors.DualInput.from_config(p.get_config())
        assert clone.get_config() == p.get_config()
    with pytest.raises(ValueError, match=r"DualInput needs the data key\(s\) \['part_mask'\]"):
        prior.check_data({"image", "label", "part_box"})


@pytest.mark.parametrize("kwargs, match", [
    ({"box_source": "detector"},
     r"Expected `box_source` to be one of \['oracle', 'predicted'\]. Received: box_source='detector'"),
    ({"box_source": "predicted", "box": "part_box"},
     r"Expected box=None with box_source='predicted'. Received: box='part_box'"),
    ({"box_source": "oracle", "target": "part_mask"},
     r"Expected target=None with box_source='oracle'. Received: target='part_mask'"),
    ({"box_source": "oracle", "weight": 0.5},
     r"Expected weight=None \(or 0\) with box_source='oracle'. Received: weight=0.5"),
    ({"box_source": "predicted", "weight": -1.0}, r"Expected `weight` >= 0. Received: weight=-1.0"),
    ({"box_source": "predicted", "margin": -0.1}, r"Expected `margin` >= 0. Received: margin=-0.1"),
    ({"box_source": "predicted", "min_size": 0.0},
     r"Expected `min_size` > 0 with box_source='predicted'. Received: min_size=0.0"),
    ({"box_source": "predicted", "min_size": 2}, r"Expected `min_size` in \[0, 1\]. Received: min_size=2"),
    ({"box_source": "predicted", "mask_floor": 1.0}, r"Expected `mask_floor` in \[0, 1\). Received: mask_floor=1.0"),
    ({"box_source": "predicted", "levels": 0}, r"Expected `levels` to be an integer >= 1. Received: levels=0"),
    ({"box": ""}, r"Expected `box` to be a data key \(a non-empty string\). Received: box=''"),
    ({"fusion": "max"}, r"Expected `fusion` to be one of"),
])
def test_bad_arguments_name_what_was_expected_and_received(kwargs, match):
    with pytest.raises(ValueError, match=match):
        priors.DualInput(**kwargs)


def test_missing_part_mask_fails_before_training(kakapo_tiny):
    train, _ = kakapo_tiny
    model = _build(priors.DualInput(box_source="predicted", filters=8))
    model.compile(optimizer="adam")
    with pytest.raises(ValueError, match=r"needs the data key\(s\) \['part_mask'\]"):
        model.fit(train.map(lambda b: {k: v for k, v in b.items() if k != "part_mask"}), epochs=1, verbose=0)


def test_fit_mixed_precision_and_xla(kakapo_tiny):
    train, _ = kakapo_tiny
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = _build(priors.DualInput(box_source="predicted", filters=8))
    finally:
        keras.config.set_dtype_policy("float32")
    model.compile(optimizer="adam", jit_compile=True)
    history = model.fit(train.take(2), epochs=1, verbose=0)
    for key in ("loss", "dual_input_mask_loss"):
        assert np.isfinite(history.history[key][0]), key


def test_run_prior_test_predicted_box_mask_loss():
    from harness import half_masks, prior_batch, run_prior_test

    # the locator's mask logits 0 on 2x2 cells, as for MaskDecoder: top half 0.4 + ln 2, empty 2/3 + ln 2;
    # mean 1.226481, weight 1
    batch = prior_batch([0, 1], part_mask=half_masks("top", "empty"))
    run_prior_test(priors.DualInput, {"box_source": "predicted", "filters": 8, "levels": 2}, batch,
                   outputs={"dual_input_mask": np.zeros((2, 2, 2, 1), "float32")},
                   expected_loss={"dual_input_mask": 1.226481},
                   expected_training_only=["dual_input_box", "dual_input_mask"])


def test_run_prior_test_oracle_box():
    from harness import prior_batch, run_prior_test

    # the oracle box is a model input: no loss term; a batch without it fails before the first step
    batch = prior_batch([0, 1], part_box=np.array([[0.0, 0.0, 0.5, 0.5], [0.25, 0.25, 1.0, 1.0]]))
    run_prior_test(priors.DualInput, {"box": "part_box"}, batch, outputs={}, expected_loss={})
