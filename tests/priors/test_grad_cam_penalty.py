"""GradCAMPenalty (RRR-G): closed-form Grad-CAM at the head and inside a nested backbone, double backprop, zoo."""

import keras
import numpy as np
import pytest

import keras_priors as kp
from harness import (assert_export_serves_the_classifier, finite_difference, kakapo_batch, prior_loss_and_gradient,
                     tiny_zoo_model, to_numpy)
from keras_priors import losses, priors
from keras_priors.layers import CAMHead
from keras_priors.zoo.prior_model import PriorModel


@pytest.mark.parity
@pytest.mark.parametrize("num_classes,classes", [(2, "true"), (2, "predicted"), (1, "true")])
def test_head_level_grad_cam_is_the_positive_cam(num_classes, classes):
    """At the CAM head's level d logit_k / d A = W_k / (h w), so Grad-CAM = relu(cam_k) / (h w) exactly."""
    prior = priors.GradCAMPenalty(classes=classes, weight=3.0)
    model = tiny_zoo_model([prior], num_classes=num_classes)
    batch = kakapo_batch()
    out = model(batch, training=False)
    features = keras.Model(model.network.input, model.network.get_layer("classifier").input)(
        {"image": batch["image"]}, training=False)
    np.testing.assert_allclose(to_numpy(out["grad_cam_penalty/features"]), to_numpy(features), atol=1e-5)
    cam, logits = to_numpy(out["cam"]), to_numpy(out["logits"])
    hw = cam.shape[1] * cam.shape[2]
    scores = np.c_[-logits, logits] if num_classes == 1 else logits
    k = batch["label"] if classes == "true" else scores.argmax(1)
    kernel = to_numpy(model.network.get_layer("classifier").kernel)
    weights = np.c_[-kernel, kernel] if num_classes == 1 else kernel  # (C, K')
    want_grad = np.broadcast_to(weights.T[k][:, None, None, :] / hw, features.shape)
    np.testing.assert_allclose(to_numpy(out["grad_cam_penalty/gradient"]), want_grad, rtol=1e-4, atol=1e-7)
    signed = np.c_[-cam[..., :1], cam[..., :1]] if num_classes == 1 else cam
    grad_cam = np.maximum(signed[np.arange(len(k)), :, :, k], 0) / hw  # (B, h, w)
    mask = batch["object_mask"][..., 0]
    b, h, w = grad_cam.shape
    outside = 1 - mask.reshape(b, h, mask.shape[1] // h, w, mask.shape[2] // w).mean(axis=(2, 4))
    want = 3.0 * np.mean(np.sum((outside * grad_cam) ** 2, axis=(1, 2)))
    got = float(prior.loss_terms(batch, out, num_classes)["grad_cam_penalty"])
    np.testing.assert_allclose(got, want, rtol=1e-4)


def _nested_model(prior):
    """image -> backbone{P1: relu(conv3x3), P2: conv1x1 (linear) of P1} -> CAMHead(P2)."""
    image = keras.Input((6, 6, 2), name="image")
    x = keras.layers.Conv2D(4, 3, padding="same", name="conv",
                            kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=1))(image)
    p1 = keras.layers.ReLU(name="p1_out")(x)
    p2 = keras.layers.Conv2D(3, 1, use_bias=False, name="proj",
                             kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=2))(p1)
    backbone = keras.Model(image, {"P1": p1, "P2": p2}, name="backbone")
    inp = keras.Input((6, 6, 2), name="image")
    feats = backbone(inp)
    head = CAMHead(2, name="classifier", kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=3))(
        feats["P2"])
    network = keras.Model({"image": inp}, head, name="network")
    return PriorModel(network, priors=[prior], num_classes=2)


@pytest.mark.parity
def test_level_inside_a_nested_backbone_matches_closed_form(rng):
    prior = priors.GradCAMPenalty(level="P1", classes="true")
    model = _nested_model(prior)
    batch = {"image": rng.normal(size=(3, 6, 6, 2)).astype("float32"),
             "object_mask": (rng.uniform(size=(3, 6, 6, 1)) > 0.5).astype("float32"),
             "label": np.array([0, 1, 1], "int32")}
    out = model(batch, training=True)
    proj = to_numpy(model.backbone.get_layer("proj").kernel)[0, 0]  # (4, 3)
    cam_w = to_numpy(model.network.get_layer("classifier").kernel)  # (3, 2)
    d_logit_d_p1 = (proj @ cam_w).T / 36.0  # (2, 4) per cell
    want = np.broadcast_to(d_logit_d_p1[batch["label"]][:, None, None, :], (3, 6, 6, 4))
    np.testing.assert_allclose(to_numpy(out["grad_cam_penalty/gradient"]), want, rtol=1e-5, atol=1e-7)
    p1 = keras.Model(model.backbone.input, model.backbone.output["P1"])(batch["image"])
    np.testing.assert_allclose(to_numpy(out["grad_cam_penalty/features"]), to_numpy(p1), atol=1e-6)

    # Double backprop: the penalty's gradient w.r.t. the first conv matches finite differences.
    kernel = model.backbone.get_layer("conv").kernel
    value, grad = prior_loss_and_gradient(model, prior, batch, kernel)
    assert value > 0 and np.abs(grad).max() > 1e-4

    def penalty():
        return float(prior.loss_terms(batch, model(batch, training=True), 2)["grad_cam_penalty"])

    entries = [0, 7, 20, 41, 70]
    np.testing.assert_allclose(grad.reshape(-1)[entries], finite_difference(penalty, kernel, entries),
                               rtol=3e-2, atol=1e-4)


@pytest.mark.parity
def test_grad_cam_function_hand_computed():
    a = np.zeros((1, 2, 2, 2), "float32")
    a[0, 0, 0] = [1.0, 2.0]
    a[0, 1, 1] = [3.0, -1.0]
    g = np.zeros((1, 2, 2, 2), "float32")
    g[0, 0, 0] = [4.0, 0.0]
    g[0, 1, 0] = [0.0, -8.0]  # alpha = mean over cells = [1, -2]
    cam = to_numpy(losses.grad_cam_map(a, g))[0, ..., 0]
    np.testing.assert_allclose(cam, [[0.0, 0.0], [0.0, 5.0]])  # relu(1*1 - 2*2) = 0, relu(3 + 2) = 5
    mask = np.array([[[1.0, 1.0], [1.0, 0.0]]], "float32")
    np.testing.assert_allclose(to_numpy(losses.grad_cam_penalty(a, g, mask)), [25.0])
    np.testing.assert_allclose(to_numpy(losses.grad_cam_penalty(a, g, mask, normalize="mean")), [25.0 / 4])


@pytest.mark.parity
def test_zoo_fit_on_kakapo_at_a_level_and_reload(tmp_path):
    train = kp.data.kakapo("train", image_size=32, num_samples=32, batch_size=16, seed=1)
    model = tiny_zoo_model([priors.GradCAMPenalty(level="P2", weight=1.0)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    history = model.fit(train, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["grad_cam_penalty_loss"]))
    images = kakapo_batch(4)["image"]
    out = model.predict(images, verbose=0)
    assert sorted(out) == ["cam", "logits"]
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.priors[0].get_config() == model.priors[0].get_config()
    np.testing.assert_allclose(to_numpy(reloaded({"image": images})["logits"]), out["logits"], atol=1e-5)


def test_export_is_unaffected(tmp_path):
    model = tiny_zoo_model([priors.GradCAMPenalty(level="P2")])
    model.compile(optimizer="adam")
    batch = kakapo_batch(16)
    model.fit(batch, batch_size=16, epochs=1, verbose=0)
    assert_export_serves_the_classifier(model, batch["image"][:3], tmp_path / "exported")


def test_penalty_decreases_when_trained():
    data = kp.data.kakapo("train", image_size=32, num_samples=160, batch_size=16, seed=2, shuffle=False)
    probe = next(iter(data))

    def run(weight):
        keras.utils.set_random_seed(0)
        model = tiny_zoo_model([priors.GradCAMPenalty(level="P2", weight=weight)])
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = model.fit(data.repeat(), epochs=5, steps_per_epoch=10, verbose=0)
        out = model(probe, training=False)
        value = losses.grad_cam_penalty(out["grad_cam_penalty/features"], out["grad_cam_penalty/gradient"],
                                        probe["object_mask"])
        return history.history["grad_cam_penalty_loss"], float(np.mean(to_numpy(value)))

    logged, end = run(10.0)
    _, end_without = run(0.0)
    assert logged[-1] < 0.5 * max(logged), logged
    assert end < 0.5 * end_without, (end, end_without)


def test_config_round_trip_and_bad_arguments():
    prior = priors.GradCAMPenalty(mask="part_mask", level="P2", mask_is="irrelevant", classes="predicted",
                                  normalize="mean", weight=5.0, name="rrr_g")
    assert priors.GradCAMPenalty.from_config(prior.get_config()).get_config() == prior.get_config() == {
        "weight": 5.0, "name": "rrr_g", "mask": "part_mask", "level": "P2", "mask_is": "irrelevant",
        "classes": "predicted", "normalize": "mean"}
    with pytest.raises(ValueError, match=r"GradCAMPenalty: Expected `classes` to be one of \['predicted', 'true'\]. "
                                         r"Received: classes='all'"):
        priors.GradCAMPenalty(classes="all")
    with pytest.raises(ValueError, match=r"Expected `level` a feature level name.*Received: level=3"):
        priors.GradCAMPenalty(level=3)
    with pytest.raises(ValueError, match=r"GradCAMPenalty: Expected `level` one of \['P1', 'P2', 'P3'\].*"
                                         r"Received: level='P9'"):
        tiny_zoo_model([priors.GradCAMPenalty(level="P9")])
    with pytest.raises(ValueError, match=r"Received: weight=nan"):
        priors.GradCAMPenalty(weight=float("nan"))


def test_run_prior_test_hand_computed_penalty():
    from harness import half_masks, prior_batch, run_prior_test

    # one channel with gradient 1 everywhere: Grad-CAM = relu(A). sample 0, A = ((1, 2), (3, 4)) and the object on
    # the left column: outside cells 2 and 4, squared sum 20; sample 1, A = -1: Grad-CAM 0. Mean 10, times 0.5
    features = np.array([[[[1.0], [2.0]], [[3.0], [4.0]]], [[[-1.0], [-1.0]], [[-1.0], [-1.0]]]], "float32")
    batch = prior_batch([0, 1], object_mask=half_masks("left", "top"))
    run_prior_test(priors.GradCAMPenalty, {"weight": 0.5}, batch,
                   outputs={"grad_cam_penalty/features": features,
                            "grad_cam_penalty/gradient": np.ones((2, 2, 2, 1), "float32")},
                   expected_loss={"grad_cam_penalty": 5.0})
