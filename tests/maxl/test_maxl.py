import os

import keras
import numpy as np
import pytest
from keras import ops

from keras_priors.data.kakapo import make_kakapo
from keras_priors.maxl import (
    FASHION_MNIST_HIERARCHY,
    LabelGenerator,
    MAXLModel,
    focal_cross_entropy,
    hierarchy_mask,
    hierarchy_tables,
    label_entropy_penalty,
    masked_softmax,
)
from keras_priors.maxl import _autodiff

PSI = [2, 3]


def _np(x):
    return np.asarray(ops.convert_to_numpy(x))


def _tiny_backbone(size=8):
    inputs = keras.Input((size, size, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="tanh", name="conv")(inputs)
    return keras.Model(inputs, {"P1": x}, name="tiny_backbone")


def _tiny_generator(psi=PSI):
    encoder = keras.Sequential([keras.layers.Conv2D(3, 3, activation="tanh", name="gconv")], name="genc")
    return LabelGenerator(psi, encoder=encoder, hidden_units=5, name="label_generator")


def _tiny_model(order="second", alpha=0.5, psi=PSI):
    return MAXLModel(_tiny_backbone(), psi=psi, generator=_tiny_generator(psi), order=order,
                     virtual_learning_rate=alpha)


def _batch(n=6, size=8, seed=0, classes=2):
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 1, (n, size, size, 3)).astype("float32"), (np.arange(n) % classes).astype("int32")


def _values(vs):
    return [ops.convert_to_tensor(_np(v)) for v in vs]


# === Masked softmax and loss terms ===

@pytest.mark.parity
def test_masked_softmax_zero_outside_block_and_softmax_inside():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (5, 5)).astype("float32")
    logits[0, 0] = 500.0  # would overflow a naive exp
    labels = np.array([0, 1, 1, 0, 1])
    q = _np(masked_softmax(logits, labels, PSI))
    mask = hierarchy_mask(PSI)
    np.testing.assert_array_equal(mask, [[1, 1, 0, 0, 0], [0, 0, 1, 1, 1]])
    for b, y in enumerate(labels):
        block = mask[y] > 0
        assert np.all(q[b, ~block] == 0.0)
        z = logits[b, block] - logits[b, block].max()
        np.testing.assert_allclose(q[b, block], np.exp(z) / np.exp(z).sum(), rtol=1e-5, atol=1e-7)


@pytest.mark.parity
def test_entropy_penalty_and_focal_loss_hand_cases():
    # Batch mean [0.5, 0.5, 0, 0]: sum m log m = -log 2.
    q = np.array([[1, 0, 0, 0], [0, 1, 0, 0]], "float32")
    np.testing.assert_allclose(_np(label_entropy_penalty(q)), -np.log(2.0), rtol=1e-6)
    # Collapsed batch: every sample on one class gives 0 (the maximum).
    np.testing.assert_allclose(_np(label_entropy_penalty(np.array([[0, 1, 0], [0, 1, 0]], "float32"))), 0.0, atol=1e-6)
    # Focal: -(1 - 0.5)^2 log 0.5 = 0.25 log 2 for a one-hot target at p = 0.5.
    p = np.array([[0.5, 0.5], [0.9, 0.1]], "float32")
    t = np.array([[1, 0], [0.5, 0.5]], "float32")
    expected = np.mean([0.25 * np.log(2), 0.5 * 0.01 * -np.log(0.9) + 0.5 * 0.81 * -np.log(0.1)])
    np.testing.assert_allclose(_np(focal_cross_entropy(t, p)), expected, rtol=1e-5)
    np.testing.assert_allclose(_np(focal_cross_entropy(t, p, gamma=0.0)),
                               np.mean(-(t * np.log(p)).sum(-1)), rtol=1e-5)


# === The meta-gradient ===

def _meta_objective(model, gen_tv, net_tv, net_ntv, gen_ntv, images, labels):
    """Primary loss after one virtual SGD step + entropy term, as a plain function of the generator weights."""
    alpha = model.virtual_learning_rate
    q, _ = model.generator.stateless_call(gen_tv, gen_ntv, images, labels, training=True)

    def train_loss(params):
        out, _ = model.network.stateless_call(params, net_ntv, images, training=True)
        onehot = ops.one_hot(labels, len(PSI))
        loss = focal_cross_entropy(onehot, ops.softmax(out["logits"]))
        return loss + focal_cross_entropy(q, ops.softmax(out["aux_logits"])), None

    _, grads = _autodiff.value_and_grad(train_loss)(net_tv)
    plus = [t - alpha * g for t, g in zip(net_tv, grads)]
    out, _ = model.network.stateless_call(plus, net_ntv, images, training=True)
    primary = focal_cross_entropy(ops.one_hot(labels, len(PSI)), ops.softmax(out["logits"]))
    return float(_np(primary + model.entropy_weight * label_entropy_penalty(q)))


def _meta_grads(model, images, labels):
    return model.maxl_gradients(
        _values(model.network.trainable_variables), _values(model.network.non_trainable_variables),
        _values(model.generator.trainable_variables), _values(model.generator.non_trainable_variables),
        images, labels)


@pytest.mark.parity
def test_second_order_meta_gradient_matches_finite_differences():
    keras.utils.set_random_seed(3)
    model = _tiny_model("second", alpha=0.5)
    images, labels = _batch()
    _, gen_grads, _, _, stats = _meta_grads(model, images, labels)
    gen_vars = model.generator.trainable_variables
    k = [i for i, v in enumerate(gen_vars) if v.path.endswith("hidden/kernel")][0]
    analytic = _np(gen_grads[k]).ravel()
    gen_tv = [_np(v) for v in gen_vars]
    net_tv, net_ntv = _values(model.network.trainable_variables), _values(model.network.non_trainable_variables)
    gen_ntv = _values(model.generator.non_trainable_variables)
    h = 1e-2
    for idx in np.argsort(-np.abs(analytic))[:2]:
        vals = []
        for sign in (1.0, -1.0):
            params = [p.copy() for p in gen_tv]
            flat = params[k].reshape(-1)
            flat[idx] += sign * h
            params[k] = flat.reshape(gen_tv[k].shape)
            vals.append(_meta_objective(model, [ops.convert_to_tensor(p) for p in params], net_tv, net_ntv,
                                        gen_ntv, images, labels))
        numeric = (vals[0] - vals[1]) / (2 * h)
        np.testing.assert_allclose(analytic[idx], numeric, rtol=0.05, atol=2e-5)
    assert np.abs(analytic).max() > 1e-4  # the check above is not vacuous


@pytest.mark.parity
@pytest.mark.parametrize("difference", ["forward", "central"])
def test_first_order_approximation_close_to_second_order(difference):
    keras.utils.set_random_seed(4)
    images, labels = _batch(seed=1)
    second = _tiny_model("second", alpha=0.1)
    first = MAXLModel.from_config({**second.get_config(), "order": "first", "finite_difference": difference})
    first.set_weights(second.get_weights())
    _, g2, _, _, s2 = _meta_grads(second, images, labels)
    _, g1, _, _, s1 = _meta_grads(first, images, labels)
    a = np.concatenate([_np(g).ravel() for g in g2])
    b = np.concatenate([_np(g).ravel() for g in g1])
    cosine = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert cosine > 0.99, cosine
    assert np.linalg.norm(a - b) / np.linalg.norm(a) < 0.1
    np.testing.assert_allclose(_np(s1["meta_loss"]), _np(s2["meta_loss"]), rtol=1e-5)


@pytest.mark.parity
@pytest.mark.parametrize("order", ["second", "first"])
def test_step_without_generator_update_is_the_plain_multitask_step(order):
    keras.utils.set_random_seed(5)
    model = _tiny_model(order)
    images, labels = _batch(seed=2)
    net_full, gen_full, ntv_full, _, s_full = _meta_grads(model, images, labels)
    net_skip, gen_skip, ntv_skip, _, s_skip = model.maxl_gradients(
        _values(model.network.trainable_variables), _values(model.network.non_trainable_variables),
        _values(model.generator.trainable_variables), _values(model.generator.non_trainable_variables),
        images, labels, update_generator=False)
    # Same network gradients (the real step does not depend on the meta-step), zero generator gradients.
    for a, b in zip(net_full, net_skip):
        np.testing.assert_allclose(_np(a), _np(b), rtol=1e-5, atol=1e-7)
    assert all(np.all(_np(g) == 0) for g in gen_skip)
    assert max(np.abs(_np(g)).max() for g in gen_full) > 0
    assert float(_np(s_full["generator_updated"])) == 1.0 and float(_np(s_skip["generator_updated"])) == 0.0
    np.testing.assert_allclose(_np(s_full["loss"]), _np(s_skip["loss"]), rtol=1e-6)


@pytest.mark.parity
def test_generator_update_every_k_updates_only_every_kth_batch():
    keras.utils.set_random_seed(6)
    model = MAXLModel(_tiny_backbone(), psi=PSI, generator=_tiny_generator(), order="first",
                      generator_update_every=2)
    # Weight decay on the generator: a skipped step must not apply it either.
    model.compile(optimizer=keras.optimizers.SGD(0.05),
                  generator_optimizer=keras.optimizers.SGD(0.1, weight_decay=0.1))
    images, labels = _batch(n=8, seed=3)
    batch = {"image": images, "label": labels}
    changed = []
    for _ in range(4):
        gen_before = [_np(v).copy() for v in model.generator.trainable_variables]
        net_before = [_np(v).copy() for v in model.network.trainable_variables]
        model.train_on_batch(batch)
        changed.append(any(np.any(_np(v) != b) for v, b in zip(model.generator.trainable_variables, gen_before)))
        assert any(np.any(_np(v) != b) for v, b in zip(model.network.trainable_variables, net_before))
    assert changed == [True, False, True, False]
    assert int(_np(model.optimizer.iterations)) == 4
    assert model.get_config()["generator_update_every"] == 2
    with pytest.raises(ValueError, match="generator_update_every.*Received: generator_update_every=0"):
        MAXLModel(_tiny_backbone(), psi=PSI, generator_update_every=0)
    with pytest.raises(ValueError, match="finite_difference"):
        MAXLModel(_tiny_backbone(), psi=PSI, finite_difference="backward")


# === Hierarchies ===

def test_hierarchy_tables_and_fashion_mnist_hierarchy():
    coarse, aux, psi = hierarchy_tables(FASHION_MNIST_HIERARCHY)
    assert psi == [5, 3, 2]
    np.testing.assert_array_equal(coarse, [0, 2, 0, 0, 0, 1, 0, 1, 2, 1])
    # Auxiliary ids sit in their coarse class's block of hierarchy_mask(psi).
    np.testing.assert_array_equal(hierarchy_mask(psi)[coarse, aux], 1.0)
    assert sorted(aux.tolist()) == list(range(10))
    with pytest.raises(ValueError, match="exactly once"):
        hierarchy_tables((("a", (0, 1)), ("b", (1,))))
    from keras_priors.maxl import fashion_mnist_hierarchy

    try:
        train = fashion_mnist_hierarchy("train", num_samples=50, seed=1)
    except FileNotFoundError:
        pytest.skip("Fashion-MNIST IDX files not installed")
    assert train["image"].shape == (50, 28, 28, 1) and train["image"].dtype == np.float32
    np.testing.assert_array_equal(train["label"], coarse[train["fine_label"]])
    np.testing.assert_array_equal(train["aux_label"], aux[train["fine_label"]])
    again = fashion_mnist_hierarchy("train", num_samples=50, seed=1)
    np.testing.assert_array_equal(again["fine_label"], train["fine_label"])


# === Training, serialization ===

@pytest.mark.parity
@pytest.mark.parametrize("order", ["second", "first"])
def test_fit_on_tiny_kakapo_changes_the_generator(order):
    data = make_kakapo(16, image_size=16, seed=0)
    backbone_in = keras.Input((16, 16, 3))
    x = keras.layers.Conv2D(4, 3, strides=2, activation="relu")(backbone_in)
    backbone = keras.Model(backbone_in, {"P1": x})
    model = MAXLModel(backbone, psi=[2, 4], num_classes=2,
                      generator=LabelGenerator([2, 4], widths=(4,), hidden_units=8), order=order)
    model.compile(optimizer=keras.optimizers.SGD(0.05), generator_optimizer=keras.optimizers.SGD(0.1))
    before = [_np(v).copy() for v in model.generator.trainable_variables]
    net_before = [_np(v).copy() for v in model.network.trainable_variables]
    ds = {"image": data["image"], "label": data["label"], "aux_label": data["aux_label"]}
    history = model.fit(ds, batch_size=8, epochs=1, verbose=0)
    for key in ("loss", "aux_loss", "meta_loss", "label_entropy", "accuracy"):
        assert np.isfinite(history.history[key][-1]), key
    assert max(np.abs(_np(v) - b).max() for v, b in zip(model.generator.trainable_variables, before)) > 0
    assert max(np.abs(_np(v) - b).max() for v, b in zip(model.network.trainable_variables, net_before)) > 0
    assert int(_np(model.optimizer.iterations)) == 2
    logs = model.evaluate(ds, batch_size=8, verbose=0, return_dict=True)
    assert set(logs) == {"loss", "accuracy"}


def test_zoo_backbone_and_serialization(tmp_path):
    import keras_priors as kp

    backbone = kp.zoo.get_spec("resnet_tiny").builder((16, 16, 3))
    model = MAXLModel(backbone, psi=[1, 4], order="first", name="maxl")
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    data = make_kakapo(8, image_size=16, seed=1)
    model.fit({"image": data["image"], "label": data["label"]}, batch_size=8, epochs=1, verbose=0)
    images, labels = data["image"], data["label"]
    out = _np(model(images)["logits"])
    q = _np(model.generate_labels(images, labels))
    assert q.shape == (8, 5)
    np.testing.assert_allclose(q[labels == 0, 1:], 0.0)  # kakapo block has one class
    clone = MAXLModel.from_config(model.get_config())
    clone.set_weights(model.get_weights())
    np.testing.assert_allclose(_np(clone(images)["logits"]), out, atol=1e-5)
    assert clone.order == "first" and clone.psi == (1, 4)
    path = os.path.join(tmp_path, "maxl.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    np.testing.assert_allclose(_np(loaded(images)["logits"]), out, atol=1e-5)
    np.testing.assert_allclose(_np(loaded.generate_labels(images, labels)), q, atol=1e-5)
    loaded.fit({"image": images, "label": labels}, batch_size=8, epochs=1, verbose=0)


# === Bad input ===

def test_bad_inputs_raise_clear_errors():
    backbone = _tiny_backbone()
    with pytest.raises(ValueError, match=r"one entry of `psi` per primary class \(3 classes\).*psi=\[2, 3\]"):
        MAXLModel(backbone, psi=[2, 3], num_classes=3)
    with pytest.raises(ValueError, match=r"integer >= 1.*psi\[1\]=0"):
        MAXLModel(backbone, psi=[2, 0])
    with pytest.raises(ValueError, match="list of auxiliary class counts"):
        MAXLModel(backbone, psi=5)
    with pytest.raises(ValueError, match=r"one of the backbone's outputs \['P1'\].*feature='P5'"):
        MAXLModel(backbone, psi=PSI, feature="P5")
    inputs = keras.Input((8, 8, 3))
    two = keras.Model(inputs, [keras.layers.Conv2D(2, 3)(inputs), keras.layers.Conv2D(2, 3)(inputs)])
    with pytest.raises(ValueError, match="2 unnamed outputs"):
        MAXLModel(two, psi=PSI)
    with pytest.raises(ValueError, match="functional keras.Model"):
        MAXLModel(keras.layers.Dense(3), psi=PSI)
    with pytest.raises(ValueError, match=r"generator.psi=\[3, 3\]"):
        MAXLModel(backbone, psi=PSI, generator=LabelGenerator([3, 3]))
    with pytest.raises(ValueError, match="order"):
        MAXLModel(backbone, psi=PSI, order="third")
    with pytest.raises(ValueError, match="`loss` is fixed"):
        MAXLModel(backbone, psi=PSI).compile(optimizer="sgd", loss="mse")
