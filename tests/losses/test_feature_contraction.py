import keras
import numpy as np
import pytest
from keras import ops

from harness import run_loss_test
from keras_priors.losses import FeatureContraction, feature_contraction


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


@pytest.mark.parity
def test_hand_computed_values_and_gradient():
    f = np.array([[1.0, 2.0], [3.0, 4.0]], "float32")
    # sum of squares per sample: 5 and 25 -> batch mean 15; mean of squares: 2.5, 12.5 -> 7.5
    np.testing.assert_allclose(_run(lambda x: FeatureContraction()(None, x), f), 15.0, atol=1e-5)
    np.testing.assert_allclose(_run(lambda x: FeatureContraction(weight=0.1)(None, x), f), 1.5, atol=1e-5)
    np.testing.assert_allclose(_run(lambda x: FeatureContraction(feature_reduction="mean")(None, x), f), 7.5, atol=1e-5)
    np.testing.assert_allclose(_run(lambda x: feature_contraction(x, weight=2.0), f), [10.0, 50.0], atol=1e-5)
    g = _grad(lambda x: FeatureContraction(weight=0.5)(None, x), f)
    np.testing.assert_allclose(g, 2 * 0.5 * f / 2, atol=1e-6)  # d/dx mean_b(w * sum x^2)


@pytest.mark.parity
def test_feature_maps_match_numpy():
    x = np.random.default_rng(0).normal(size=(3, 2, 2, 5)).astype("float32")
    got = _run(lambda f: FeatureContraction(weight=0.3, feature_reduction="mean", reduction=None)(None, f), x)
    np.testing.assert_allclose(got, 0.3 * (x.astype("float64") ** 2).mean(axis=(1, 2, 3)), atol=1e-5)


def test_run_loss_test():
    f = np.arange(12, dtype="float32").reshape(3, 4) / 10
    run_loss_test(FeatureContraction, {"weight": 0.5}, np.zeros((3, 1), "float32"), f,
                  expected=0.5 * float((f**2).sum(-1).mean()))


def test_errors():
    with pytest.raises(ValueError, match=r"FeatureContraction: Expected `weight` >= 0. Received: weight=-2"):
        FeatureContraction(weight=-2)
    with pytest.raises(ValueError, match=r"FeatureContraction.*`feature_reduction`.*Received: feature_reduction='max'"):
        FeatureContraction(feature_reduction="max")
