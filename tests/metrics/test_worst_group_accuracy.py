import keras
import numpy as np
import pytest
from keras import ops

from keras_priors.metrics import WorstGroupAccuracy, pack_label_and_group


def _update(metric, y_true, y_pred):
    if keras.backend.backend() == "jax":
        import jax

        variables = jax.jit(metric.stateless_update_state)([v.value for v in metric.variables], y_true, y_pred)
        for v, new in zip(metric.variables, variables):
            v.assign(new)
    else:
        metric.update_state(y_true, y_pred)
    return float(ops.convert_to_numpy(metric.result()))


@pytest.mark.parity
def test_hand_computed_over_two_batches():
    m = WorstGroupAccuracy(num_groups=4)
    # batch 1: group 0 right, right; group 1 right, wrong
    y1 = np.array([[0, 0], [0, 0], [1, 1], [1, 1]], "int32")
    p1 = np.array([[2.0, 0.0], [1.0, 0.0], [0.0, 1.0], [3.0, 0.0]], "float32")
    assert _update(m, y1, p1) == pytest.approx(0.5)
    # batch 2: group 1 right (2/3 now), group 3 wrong (0/1); group 2 never seen
    y2 = np.array([[1, 1], [0, 3]], "int32")
    p2 = np.array([[0.0, 1.0], [0.0, 5.0]], "float32")
    assert _update(m, y2, p2) == pytest.approx(0.0)
    acc = ops.convert_to_numpy(m.group_accuracies())
    np.testing.assert_allclose(acc[[0, 1, 3]], [1.0, 2 / 3, 0.0], atol=1e-6)
    assert np.isnan(acc[2])
    m.reset_state()
    assert float(ops.convert_to_numpy(m.result())) == 0.0


@pytest.mark.parity
def test_single_logit_and_packing():
    m = WorstGroupAccuracy(num_groups=2)
    y = ops.convert_to_numpy(pack_label_and_group(np.array([1, 0, 1, 0]), np.array([0, 0, 1, 1])))
    np.testing.assert_array_equal(y, [[1, 0], [0, 0], [1, 1], [0, 1]])
    logits = np.array([[0.5], [-1.0], [-0.2], [-3.0]], "float32")  # predictions 1, 0, 0, 0
    assert _update(m, y, logits) == pytest.approx(0.5)  # group 0: 2/2, group 1: 1/2


def test_pack_in_tf_data():
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((np.array([0, 1]), np.array([3, 2]))).map(pack_label_and_group)
    np.testing.assert_array_equal(np.stack([t.numpy() for t in ds]), [[0, 3], [1, 2]])


@pytest.mark.parity
def test_in_fit_logs_and_evaluate_value():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 3)).astype("float32")
    labels = rng.integers(0, 2, size=12)
    groups = labels * 2 + rng.integers(0, 2, size=12)
    inp = keras.Input((3,))
    logits = keras.layers.Dense(2, name="logits")(inp)
    groups_out = keras.layers.Identity(name="groups")(logits)
    model = keras.Model(inp, {"logits": logits, "groups": groups_out})
    model.compile(
        optimizer="sgd",
        loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True), "groups": None},
        metrics={"groups": [WorstGroupAccuracy(num_groups=4)]},
    )
    y = {"logits": labels, "groups": np.stack([labels, groups], -1)}
    history = model.fit(x, y, batch_size=6, epochs=1, verbose=0)
    assert any(k.endswith("worst_group_accuracy") for k in history.history), history.history.keys()
    logs = model.evaluate(x, y, batch_size=6, verbose=0, return_dict=True)
    value = [v for k, v in logs.items() if k.endswith("worst_group_accuracy")][0]
    pred = model.predict(x, verbose=0)["logits"].argmax(-1)
    ref = min((pred[groups == g] == labels[groups == g]).mean() for g in np.unique(groups))
    assert value == pytest.approx(ref, abs=1e-6)


def test_config_and_errors():
    m = WorstGroupAccuracy(num_groups=3, name="wga")
    assert WorstGroupAccuracy.from_config(m.get_config()).num_groups == 3
    assert keras.metrics.deserialize(keras.metrics.serialize(m)).num_groups == 3
    with pytest.raises(ValueError, match=r"WorstGroupAccuracy.*`num_groups`.*Received: num_groups=0"):
        WorstGroupAccuracy(num_groups=0)
    with pytest.raises(ValueError, match=r"WorstGroupAccuracy.*\(B, 2\).*Received: y_true.shape=\(4,\)"):
        WorstGroupAccuracy(num_groups=2).update_state(np.zeros((4,), "int32"), np.zeros((4, 2), "float32"))
