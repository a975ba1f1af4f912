"""Compiling explainer functions once per explainer: ``tf.function`` on TensorFlow, ``jax.jit`` on JAX.

An explainer's work (feature map and logits, gradients, channel weights, the
weighted sum, upsampling, normalisation) is a function of tensors written with
``keras.ops`` around :class:`keras_priors.explain._graph.GraphRunner`. Run
eagerly, every layer call dispatches on its own; compiled, it is one graph.

* TensorFlow: ``tf.function(fn, reduce_retracing=True)`` (optionally
  ``jit_compile=True`` for XLA). Variables are captured by reference, so a
  later weight change (fine-tuning, L-CAM training) is seen by the next call.
* JAX: ``jax.jit`` of a pure function that takes the variables' values as its
  first argument and evaluates ``fn`` inside a ``keras.StatelessScope`` mapping
  each variable to its value (what ``Model.stateless_call`` does). Values are
  read at every call, so weight changes are seen too, without retracing.
* Other backends: the function runs eagerly.
"""

from __future__ import annotations

import keras


def unique_variables(*objects) -> list:
    """The variables of ``objects`` (models or layers), each once, in order."""
    seen, out = set(), []
    for obj in objects:
        for v in obj.variables:
            if id(v) not in seen:
                seen.add(id(v))
                out.append(v)
    return out


def can_compile() -> bool:
    return keras.backend.backend() in ("tensorflow", "jax")


def compile_function(fn, variables, jit_compile: bool = False, signature=None):
    """A compiled version of ``fn(*tensors) -> nest of tensors`` that reads ``variables``.

    Args:
        fn: a Python function of tensors, written with keras.ops / Keras layers.
        variables: every Keras variable ``fn`` reads (used on JAX, where they are
            passed to the jitted function as arguments).
        jit_compile: TensorFlow only: compile with XLA (JAX always uses XLA).
        signature: optional ``[(shape, dtype), ...]``, one per argument, ``None``
            for dimensions that vary (the batch): TensorFlow then traces once
            for every batch size. JAX compiles once per concrete shape.

    Returns:
        A callable with the signature of ``fn``.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        specs = None if signature is None else [tf.TensorSpec(shape, dtype) for shape, dtype in signature]
        return tf.function(fn, input_signature=specs, reduce_retracing=specs is None, jit_compile=bool(jit_compile))
    if backend == "jax":
        import jax

        variables = list(variables)

        def pure(values, *args):
            with keras.StatelessScope(state_mapping=list(zip(variables, values))):
                return fn(*args)

        jitted = jax.jit(pure)

        def call(*args):
            return jitted([v.value for v in variables], *args)

        return call
    return fn
