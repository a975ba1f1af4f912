import keras
import numpy as np
import pytest
from keras import ops

from harness import run_loss_test
from keras_priors.losses import ConfidencePenalty, confidence_penalty, prediction_entropy

LN2 = float(np.log(2.0))
H_75 = float(-(0.75 * np.log(0.75) + 0.25 * np.log(0.25)))


def _grad(fn, x):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        x = tf.convert_to_tensor(x)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return tape.gradient(y, x).numpy()
    if backend == "jax":
        import jax

        return np.asarray(jax.jit(jax.grad(fn))(x))
    if backend == "torch":
        import torch

        xt = torch.tensor(np.asarray(x), requires_grad=True)
        fn(xt).backward()
        return xt.grad.numpy()
    pytest.skip(f"no gradient helper for backend {backend}")


def _run(fn, *args):
    """``fn(*args)`` as numpy; jitted on JAX (one compile instead of one per eager op)."""
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.jit(fn)(*args))
    return np.asarray(ops.convert_to_numpy(fn(*args)))


def np_entropy(logits):
    if logits.shape[-1] == 1:
        p = 1.0 / (1.0 + np.exp(-logits[:, 0].astype("float64")))
        return -(p * np.log(p) + (1 - p) * np.log(1 - p))
    z = logits.astype("float64") - logits.max(-1, keepdims=True)
    p = np.exp(z) / np.exp(z).sum(-1, keepdims=True)
    return -(p * np.log(p)).sum(-1)


@pytest.mark.parity
def test_hand_computed_values():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]], "float32")  # p = [.5, .5] and [.75, .25]
    cases = [
        ({"beta": 1.0}, logits, -(LN2 + H_75) / 2),
        ({"beta": 0.5}, logits, -0.5 * (LN2 + H_75) / 2),
        ({"beta": 2.0, "threshold": 0.65}, logits, 2.0 * (0.65 - H_75) / 2),  # only the 2nd is below tau
        ({"beta": 1.0, "threshold": 0.5}, logits, 0.0),
        ({"beta": 1.0}, np.array([[0.0], [np.log(3.0)]], "float32"), -(LN2 + H_75) / 2),  # sigmoid
        ({"beta": 1.0, "from_logits": False}, np.array([[0.75, 0.25]], "float32"), -H_75),
        ({"beta": 1.0, "from_logits": False}, np.array([[0.25]], "float32"), -H_75),
    ]
    for kwargs, y_pred, expected in cases:
        value = _run(lambda z, kwargs=kwargs: ConfidencePenalty(**kwargs)(None, z), y_pred)
        np.testing.assert_allclose(value, expected, atol=1e-5, err_msg=str(kwargs))


@pytest.mark.parity
def test_matches_numpy_and_function_form():
    rng = np.random.default_rng(0)
    for k in (1, 4):
        logits = (3 * rng.normal(size=(5, k))).astype("float32")
        ref = np_entropy(logits)
        np.testing.assert_allclose(_run(prediction_entropy, logits), ref, atol=1e-5)
        got = _run(lambda z: confidence_penalty(z, beta=0.3, threshold=1.0), logits)
        np.testing.assert_allclose(got, 0.3 * np.maximum(1.0 - ref, 0), atol=1e-5)
        got = _run(lambda z: ConfidencePenalty(beta=0.3, reduction=None)(np.zeros((5,)), z), logits)
        np.testing.assert_allclose(got, -0.3 * ref, atol=1e-5)


@pytest.mark.parity
def test_sgd_step_lowers_confidence_and_raises_entropy():
    for logits, threshold in (
        (np.array([[5.0, 0.0, -1.0], [0.0, 4.0, 1.0]], "float32"), None),
        (np.array([[5.0, 0.0, -1.0], [0.0, 4.0, 1.0]], "float32"), 1.0),
        (np.array([[4.0], [-3.0]], "float32"), None),
    ):
        loss = ConfidencePenalty(beta=1.0, threshold=threshold)
        g = _grad(lambda z: loss(None, z), logits)
        stepped = logits - 1.0 * g
        if logits.shape[-1] == 1:
            max_p = lambda z: np.maximum(1 / (1 + np.exp(-z[:, 0])), 1 / (1 + np.exp(z[:, 0])))  # noqa: E731
        else:
            max_p = lambda z: (np.exp(z) / np.exp(z).sum(-1, keepdims=True)).max(-1)  # noqa: E731
        assert np.all(max_p(stepped) < max_p(logits))
        assert np.all(np_entropy(stepped) > np_entropy(logits))


@pytest.mark.parity
def test_hinge_has_no_gradient_above_threshold():
    logits = np.array([[0.1, 0.0, 0.0]], "float32")  # entropy ~ ln 3 > 0.5
    g = _grad(lambda z: ConfidencePenalty(beta=1.0, threshold=0.5)(None, z), logits)
    assert np.all(g == 0.0)


def test_run_loss_test():
    rng = np.random.default_rng(1)
    y_pred = rng.normal(size=(4, 3)).astype("float32")
    y_true = np.zeros((4, 1), "float32")
    expected = float(-0.1 * np_entropy(y_pred).mean())
    run_loss_test(ConfidencePenalty, {"beta": 0.1}, y_true, y_pred, expected=expected)
    run_loss_test(ConfidencePenalty, {"beta": 0.2, "threshold": 0.9}, y_true, y_pred[:, :1])


def test_errors():
    with pytest.raises(ValueError, match=r"ConfidencePenalty: Expected `beta` >= 0. Received: beta=-1"):
        ConfidencePenalty(beta=-1)
    with pytest.raises(ValueError, match=r"ConfidencePenalty.*`threshold`.*Received: threshold=-0.5"):
        ConfidencePenalty(threshold=-0.5)
    with pytest.raises(ValueError, match=r"confidence_penalty: Expected `beta` >= 0"):
        confidence_penalty(np.zeros((1, 2), "float32"), beta=-0.1)
