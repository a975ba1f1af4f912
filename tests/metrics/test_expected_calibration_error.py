import keras
import numpy as np
import pytest
from keras import ops

from keras_priors.metrics import ExpectedCalibrationError


def _update(metric, y_true, y_pred):
    if keras.backend.backend() == "jax":
        import jax

        variables = jax.jit(metric.stateless_update_state)([v.value for v in metric.variables], y_true, y_pred)
        for v, new in zip(metric.variables, variables):
            v.assign(new)
    else:
        metric.update_state(y_true, y_pred)
    return float(ops.convert_to_numpy(metric.result()))


def np_ece(labels, probs, num_bins):
    conf, pred = probs.max(-1), probs.argmax(-1)
    bins = np.minimum((conf * num_bins).astype(int), num_bins - 1)
    gap = sum(abs(conf[bins == b].sum() - (pred == labels)[bins == b].sum()) for b in range(num_bins))
    return gap / len(labels)


@pytest.mark.parity
def test_hand_computed():
    probs = np.array([[0.9, 0.1], [0.2, 0.8], [0.65, 0.35], [0.3, 0.7]], "float32")
    labels = np.array([0, 0, 0, 1], "int32")
    # bin [0.8, 1.0]: conf 0.9 + 0.8, correct 1 -> 0.7; bin [0.6, 0.8): conf 0.65 + 0.7, correct 2 -> 0.65
    assert _update(ExpectedCalibrationError(num_bins=5, from_logits=False), labels, probs) == pytest.approx(
        1.35 / 4, abs=1e-6)
    # From logits: log-probabilities are logits of the same softmax.
    assert _update(ExpectedCalibrationError(num_bins=5), labels[:, None], np.log(probs)) == pytest.approx(
        1.35 / 4, abs=1e-6)
    # Single logit: sigmoid(log(p1 / p0)) = p1.
    single = np.log(probs[:, 1:] / probs[:, :1])
    assert _update(ExpectedCalibrationError(num_bins=5), labels, single) == pytest.approx(1.35 / 4, abs=1e-6)


@pytest.mark.parity
def test_accumulates_over_batches_like_one_batch():
    rng = np.random.default_rng(0)
    logits = (2 * rng.normal(size=(3, 10, 4))).astype("float32")
    labels = rng.integers(0, 4, size=(3, 10)).astype("int32")
    m = ExpectedCalibrationError()
    for lab, z in zip(labels, logits):
        value = _update(m, lab, z)
    z = logits.reshape(-1, 4).astype("float64")
    probs = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    assert value == pytest.approx(np_ece(labels.reshape(-1), probs, 15), abs=1e-5)
    m.reset_state()
    assert float(ops.convert_to_numpy(m.result())) == 0.0


def test_in_fit_logs():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(8, 3)).astype("float32")
    labels = rng.integers(0, 3, size=8)
    inp = keras.Input((3,))
    model = keras.Model(inp, {"logits": keras.layers.Dense(3, name="logits")(inp)})
    model.compile(optimizer="sgd", loss={"logits": keras.losses.SparseCategoricalCrossentropy(from_logits=True)},
                  metrics={"logits": [ExpectedCalibrationError(num_bins=4)]})
    history = model.fit(x, {"logits": labels}, batch_size=4, epochs=1, verbose=0)
    assert any(k.endswith("ece") for k in history.history), history.history.keys()
    value = [v for k, v in model.evaluate(x, {"logits": labels}, verbose=0, return_dict=True).items()
             if k.endswith("ece")][0]
    z = model.predict(x, verbose=0)["logits"].astype("float64")
    assert value == pytest.approx(np_ece(labels, np.exp(z) / np.exp(z).sum(-1, keepdims=True), 4), abs=1e-5)


def test_config_and_errors():
    m = ExpectedCalibrationError(num_bins=7, from_logits=False)
    revived = keras.metrics.deserialize(keras.metrics.serialize(m))
    assert (revived.num_bins, revived.from_logits) == (7, False)
    with pytest.raises(ValueError, match=r"ExpectedCalibrationError.*`num_bins`.*Received: num_bins=0"):
        ExpectedCalibrationError(num_bins=0)
    with pytest.raises(ValueError, match=r"ExpectedCalibrationError.*Received: y_true.shape=\(3,\)"):
        ExpectedCalibrationError().update_state(np.zeros((3,), "int32"), np.zeros((2, 2), "float32"))
