"""Energy (Rao et al. 2023): hand-computed values, CAM and Grad-CAM attributions, double backprop, zoo."""

import importlib.util
import os

import keras
import numpy as np
import pytest

import keras_priors as kp
from harness import (assert_export_serves_the_classifier, finite_difference, kakapo_batch, prior_loss_and_gradient,
                     tiny_zoo_model, to_numpy)
from keras_priors import losses, priors


def _sibling(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(os.path.dirname(__file__), f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_nested_model = _sibling("test_grad_cam_penalty")._nested_model


def _energy(attribution, mask):
    """Reference energy loss in numpy: 1 - sum(relu(a) * cells) / sum(relu(a)), cells = block means of the mask."""
    b, h, w = attribution.shape
    cells = mask.reshape(b, h, mask.shape[1] // h, w, mask.shape[2] // w).mean(axis=(2, 4))
    pos = np.maximum(attribution, 0)
    num, den = (pos * cells).sum((1, 2)), pos.sum((1, 2))
    return np.where(den < 1e-7, 1 - num, 1 - num / np.maximum(den, 1e-7))


@pytest.mark.parity
def test_energy_function_hand_computed():
    a = np.array([[[1.0, 3.0], [0.0, -2.0]], [[0.0, 0.0], [0.0, -1.0]]], "float32")
    m = np.array([[[1.0, 0.0], [0.0, 1.0]], [[1.0, 1.0], [1.0, 1.0]]], "float32")
    # Sample 0: positive energy 4, 1 inside -> 0.75. Sample 1: no positive energy -> 1 - 0 = 1 (reference code).
    np.testing.assert_allclose(to_numpy(losses.energy_loss(a, m)), [0.75, 1.0])
    np.testing.assert_allclose(to_numpy(losses.energy_loss(a, m, mask_is="irrelevant", weight=2.0)), [0.5, 2.0])
    big = np.repeat(np.repeat(m, 2, axis=1), 2, axis=2)[..., None]  # (2, 4, 4, 1): area-resized back to m
    big[0, 0, 0, 0] = 0.0  # the top-left cell is now 3/4 object
    np.testing.assert_allclose(to_numpy(losses.energy_loss(a[..., None], big)), [1 - 0.75 / 4, 1.0], rtol=1e-6)


@pytest.mark.parity
@pytest.mark.parametrize("num_classes,classes", [(2, "true"), (2, "predicted"), (1, "true")])
def test_cam_and_head_level_grad_cam_energies_match_numpy(num_classes, classes):
    batch = kakapo_batch()
    cam_prior = priors.Energy(classes=classes, weight=2.0)
    model = tiny_zoo_model([cam_prior, priors.Energy(attribution="grad_cam", classes=classes, name="energy_gc")],
                 num_classes=num_classes)
    out = model(batch, training=False)
    cam, logits = to_numpy(out["cam"]), to_numpy(out["logits"])
    scores = np.c_[-logits, logits] if num_classes == 1 else logits
    k = batch["label"] if classes == "true" else scores.argmax(1)
    signed = np.c_[-cam[..., :1], cam[..., :1]] if num_classes == 1 else cam
    want = _energy(signed[np.arange(len(k)), :, :, k], batch["object_mask"][..., 0])
    got = cam_prior.loss_terms(batch, out, num_classes)["energy"]
    np.testing.assert_allclose(float(got), 2.0 * want.mean(), rtol=1e-5)
    # At the head's level Grad-CAM is relu(cam_k) / (h w): the same energy (the loss ignores the scale).
    got_gc = model.priors[1].loss_terms(batch, out, num_classes)["energy_gc"]
    np.testing.assert_allclose(float(got_gc), want.mean(), rtol=1e-4)


@pytest.mark.parity
def test_grad_cam_energy_double_backprop_matches_finite_difference(rng):
    prior = priors.Energy(attribution="grad_cam", level="P1")
    model = _nested_model(prior)
    batch = {"image": rng.normal(size=(3, 6, 6, 2)).astype("float32"),
             "object_mask": (rng.uniform(size=(3, 6, 6, 1)) > 0.5).astype("float32"),
             "label": np.array([0, 1, 1], "int32")}
    kernel = model.backbone.get_layer("conv").kernel
    value, grad = prior_loss_and_gradient(model, prior, batch, kernel)
    assert 0 < value < 1 and np.abs(grad).max() > 1e-4

    def term():
        return float(prior.loss_terms(batch, model(batch, training=True), 2)["energy"])

    entries = [0, 7, 20, 41, 70]
    np.testing.assert_allclose(grad.reshape(-1)[entries], finite_difference(term, kernel, entries),
                               rtol=3e-2, atol=1e-4)


@pytest.mark.parity
@pytest.mark.parametrize("kwargs", [{}, {"attribution": "grad_cam", "level": "P2"}])
def test_zoo_fit_on_kakapo_and_reload(kwargs, tmp_path):
    train = kp.data.kakapo("train", image_size=32, num_samples=32, batch_size=16, seed=1)
    model = tiny_zoo_model([priors.Energy(**kwargs)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(train, epochs=2, verbose=0)
    assert all(0 <= v <= 1 for v in history.history["energy_loss"])
    images = kakapo_batch(4)["image"]
    out = model.predict(images, verbose=0)
    assert sorted(out) == ["cam", "logits"]
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.priors[0].get_config() == model.priors[0].get_config()
    np.testing.assert_allclose(to_numpy(reloaded({"image": images})["logits"]), out["logits"], atol=1e-5)


def test_export_is_unaffected(tmp_path):
    model = tiny_zoo_model([priors.Energy(attribution="grad_cam", level="P2")])
    model.compile(optimizer="adam")
    batch = kakapo_batch(16)
    model.fit(batch, batch_size=16, epochs=1, verbose=0)
    assert_export_serves_the_classifier(model, batch["image"][:3], tmp_path / "exported")


def test_energy_decreases_when_trained():
    data = kp.data.kakapo("train", image_size=32, num_samples=160, batch_size=16, seed=2, shuffle=False)
    probe = next(iter(data))

    def run(weight):
        keras.utils.set_random_seed(0)
        prior = priors.Energy(weight=weight, name="e")
        model = tiny_zoo_model([prior])
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = model.fit(data.repeat(), epochs=5, steps_per_epoch=10, verbose=0)
        # Batch statistics: after 50 steps BatchNorm's moving averages (momentum 0.99) still lag.
        attribution = prior.attribution_map(probe, model(probe, training=True))
        energy = to_numpy(losses.energy_loss(attribution, probe["object_mask"]))
        return history.history["e_loss"], float(np.mean(energy))

    logged, end = run(1.0)
    _, end_without = run(0.0)
    assert logged[-1] < logged[0] - 0.2, logged
    assert end < end_without - 0.2, (end, end_without)


def test_config_round_trip_and_bad_arguments():
    prior = priors.Energy(mask="part_mask", attribution="grad_cam", level="P2", mask_is="irrelevant",
                          classes="predicted", weight=0.5, name="epg")
    assert priors.Energy.from_config(prior.get_config()).get_config() == prior.get_config() == {
        "weight": 0.5, "name": "epg", "mask": "part_mask", "attribution": "grad_cam", "level": "P2",
        "mask_is": "irrelevant", "classes": "predicted"}
    assert priors.Energy().term_names() == ["energy"] and priors.Energy().gradient_requests() == []
    with pytest.raises(ValueError, match=r"Energy: Expected `attribution` to be one of \['cam', 'grad_cam'\]. "
                                         r"Received: attribution='gradcam'"):
        priors.Energy(attribution="gradcam")
    with pytest.raises(ValueError, match=r"Expected level=None with attribution='cam'.*Received: level='P2'"):
        priors.Energy(level="P2")
    with pytest.raises(ValueError, match=r"Received: classes='all'"):
        priors.Energy(classes="all")
    with pytest.raises(ValueError, match=r"Received: weight=inf"):
        priors.Energy(weight=float("inf"))
    with pytest.raises(ValueError, match=r"energy_loss: Expected `attribution` \(B, h, w\) or \(B, h, w, 1\)"):
        losses.energy_loss(np.ones((1, 2, 2, 3), "float32"), np.ones((1, 2, 2), "float32"))


def test_run_prior_test_hand_computed_energy():
    from harness import half_masks, prior_batch, run_prior_test

    # CAM attribution, true class: sample 0 (label 0), cam_0 = ((2, 0), (0, 2)), object on the left column:
    # 2 of 4 inside, energy 1 - 2/4 = 0.5; sample 1 (label 1), cam_1 = ((3, 3), (1, 1)), object on the top row:
    # 6 of 8 inside, 0.25. Mean 0.375
    cam = np.zeros((2, 2, 2, 2), "float32")
    cam[0, :, :, 0] = [[2.0, 0.0], [0.0, 2.0]]
    cam[1, :, :, 1] = [[3.0, 3.0], [1.0, 1.0]]
    batch = prior_batch([0, 1], object_mask=half_masks("left", "top"))
    run_prior_test(priors.Energy, {"attribution": "cam"}, batch,
                   outputs={"cam": cam, "logits": np.zeros((2, 2), "float32")}, expected_loss={"energy": 0.375})
