"""InputGradient (RRR): closed-form gradients, double backprop, zoo training, saving, export."""

import keras
import numpy as np
import pytest

import keras_priors as kp
from harness import (assert_export_serves_the_classifier, finite_difference, kakapo_batch, prior_loss_and_gradient,
                     tiny_zoo_model, to_numpy)
from keras_priors import losses, priors
from keras_priors.zoo.prior_model import PriorModel

SHAPE = (3, 3, 2)


def _linear_model(prior, num_classes=3, seed=0):
    """``logits = flatten(image) @ W + b``: d log p / d image has a closed form."""
    image = keras.Input(SHAPE, name="image")
    logits = keras.layers.Dense(num_classes, name="dense",
                                kernel_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed),
                                bias_initializer=keras.initializers.RandomNormal(stddev=0.5, seed=seed + 1))(
        keras.layers.Flatten()(image))
    network = keras.Model({"image": image}, {"logits": logits}, name="network")
    return PriorModel(network, priors=[prior], num_classes=num_classes)


def _batch(rng, n=4, num_classes=3):
    mask = (rng.uniform(size=(n,) + SHAPE[:2] + (1,)) > 0.5).astype("float32")
    return {"image": rng.normal(size=(n,) + SHAPE).astype("float32"), "object_mask": mask,
            "label": rng.integers(0, max(num_classes, 2), size=(n,)).astype("int32")}


def _closed_form_gradient(model, batch, classes):
    """d(score)/d image of the linear model, in numpy."""
    w, b = (to_numpy(v) for v in model.network.get_layer("dense").weights)
    x = batch["image"].reshape(len(batch["image"]), -1)
    z = x @ w + b
    if w.shape[1] == 1:  # single logit: log p = [log sigmoid(-z), log sigmoid(z)]
        s = 1 / (1 + np.exp(-z))
        per_class = np.stack([-s * w[:, 0], (1 - s) * w[:, 0]], axis=1)  # (B, 2, D)
    else:
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        per_class = w.T[None] - (p @ w.T)[:, None, :]  # (B, K, D): W_c - sum_j p_j W_j
    if classes == "all":
        g = per_class.sum(1)
    else:
        idx = batch["label"] if classes == "true" else np.argmax(z if w.shape[1] > 1 else np.c_[-z, z], 1)
        g = per_class[np.arange(len(x)), idx]
    return g.reshape(batch["image"].shape)


@pytest.mark.parity
@pytest.mark.parametrize("classes,num_classes", [("all", 3), ("true", 3), ("predicted", 3), ("all", 1), ("true", 1)])
def test_gradient_and_penalty_match_closed_form(rng, classes, num_classes):
    prior = priors.InputGradient(classes=classes, weight=2.5)
    model = _linear_model(prior, num_classes=num_classes)
    batch = _batch(rng, num_classes=num_classes)
    outputs = model(batch, training=True)
    expected = _closed_form_gradient(model, batch, classes)
    np.testing.assert_allclose(to_numpy(outputs["input_gradient/gradient"]), expected, rtol=1e-4, atol=1e-5)
    # RRR eq. 1 with our mean cross-entropy: lambda * mean_n sum_d ((1 - mask) * g)^2.
    want = 2.5 * np.mean(np.sum(((1 - batch["object_mask"]) * expected) ** 2, axis=(1, 2, 3)))
    got = prior.loss_terms(batch, outputs, num_classes)["input_gradient"]
    np.testing.assert_allclose(float(got), want, rtol=1e-4)


@pytest.mark.parity
def test_penalty_function_hand_computed():
    g = np.array([[[[1.0], [2.0]], [[3.0], [4.0]]]], "float32")  # (1, 2, 2, 1)
    m = np.array([[[1.0, 0.0], [0.0, 1.0]]], "float32")
    np.testing.assert_allclose(to_numpy(losses.input_gradient_penalty(g, m)), [2.0 ** 2 + 3.0 ** 2])
    np.testing.assert_allclose(to_numpy(losses.input_gradient_penalty(g, m, normalize="mean")), [13.0 / 4])
    np.testing.assert_allclose(to_numpy(losses.input_gradient_penalty(g, m, mask_is="irrelevant", weight=2.0)),
                               [2.0 * (1.0 + 16.0)])
    # A mask larger than the map is area-resized: each 2x2 block's object fraction.
    big = np.zeros((1, 4, 4, 1), "float32")
    big[0, :2, :2] = 1.0
    big[0, 2:, 2:3] = 1.0  # half of the bottom-right block
    np.testing.assert_allclose(to_numpy(losses.input_gradient_penalty(g, big)), [4.0 + 9.0 + 0.25 * 16.0])


@pytest.mark.parity
def test_penalty_gradient_reaches_weights_and_matches_finite_difference(rng):
    prior = priors.InputGradient(classes="all", weight=1.0)
    model = _linear_model(prior, num_classes=3)
    batch = _batch(rng)
    kernel = model.network.get_layer("dense").kernel
    value, grad = prior_loss_and_gradient(model, prior, batch, kernel)
    assert value > 0 and np.abs(grad).max() > 1e-3  # the penalty moves the weights (double backprop)

    def penalty():
        return float(prior.loss_terms(batch, model(batch, training=True), 3)["input_gradient"])

    entries = [0, 5, 17, 30, 53]
    np.testing.assert_allclose(grad.reshape(-1)[entries], finite_difference(penalty, kernel, entries),
                               rtol=2e-2, atol=2e-3)


@pytest.mark.parity
def test_gradient_is_taken_after_transform_batch(rng):
    class Double(priors.Prior):
        def transform_batch(self, batch, seed_generator):
            return {**batch, "image": batch["image"] * 2.0}

    prior = priors.InputGradient(classes="true")
    model = _linear_model(prior)
    model.priors.insert(0, Double())
    model._transforming = [model.priors[0]]
    model.batch_seed_generator = keras.random.SeedGenerator(0)
    batch = _batch(rng)
    got = to_numpy(model(batch, training=True)["input_gradient/gradient"])
    np.testing.assert_allclose(got, _closed_form_gradient(model, {**batch, "image": batch["image"] * 2}, "true"),
                               rtol=1e-4, atol=1e-5)


@pytest.mark.parity
def test_images_only_or_no_mask_computes_no_gradient(rng):
    model = _linear_model(priors.InputGradient())
    batch = _batch(rng)
    assert sorted(model(batch["image"])) == ["logits"]
    assert sorted(model({"image": batch["image"], "label": batch["label"]}, training=True)) == ["logits"]
    assert sorted(model(batch, training=True)) == ["input_gradient/gradient", "logits"]


@pytest.mark.parity
def test_zoo_fit_on_kakapo_updates_batchnorm_and_saves(tmp_path):
    train = kp.data.kakapo("train", image_size=32, num_samples=32, batch_size=16, seed=1)
    model = tiny_zoo_model([priors.InputGradient(weight=1.0)])
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    bn = next(v for v in model.network.non_trainable_variables if "moving_mean" in v.path)
    before = to_numpy(bn).copy()
    history = model.fit(train, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["input_gradient_loss"]))
    assert history.history["input_gradient_loss"][0] > 0
    assert not np.allclose(to_numpy(bn), before), "BatchNorm statistics were not updated"
    batch = next(iter(train.take(1)))
    images = to_numpy(batch["image"])[:4]
    out = model.predict(images, verbose=0)
    assert sorted(out) == ["cam", "logits"]
    path = str(tmp_path / "m.keras")
    model.save(path)
    reloaded = keras.saving.load_model(path)
    assert reloaded.priors[0].get_config() == model.priors[0].get_config()
    np.testing.assert_allclose(to_numpy(reloaded({"image": images})["logits"]), out["logits"], atol=1e-5)
    reloaded.compile(optimizer="adam")
    assert np.isfinite(reloaded.fit(train.take(1), epochs=1, verbose=0).history["input_gradient_loss"][0])


def test_export_is_unaffected(tmp_path):
    train = kp.data.kakapo("train", image_size=32, num_samples=16, batch_size=16, seed=1)
    model = tiny_zoo_model([priors.InputGradient(weight=1.0)])
    model.compile(optimizer="adam")
    model.fit(train, epochs=1, verbose=0)
    images = to_numpy(next(iter(train))["image"])[:3]
    assert_export_serves_the_classifier(model, images, tmp_path / "exported")
    assert "input_gradient/gradient" not in model.inference_model().output


def test_penalty_decreases_when_trained():
    """A real behavioural check: 50 steps on 2-class kakapo lower the penalty, and below a run without it."""
    data = kp.data.kakapo("train", image_size=32, num_samples=160, batch_size=16, seed=2, shuffle=False)
    probe = next(iter(data))

    def run(weight):
        keras.utils.set_random_seed(0)
        prior = priors.InputGradient(weight=weight)
        model = tiny_zoo_model([prior])
        model.compile(optimizer=keras.optimizers.Adam(1e-3))
        history = model.fit(data.repeat(), epochs=5, steps_per_epoch=10, verbose=0)
        gradient = model(probe, training=False)["input_gradient/gradient"]
        return history.history, float(np.mean(to_numpy(losses.input_gradient_penalty(gradient, probe["object_mask"]))))

    history, end = run(weight=1.0)
    history_without, end_without = run(weight=0.0)
    logged = history["input_gradient_loss"]
    assert logged[-1] < 0.5 * logged[0], logged
    # Trained with the prior, the penalty (inference mode, a fixed batch) is below a run without it.
    assert end < 0.5 * end_without, (end, end_without)


def test_config_round_trip_and_bad_arguments():
    prior = priors.InputGradient(mask="part_mask", mask_is="irrelevant", classes="predicted", normalize="mean",
                                 weight=1000.0, name="rrr")
    clone = priors.InputGradient.from_config(prior.get_config())
    assert clone.get_config() == prior.get_config() == {
        "weight": 1000.0, "name": "rrr", "mask": "part_mask", "mask_is": "irrelevant", "classes": "predicted",
        "normalize": "mean"}
    assert clone.required_keys == ("part_mask",) and clone.term_names() == ["rrr"]
    for kwargs, match in [
        ({"classes": "max"}, r"InputGradient: Expected `classes` to be one of \['all', 'predicted', 'true'\]. "
                             r"Received: classes='max'"),
        ({"mask_is": "object"}, r"Expected `mask_is` to be one of .*Received: mask_is='object'"),
        ({"normalize": "sum"}, r"Expected `normalize` to be one of \['mean', 'rrr'\]. Received: normalize='sum'"),
        ({"weight": float("nan")}, r"Expected `weight` to be a finite number >= 0. Received: weight=nan"),
        ({"weight": float("inf")}, r"Received: weight=inf"),
        ({"weight": -1.0}, r"Expected `weight` >= 0. Received: weight=-1.0"),
        ({"mask": ""}, r"Expected `mask` to be a data key"),
    ]:
        with pytest.raises(ValueError, match=match):
            priors.InputGradient(**kwargs)
    with pytest.raises(ValueError,
                       match=r"input_gradient_penalty: Expected `mask` of shape .*Received: mask.shape=\(1, 2, 2, 3\)"):
        losses.input_gradient_penalty(np.ones((1, 4, 4, 3), "float32"), np.ones((1, 2, 2, 3), "float32"))
    with pytest.raises(ValueError, match=r"Expected `gradients` of rank 4"):
        losses.input_gradient_penalty(np.ones((4, 4), "float32"), np.ones((4, 4), "float32"))


def test_missing_mask_key_fails_before_training():
    model = tiny_zoo_model([priors.InputGradient(mask="part_mask")])
    model.compile(optimizer="adam")
    data = kp.data.kakapo("train", image_size=32, num_samples=16, batch_size=16, as_numpy=True)
    data = {k: v for k, v in data.items() if k != "part_mask"}
    with pytest.raises(ValueError, match=r"InputGradient needs the data key\(s\) \['part_mask'\]"):
        model.fit(data, batch_size=16, epochs=1, verbose=0)


@pytest.mark.parity
def test_two_gradient_priors_share_one_forward_pass():
    """InputGradient and GradCAMPenalty in one model: each gradient equals the one of a model with it alone."""
    batch = {k: v for k, v in kp.data.kakapo("train", image_size=32, num_samples=8, batch_size=None,
                                              as_numpy=True).items() if k in ("image", "object_mask", "label")}
    both = tiny_zoo_model([priors.InputGradient(), priors.GradCAMPenalty(level="P2")])
    out = both(batch, training=False)
    for prior, key in [(priors.InputGradient(), "input_gradient/gradient"),
                       (priors.GradCAMPenalty(level="P2"), "grad_cam_penalty/gradient")]:
        alone = tiny_zoo_model([prior])
        alone.set_weights(both.get_weights())
        np.testing.assert_allclose(to_numpy(out[key]), to_numpy(alone(batch, training=False)[key]),
                                   rtol=1e-4, atol=1e-7)


def test_fit_under_mixed_precision_and_xla():
    data = {k: v for k, v in kp.data.kakapo("train", image_size=32, num_samples=16, batch_size=None,
                                             as_numpy=True).items() if k in ("image", "object_mask", "label")}
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = tiny_zoo_model([priors.InputGradient(), priors.GradCAMPenalty(level="P2")])
    finally:
        keras.config.set_dtype_policy("float32")
    model.compile(optimizer="adam")
    history = model.fit(data, batch_size=16, epochs=1, verbose=0)
    assert np.isfinite(history.history["input_gradient_loss"][0])
    model = tiny_zoo_model([priors.InputGradient(), priors.GradCAMPenalty(level="P2")])
    model.compile(optimizer="adam", jit_compile=True)
    history = model.fit(data, batch_size=16, epochs=2, verbose=0)
    assert np.all(np.isfinite(history.history["loss"])) and history.history["input_gradient_loss"][0] > 0


@pytest.mark.parity
def test_jit_compile_with_a_gradient_prior():
    # torch.compile cannot differentiate twice: on torch Keras warns and the model trains eagerly. TensorFlow and
    # JAX compile it with XLA (trained in test_fit_under_mixed_precision_and_xla: 20 s of XLA compilation).
    model = tiny_zoo_model([priors.InputGradient()])
    model.compile(optimizer="adam", jit_compile=True)
    on_torch = keras.backend.backend() == "torch"
    assert model.jit_compile == (not on_torch)
    if on_torch:
        history = model.fit(kakapo_batch(4), batch_size=4, epochs=1, verbose=0)
        assert np.isfinite(history.history["input_gradient_loss"][0])


@pytest.mark.parity
def test_a_user_prior_can_request_a_gradient(rng):
    """The hook is generic: a prior written outside the library asks for d logit_1 / d image."""
    from keras import ops

    class LogitOneSmoothness(priors.Prior):
        def gradient_requests(self):
            return [priors.GradientRequest(key="mine/gradient", wrt="image", keys=("image",),
                                           score=lambda outputs, batch: ops.sum(outputs["logits"][:, 1]))]

        def loss_terms(self, targets, outputs, num_classes):
            return {self.name: self.weight * ops.mean(ops.square(outputs["mine/gradient"]))}

    prior = LogitOneSmoothness(weight=1.0)
    model = _linear_model(prior)
    batch = _batch(rng)
    out = model(batch, training=True)
    w = to_numpy(model.network.get_layer("dense").kernel)[:, 1].reshape(SHAPE)
    np.testing.assert_allclose(to_numpy(out["mine/gradient"]), np.broadcast_to(w, out["mine/gradient"].shape),
                               rtol=1e-5, atol=1e-6)
    value, grad = prior_loss_and_gradient(model, prior, batch, model.network.get_layer("dense").kernel)
    # d/dW of mean(W_1^2) over (B, D) entries = 2 W_1 / D in column 1, zero elsewhere.
    want = np.zeros_like(grad)
    want[:, 1] = 2 * w.reshape(-1) / w.size
    np.testing.assert_allclose(grad, want, rtol=1e-5, atol=1e-7)


def test_run_prior_test_hand_computed_penalty():
    from harness import half_masks, prior_batch, run_prior_test

    # an input gradient of 0.1 on every pixel and channel: sample 0, object on the top half, has 16 * 32 * 3
    # = 1536 entries outside, each 0.1 ** 2: 15.36; sample 1, object everywhere: 0. Mean 7.68, times weight 2
    batch = prior_batch([0, 1], object_mask=half_masks("top", "full"))
    run_prior_test(priors.InputGradient, {"mask": "object_mask", "weight": 2.0}, batch,
                   outputs={"input_gradient/gradient": np.full((2, 32, 32, 3), 0.1, "float32")},
                   expected_loss={"input_gradient": 15.36}, atol=1e-4)
