import os

import keras
import numpy as np
import pytest
from keras import ops

import keras_priors as kp
from keras_priors.data.kakapo import make_kakapo


def _batch(n=4, size=8, seed=0):
    """n flat-coloured images (image i has value i / n), each with a centred square object of value 1."""
    image = np.repeat(np.arange(n, dtype="float32")[:, None, None, None] / n, size * size * 3).reshape(n, size, size, 3)
    mask = np.zeros((n, size, size, 1), "float32")
    mask[:, 2:6, 2:6] = 1.0
    image = np.where(mask > 0, 1.0, image).astype("float32")
    return {"image": image, "object_mask": mask, "label": np.arange(n) % 2}


@pytest.mark.parity
def test_object_kept_background_from_one_other_image_with_its_object_filled():
    batch = _batch()
    prior = kp.priors.BackgroundSwap()
    out = ops.convert_to_numpy(prior.transform_batch(batch, keras.random.SeedGenerator(3))["image"])
    inside = batch["object_mask"][..., 0] > 0
    np.testing.assert_array_equal(out[inside], 1.0)  # the object is untouched
    backgrounds = out[:, 0, 0, 0]
    # Each background is one image's flat background; the other image's object (value 1) is filled with
    # that image's background mean, so no 1 appears outside the object.
    assert set(np.round(backgrounds * 4).astype(int)) <= {0, 1, 2, 3}
    for i in range(4):
        np.testing.assert_allclose(out[i][~inside[i]], backgrounds[i])
    # A permutation: every background used exactly once.
    assert sorted(np.round(backgrounds * 4).astype(int)) == [0, 1, 2, 3]


@pytest.mark.parity
def test_fill_none_keeps_other_object_and_probability_zero_is_identity():
    batch = _batch(2)
    batch["object_mask"][1] = 0.0
    batch["object_mask"][1, 0:2, 0:2] = 1.0  # image 1's object (value 0.5 area) moved to the corner
    seed = keras.random.SeedGenerator(0)
    none = kp.priors.BackgroundSwap(fill="none")
    outs = [ops.convert_to_numpy(none.transform_batch(batch, seed)["image"]) for _ in range(8)]
    # Across draws image 0 gets image 1's background at least once, and then image 1's pixels show through.
    swapped = [o for o in outs if not np.allclose(o[0], batch["image"][0])]
    assert swapped, "8 draws of a 2-permutation never swapped"
    outside0 = batch["object_mask"][0, ..., 0] == 0
    np.testing.assert_allclose(swapped[0][0][outside0], batch["image"][1][outside0])
    same = kp.priors.BackgroundSwap(probability=0.0).transform_batch(batch, seed)["image"]
    np.testing.assert_allclose(ops.convert_to_numpy(same), batch["image"])


@pytest.mark.parity
def test_permutation_changes_from_step_to_step():
    batch = _batch(8)
    seed = keras.random.SeedGenerator(0)
    prior = kp.priors.BackgroundSwap()
    draws = {tuple(np.round(ops.convert_to_numpy(prior.transform_batch(batch, seed)["image"])[:, 0, 0, 0] * 8)
                   .astype(int))
             for _ in range(5)}
    assert len(draws) > 1


def test_bad_arguments_name_the_argument():
    with pytest.raises(ValueError, match="probability"):
        kp.priors.BackgroundSwap(probability=1.5)
    with pytest.raises(ValueError, match="probability"):
        kp.priors.BackgroundSwap(probability=float("nan"))
    with pytest.raises(ValueError, match="fill"):
        kp.priors.BackgroundSwap(fill="blur")
    with pytest.raises(ValueError, match="mask"):
        kp.priors.BackgroundSwap(mask="")
    with pytest.raises(ValueError, match="height and width"):
        kp.priors.BackgroundSwap().transform_batch(
            {"image": np.zeros((2, 8, 8, 3), "float32"), "object_mask": np.zeros((2, 4, 4, 1), "float32")},
            keras.random.SeedGenerator(0))


def test_config_round_trip_and_no_loss_term():
    prior = kp.priors.BackgroundSwap(mask="part_mask", probability=0.5, fill="none", name="swap")
    clone = kp.priors.BackgroundSwap.from_config(prior.get_config())
    assert clone.get_config() == prior.get_config() and clone.required_keys == ("part_mask",)
    assert prior.term_names() == [] and prior.transforms_batch
    assert not kp.priors.CAMSuppression().transforms_batch


@pytest.mark.parity
def test_fit_predict_save_reload_and_export(tmp_path):
    data = make_kakapo(32, image_size=32, seed=1)
    batch = {k: data[k] for k in ("image", "label", "object_mask")}
    keras.utils.set_random_seed(0)
    model = kp.zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[kp.priors.BackgroundSwap()])
    model.compile(optimizer="adam")
    state = ops.convert_to_numpy(model.batch_seed_generator.state).copy()
    model.fit(batch, batch_size=16, epochs=1, verbose=0)
    # The generator is a model variable: it advanced once per step, inside the compiled train step.
    assert not np.array_equal(ops.convert_to_numpy(model.batch_seed_generator.state), state)
    # Inference needs no mask and is not randomised.
    a = ops.convert_to_numpy(model.predict({"image": data["image"]}, verbose=0)["logits"])
    b = ops.convert_to_numpy(model.predict(batch, verbose=0)["logits"])
    np.testing.assert_allclose(a, b, atol=1e-6)
    path = os.path.join(tmp_path, "swap.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.priors[0], kp.priors.BackgroundSwap)
    np.testing.assert_allclose(ops.convert_to_numpy(reloaded.predict({"image": data["image"]}, verbose=0)["logits"]),
                               a, atol=1e-5)
    assert list(model.inference_model().input) == ["image"]  # export takes the image only


def test_train_step_swaps_the_batch_the_network_sees():
    """The network sees composites in fit (the CAM of a swapped background differs), and the loss sees labels."""
    data = make_kakapo(16, image_size=32, seed=2)
    batch = {k: data[k] for k in ("image", "label", "object_mask")}
    keras.utils.set_random_seed(0)
    model = kp.zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[kp.priors.BackgroundSwap()])
    plain = ops.convert_to_numpy(model(batch, training=False)["logits"])
    swapped = ops.convert_to_numpy(model(batch, training=True)["logits"])
    train_plain = ops.convert_to_numpy(model({"image": batch["image"]}, training=True)["logits"])
    assert not np.allclose(swapped, train_plain, atol=1e-4)  # same training-mode BN, different pixels
    assert plain.shape == swapped.shape


def test_run_prior_test_no_loss_terms():
    from harness import half_masks, prior_batch, run_prior_test

    # a data-level prior: no loss term, no output; the keys check, export and save/reload still hold
    batch = prior_batch([0, 1, 0, 1], object_mask=half_masks("top", "left", "top", "left"))
    run_prior_test(kp.priors.BackgroundSwap, {"mask": "object_mask"}, batch, outputs={}, expected_loss={})
