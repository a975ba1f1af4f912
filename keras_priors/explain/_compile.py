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

Explainers of the same model share their compiled functions
(:func:`shared_functions`): a new ``GradCAM(model)`` for a model explained
before (as the CLI or a loop over calls does) reuses the functions compiled for
it instead of tracing and compiling again.
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


def no_grad():
    """A context in which eager ops record no gradient tape: ``torch.no_grad()`` on torch, nothing elsewhere.

    Explainers run eagerly on torch; their forward passes need no autograd
    graph (the gradient explainers re-enable it for the head alone, from a
    detached feature map), which costs time and memory.
    """
    if keras.backend.backend() == "torch":
        import torch

        return torch.no_grad()
    import contextlib

    return contextlib.nullcontext()


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


#: The attribute of a model that holds its explainers' compiled functions (see :func:`shared_functions`).
SHARED_ATTR = "_keras_priors_compiled_explainers"


def shared_functions(model, key) -> dict:
    """The dict of compiled functions shared by every explainer of ``model`` with configuration ``key``.

    ``key`` None gives a new, unshared dict. The dicts live on the model itself
    (an attribute set past Keras' attribute tracking, so it is not saved or
    exported): they go away with the model. A module-level
    ``WeakKeyDictionary`` would not let the model go, as its values (functions
    closing over an explainer, which holds the model) would keep the key alive.

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> a = shared_functions(model, ("GradCAM", "dense"))
        >>> a is shared_functions(model, ("GradCAM", "dense")), a is shared_functions(model, None)
        (True, False)
    """
    if key is None:
        return {}
    store = model.__dict__.get(SHARED_ATTR)
    if store is None:
        store = {}
        object.__setattr__(model, SHARED_ATTR, store)  # not tracked by Keras: never saved with the model
    return store.setdefault(key, {})


_FUSED: dict = {}


def fused(fn):
    """``fn`` as one XLA cluster on TensorFlow, ``fn`` itself on other backends.

    For small kernels of many cheap ops (EigenCAM's power iteration): in a
    ``tf.function`` graph without XLA each op is dispatched on its own, which
    costs more than the arithmetic. Called inside an explainer's compiled
    function, the result is a nested XLA function in its graph; called
    eagerly, it compiles on first use. On JAX the explainer is already one
    ``jax.jit``, and on torch ops run eagerly either way. One compiled
    function per ``fn``, traced again only for new shapes.
    """
    if keras.backend.backend() != "tensorflow":
        return fn
    if fn not in _FUSED:
        import tensorflow as tf

        _FUSED[fn] = tf.function(fn, jit_compile=True, reduce_retracing=True)
    return _FUSED[fn]
