"""Backend-specific gradients for the MAXL step: TensorFlow tapes and JAX transforms.

Both helpers nest: called inside another ``value_and_grad``, the inner
gradient is itself differentiated (nested ``GradientTape`` on TensorFlow,
``jax.value_and_grad`` of a function calling ``jax.value_and_grad`` on JAX).
"""

from __future__ import annotations

import keras


def value_and_grad(fn):
    """``fn(params, *rest) -> (value, aux)`` to ``(value, aux), d value / d params``."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        return jax.value_and_grad(fn, has_aux=True)
    if backend == "tensorflow":
        import tensorflow as tf

        def wrapped(params, *rest):
            with tf.GradientTape() as tape:
                tape.watch(params)
                value, aux = fn(params, *rest)
            grads = tape.gradient(value, params, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return (value, aux), grads

        return wrapped
    raise NotImplementedError(
        f"MAXL: Expected the TensorFlow or JAX backend. Received: backend={backend!r}")


def vjp(fn, params):
    """``fn(params) -> (out, aux)`` to ``(out, aux, pullback)`` with ``pullback(v) = v^T d out / d params``."""
    backend = keras.backend.backend()
    if backend == "jax":
        import jax

        out, pull, aux = jax.vjp(fn, params, has_aux=True)
        return out, aux, lambda v: pull(v)[0]
    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(params)
            out, aux = fn(params)

        def pullback(v):
            return tape.gradient(out, params, output_gradients=v,
                                 unconnected_gradients=tf.UnconnectedGradients.ZERO)

        return out, aux, pullback
    raise NotImplementedError(
        f"MAXL: Expected the TensorFlow or JAX backend. Received: backend={backend!r}")
