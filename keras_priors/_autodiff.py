"""One forward pass that also returns gradients of scores, differentiable again (double backprop).

Explanation priors (input-gradient and Grad-CAM penalties) need, inside the
train step, the gradient of a score (a sum of log-probabilities or logits)
with respect to the input image or to a feature map, as a tensor the outer
gradient can differentiate through. ``forward_with_gradients`` runs the
network once and returns its outputs plus those gradients:

- TensorFlow: a nested ``tf.GradientTape`` around the forward pass. Called
  inside Keras' train-step tape, the inner ``tape.gradient`` is recorded by
  the outer tape, so the loss on the gradient is differentiated again.
- JAX: ``jax.vjp`` of a function that runs ``network.stateless_call`` with
  the current variable values (``v.value``: the traced ones inside Keras'
  ``StatelessScope``) and returns the non-trainable updates (BatchNorm
  statistics, seed states) as auxiliary outputs, which are then assigned back,
  so no tracer leaks out of the inner transform.
- PyTorch: ``torch.autograd.grad(..., create_graph=True)`` over an eager
  forward pass run under ``torch.enable_grad()`` (Keras evaluates under
  ``torch.no_grad()``); the returned gradients stay in the autograd graph,
  so the train step's ``loss.backward()`` differentiates through them.

The gradient with respect to a feature map (an intermediate tensor, possibly
inside a nested backbone model) uses a *probe*: a zero tensor of the feature
map's shape is added to the output of the layer that produces it, for the
duration of this forward pass only; ``d score / d probe`` is exactly
``d score / d feature map``, on every backend, also with a frozen backbone.
"""

from __future__ import annotations

import contextlib
import dataclasses

import keras
from keras import ops


@dataclasses.dataclass(frozen=True)
class Source:
    """What a gradient is taken with respect to.

    Attributes:
        input_key: a network input (``"image"``), or None for a feature map.
        layer: the layer whose (single) output is the feature map.
        shape: the feature map's static shape without the batch dimension.
        dtype: the feature map's dtype.
    """

    input_key: str | None = None
    layer: object = None
    shape: tuple = ()
    dtype: str = "float32"

    @property
    def id(self):
        return self.input_key if self.input_key is not None else id(self.layer)


def producing_layer(tensor, owner: str = "gradient source"):
    """The innermost layer whose only output is the symbolic ``tensor``.

    Follows outputs of nested functional models (a zoo backbone) down to the
    layer that computes the tensor. Raises when that layer is called more than
    once (a probe on it would change every call) or has several outputs.
    """
    history = getattr(tensor, "_keras_history", None)
    if history is None:
        raise ValueError(f"{owner}: Expected a symbolic tensor of the network. Received: {tensor!r}")
    op, index = history.operation, history.tensor_index
    while isinstance(op, keras.Model) and hasattr(op, "_run_through_graph"):
        inner = keras.tree.flatten(op.output)[index]
        op, index = inner._keras_history.operation, inner._keras_history.tensor_index
    outputs = keras.tree.flatten(op.output) if len(op._inbound_nodes) == 1 else None
    if outputs is None or len(outputs) != 1:
        raise ValueError(
            f"{owner}: Expected the feature map to be the only output of a layer called once, so a "
            f"gradient probe can be added to it. Received: layer {op.name!r} with "
            f"{len(op._inbound_nodes)} call(s) and {len(outputs or [])} output(s)"
        )
    shape = tuple(outputs[0].shape[1:])
    if any(d is None for d in shape):
        raise ValueError(f"{owner}: Expected a feature map with a static shape. Received: shape={(None,) + shape}")
    return op, shape, outputs[0].dtype


@contextlib.contextmanager
def _probed(probes: dict, captured: dict):
    """Add ``probes[id(layer)] = (layer, probe)`` to each layer's output; record the sums in ``captured``."""
    patched = []
    try:
        for key, (layer, probe) in probes.items():
            original = layer.call

            def call(*args, _original=original, _probe=probe, _key=key, **kwargs):
                out = _original(*args, **kwargs)
                out = out + ops.cast(_probe, out.dtype)
                captured[_key] = out
                return out

            had_own = "call" in layer.__dict__
            layer.call = call
            patched.append((layer, original, had_own))
        yield
    finally:
        for layer, original, had_own in reversed(patched):
            if had_own:
                layer.call = original
            else:
                del layer.call


def _check_probed(probes: dict, captured: dict):
    """Raise if a probed layer did not run its ``call`` (e.g. a quantized layer): its gradient would be 0."""
    missing = [probes[k][0].name for k in probes if k not in captured]
    if missing:
        raise RuntimeError(
            f"Gradient priors: Expected the layer(s) {missing} to run their `call` in the forward pass so the "
            f"gradient probe reaches the feature map. Received a forward pass that bypassed it (quantized or "
            f"rematerialized layers are not supported at a gradient level)."
        )


def forward_with_gradients(network, inputs: dict, training, sources: list, scores: list):
    """Run ``network`` once; return its outputs, the gradients and the probed feature maps.

    Args:
        network: a Keras model taking the dict ``inputs``.
        inputs: the network's inputs by key.
        training: passed to the network.
        sources: ``Source`` objects (deduplicated by the caller).
        scores: ``(source_index, fn)`` pairs; ``fn(outputs)`` is a scalar.

    Returns:
        ``(outputs, gradients, features)``: the network outputs, one gradient
        per score (shaped like its source), and ``{source_index: feature map}``
        for the feature-map sources.
    """
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(network, inputs, training, sources, scores)
    if backend == "jax":
        return _jax(network, inputs, training, sources, scores)
    if backend == "torch":
        return _torch(network, inputs, training, sources, scores)
    raise NotImplementedError(
        f"Gradient priors: Expected the TensorFlow, JAX or torch backend. Received: backend={backend!r}")


def _batch_size(inputs):
    return ops.shape(next(iter(inputs.values())))[0]


def _tensorflow(network, inputs, training, sources, scores):
    import tensorflow as tf

    inputs = dict(inputs)
    batch = _batch_size(inputs)
    captured = {}
    with tf.GradientTape(persistent=len(scores) > 1, watch_accessed_variables=False) as tape:
        wrt, probes = [], {}
        for i, s in enumerate(sources):
            if s.input_key is not None:
                x = tf.convert_to_tensor(inputs[s.input_key])
                inputs[s.input_key] = x
            else:
                x = tf.zeros(tf.concat([[batch], list(s.shape)], axis=0), dtype=s.dtype)
                probes[i] = (s.layer, x)
            tape.watch(x)
            wrt.append(x)
        with _probed(probes, captured):
            outputs = network(inputs, training=training)
        _check_probed(probes, captured)
        values = [fn(outputs) for _, fn in scores]
    gradients = [tape.gradient(v, wrt[i], unconnected_gradients=tf.UnconnectedGradients.ZERO)
                 for v, (i, _) in zip(values, scores)]
    del tape
    return outputs, gradients, captured


def _jax(network, inputs, training, sources, scores):
    import jax
    import jax.numpy as jnp

    trainable = [v.value for v in network.trainable_variables]
    non_trainable = [v.value for v in network.non_trainable_variables]
    batch = _batch_size(inputs)
    primals = []
    for s in sources:
        if s.input_key is not None:
            primals.append(jnp.asarray(inputs[s.input_key]))
        else:
            primals.append(jnp.zeros((batch,) + tuple(s.shape), dtype=s.dtype))

    def forward(primals):
        feed = dict(inputs)
        probes = {}
        for i, (s, p) in enumerate(zip(sources, primals)):
            if s.input_key is not None:
                feed[s.input_key] = p
            else:
                probes[i] = (s.layer, p)
        captured = {}
        with _probed(probes, captured):
            outputs, new_non_trainable = network.stateless_call(trainable, non_trainable, feed, training=training)
        _check_probed(probes, captured)
        values = tuple(fn(outputs) for _, fn in scores)
        return values, (outputs, new_non_trainable, captured)

    values, pullback, (outputs, new_non_trainable, captured) = jax.vjp(forward, primals, has_aux=True)
    gradients = []
    for k, (i, _) in enumerate(scores):
        cotangent = tuple(jnp.ones_like(v) if j == k else jnp.zeros_like(v) for j, v in enumerate(values))
        gradients.append(pullback(cotangent)[0][i])
    for variable, value in zip(network.non_trainable_variables, new_non_trainable):
        variable.assign(value)
    return outputs, gradients, captured


def _torch(network, inputs, training, sources, scores):
    import torch

    inputs = dict(inputs)
    batch = _batch_size(inputs)
    captured = {}
    with torch.enable_grad():
        wrt, probes = [], {}
        for i, s in enumerate(sources):
            if s.input_key is not None:
                x = ops.convert_to_tensor(inputs[s.input_key])
                if not x.requires_grad:  # data, not a result of the graph: a leaf to differentiate against
                    x = x.detach().requires_grad_(True)
                inputs[s.input_key] = x
            else:
                x = ops.zeros((batch,) + tuple(s.shape), dtype=s.dtype).requires_grad_(True)
                probes[i] = (s.layer, x)
            wrt.append(x)
        with _probed(probes, captured):
            outputs = network(inputs, training=training)
        _check_probed(probes, captured)
        values = [fn(outputs) for _, fn in scores]
        gradients = []
        for v, (i, _) in zip(values, scores):
            g = None
            if v.requires_grad:  # a score that does not depend on anything differentiable has gradient 0
                (g,) = torch.autograd.grad(v, wrt[i], create_graph=True, retain_graph=True, allow_unused=True)
            gradients.append(torch.zeros_like(wrt[i]) if g is None else g)
    return outputs, gradients, captured
