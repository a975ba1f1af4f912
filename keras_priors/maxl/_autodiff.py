"""Backend-specific gradients for the MAXL step: TensorFlow tapes, JAX transforms and torch autograd.

Both helpers nest: called inside another ``value_and_grad``, the inner
gradient is itself differentiated (nested ``GradientTape`` on TensorFlow,
``jax.value_and_grad`` of a function calling ``jax.value_and_grad`` on JAX,
``torch.autograd.grad(create_graph=True)`` on torch).
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
    if backend == "torch":
        def wrapped(params, *rest):
            import torch

            with torch.enable_grad():
                flat = _torch_leaves(params)
                value, aux = fn(keras.tree.pack_sequence_as(params, flat), *rest)
                grads = _torch_grad(value, flat)
            return (value, aux), keras.tree.pack_sequence_as(params, grads)

        return wrapped
    raise NotImplementedError(
        f"MAXL: Expected the TensorFlow, JAX or torch backend. Received: backend={backend!r}")


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
    if backend == "torch":
        import torch

        with torch.enable_grad():
            flat = _torch_leaves(params)
            out, aux = fn(keras.tree.pack_sequence_as(params, flat))

        def pullback(v):
            with torch.enable_grad():
                return keras.tree.pack_sequence_as(params, _torch_grad(out, flat, v))

        return out, aux, pullback
    raise NotImplementedError(
        f"MAXL: Expected the TensorFlow, JAX or torch backend. Received: backend={backend!r}")


def _torch_leaves(params):
    """The tensors of ``params``, each requiring grad (data tensors become new leaves)."""
    flat = [keras.ops.convert_to_tensor(p) for p in keras.tree.flatten(params)]
    return [p if p.requires_grad else p.detach().requires_grad_(True) for p in flat]


def _torch_grad(out, flat, cotangent=None):
    """``d out / d flat`` (times ``cotangent``), differentiable again; zeros where unconnected."""
    import torch

    grads = [None] * len(flat)
    if out.requires_grad:
        grads = torch.autograd.grad(out, flat, grad_outputs=cotangent, create_graph=True, retain_graph=True,
                                    allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for p, g in zip(flat, grads)]
