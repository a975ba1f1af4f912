"""Fixtures for the layer tests: a backend-dispatching gradient helper."""

import keras
import numpy as np
import pytest


def _gradients(fn, *xs):
    """Gradients of the scalar ``fn(*xs)`` with respect to every ``x``, as numpy arrays."""
    xs = [np.asarray(x, "float32") for x in xs]
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        ts = [tf.constant(x) for x in xs]
        with tf.GradientTape() as tape:
            for t in ts:
                tape.watch(t)
            y = fn(*ts)
        return [np.asarray(g) for g in tape.gradient(y, ts)]
    if backend == "jax":
        import jax

        grads = jax.grad(fn, argnums=tuple(range(len(xs))))(*[jax.numpy.asarray(x) for x in xs])
        return [np.asarray(g) for g in grads]
    if backend == "torch":
        import torch

        ts = [torch.tensor(x, requires_grad=True) for x in xs]
        # allow_unused: an input the output does not depend on gets None, as TF's tape.gradient gives
        return [np.asarray(g) for g in torch.autograd.grad(fn(*ts), ts, allow_unused=True)]
    pytest.skip(f"no gradient helper for backend {backend}")


@pytest.fixture
def grad():
    return _gradients
