"""Walking a Keras 3 functional graph, through nested models, with a hook at one layer.

This is how every explainer gets "the feature map of layer L" and "the logits as a
function of that feature map" from ANY functional/Sequential classifier, including
one whose convolutional trunk is a nested ``keras.Model`` (a keras.applications
backbone used as a layer). tf-keras-vis / tf-explain build
``keras.Model(model.inputs, [inner_layer.output, model.output])``, which fails with
"Graph disconnected" when ``inner_layer`` lives inside a nested model, because its
output tensor belongs to the nested model's graph, not the outer one.

We never build a new ``keras.Model``. Instead :class:`GraphRunner` re-executes the
existing graph node by node, lazily from the requested output backwards (so a
tail evaluation from a substituted feature map does not run the trunk again), and
descends into nested models along a layer path such as ``"backbone/conv5"``:

* ``features(images)`` evaluates only what the target layer needs;
* ``logits_from_features(images, features)`` evaluates the classifier with the
  target layer's output replaced by ``features``: a plain function of the feature
  map, which TF differentiates with ``tf.GradientTape`` and JAX with ``jax.vjp``.

Everything here uses ``keras.ops`` only.
"""

from __future__ import annotations

import collections

import keras
from keras import ops

from keras_priors._functional import functional_graph

_SOFTMAX_NAMES = ("softmax",)


def is_graph_model(op) -> bool:
    """True for a Functional or (built) Sequential model, i.e. something we can walk into."""
    try:
        return functional_graph(op) is not None
    except ValueError:
        return False


def _require_graph(model, argname="model"):
    fn = functional_graph(model)
    if fn is None:
        raise ValueError(
            f"Expected `{argname}` to be a functional or Sequential Keras model (its graph is walked to "
            f"reach inner layers). Received: {argname}={type(model).__name__} {getattr(model, 'name', '')!r}, "
            "a subclassed model. Wrap its layers in a functional model, or build a functional classifier "
            "that calls it and pass the name of a 4D layer."
        )
    return fn


def _is_softmax(activation) -> bool:
    name = getattr(activation, "__name__", None) or getattr(activation, "name", "") or ""
    return name in _SOFTMAX_NAMES


def _output_shape(layer):
    try:
        out = layer.output
    except (AttributeError, ValueError):
        return None
    shapes = [tuple(t.shape) for t in keras.tree.flatten(out)]
    return shapes[0] if len(shapes) == 1 else None


def spatial_layers(model, prefix=""):
    """All ``(path, layer)`` with a single 4D output, in graph order, descending into nested models."""
    found = []
    fn = functional_graph(model)
    if fn is None:
        return found
    for layer in fn.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        path = f"{prefix}{layer.name}"
        if is_graph_model(layer):
            found.extend(spatial_layers(layer, prefix=path + "/"))
        shape = _output_shape(layer)
        if shape is not None and len(shape) == 4:
            found.append((path, layer))
    return found


def resolve_layer(model, layer=None, output_kt=None):
    """Resolve ``layer`` (None, a name, a "outer/inner" path, or a Layer) to ``(path list, layer)``.

    ``None`` with ``output_kt`` picks the 4D tensor nearest to that output
    (walking the graph back from it, breadth first), i.e. the feature map
    the head reads; when a nested model with several outputs (a backbone
    exposing P1..P5) produces it, the path goes into that model, to the layer
    producing that output. ``None`` without ``output_kt`` picks the last layer
    with a 4D output at the top level of ``model``.
    """
    fn = _require_graph(model)
    if layer is None and output_kt is not None:
        kt = nearest_spatial_tensor(output_kt)
        if kt is not None:
            path = layer_path_of(fn, kt)
            return path, layer_at(model, path)
    if layer is None:
        feeding = _graph_ancestors(fn, [output_kt]) if output_kt is not None else None
        for candidate in reversed(fn.layers):
            if isinstance(candidate, keras.layers.InputLayer):
                continue
            if feeding is not None and id(candidate) not in feeding:
                continue
            shape = _output_shape(candidate)
            if shape is not None and len(shape) == 4:
                return [candidate.name], candidate
        raise ValueError(
            f"Expected `model` to have a layer with a 4D (batch, height, width, channels) output to explain. "
            f"Received: model={model.name!r} with no such layer."
        )
    if isinstance(layer, keras.layers.Layer):
        layer = layer.name
    if not isinstance(layer, str):
        raise ValueError(f"Expected `layer` to be None, a layer name or a 'nested/path'. Received: layer={layer!r}")
    parts = layer.split("/")
    current = model
    for i, part in enumerate(parts):
        cur_fn = functional_graph(current) if is_graph_model(current) else None
        names = [l.name for l in cur_fn.layers] if cur_fn is not None else []
        if part not in names:
            where = "/".join(parts[:i]) or model.name
            raise ValueError(
                f"Expected `layer` to name a layer of the model. Received: layer={layer!r}; "
                f"{part!r} is not a layer of {where!r}. Layers with a 4D output: "
                f"{[p for p, _ in spatial_layers(model)]}"
            )
        current = cur_fn.get_layer(part)
        if i < len(parts) - 1 and not is_graph_model(current):
            raise ValueError(
                f"Expected `layer` path to go through nested models. Received: layer={layer!r}; "
                f"{part!r} is a {type(current).__name__}, not a functional model."
            )
    shape = _output_shape(current)
    if shape is None or len(shape) != 4:
        raise ValueError(
            f"Expected `layer` to have a 4D (batch, height, width, channels) output. "
            f"Received: layer={layer!r} with output shape {shape}. Layers with a 4D output: "
            f"{[p for p, _ in spatial_layers(model)]}"
        )
    return parts, current


def _walk_back(output_kts):
    """``(keras tensor, producing operation)`` for every tensor ``output_kts`` depend on, each once,
    breadth first from ``output_kts`` (nearest first)."""
    seen, queue = set(), collections.deque(output_kts)
    while queue:
        kt = queue.popleft()
        if id(kt) in seen:
            continue
        seen.add(id(kt))
        history = getattr(kt, "_keras_history", None)
        if history is None:
            continue
        op, node_index, _ = history
        yield kt, op
        queue.extend(op._inbound_nodes[node_index].arguments.keras_tensors)


def nearest_spatial_tensor(output_kt):
    """The 4D keras tensor nearest to ``output_kt`` walking the graph back (breadth first), or None."""
    for kt, op in _walk_back([output_kt]):
        if not isinstance(op, keras.layers.InputLayer) and kt.shape is not None and len(kt.shape) == 4:
            return kt
    return None


def _is_multi_output_model(op) -> bool:
    return is_graph_model(op) and len(functional_graph(op).outputs) > 1


def layer_path_of(fn, kt) -> list:
    """Layer names from graph ``fn`` to the layer producing ``kt``.

    A tensor produced by a nested model with several outputs is followed into
    that model (the hook must sit on one tensor, not on a dict of feature maps).
    """
    op, node_index, tensor_index = kt._keras_history
    if not _is_multi_output_model(op):
        return [op.name]
    inner = functional_graph(op)
    node = op._inbound_nodes[node_index]
    position = [id(t) for t in node.outputs].index(id(kt))
    return [op.name] + layer_path_of(inner, list(inner.outputs)[position])


def layer_at(model, path):
    """The layer at ``path`` (list of names through nested models)."""
    current = model
    for part in path:
        current = functional_graph(current).get_layer(part)
    return current


def _graph_ancestors(fn, output_kts):
    """Operations (by id) on which ``output_kts`` depend in the graph ``fn``."""
    return {id(op) for _, op in _walk_back(output_kts)}


def check_connected(model, path, output_kt):
    """Raise if the layer at ``path`` is not on the graph path to ``output_kt``."""
    fn = _require_graph(model)
    current_fn, outs = fn, [output_kt]
    for i, part in enumerate(path):
        op = current_fn.get_layer(part)
        if id(op) not in _graph_ancestors(current_fn, outs):
            raise ValueError(
                f"Expected a differentiable path from `layer` to the model output. Received: "
                f"layer={'/'.join(path)!r}, which does not feed the output {output_kt._keras_history[0].name!r} "
                "(it is not one of its ancestors in the graph)."
            )
        if i < len(path) - 1:
            current_fn = functional_graph(op)
            outs = list(current_fn.outputs)


def _pick_output(model, outputs, output):
    """The score output among ``outputs``: ``output`` (index or name), else the one named "logits", else the first."""
    names = [kt._keras_history[0].name for kt in outputs]
    if output is None:
        return outputs[names.index("logits")] if "logits" in names else outputs[0]
    if isinstance(output, int) and not isinstance(output, bool):
        if not 0 <= output < len(outputs):
            raise ValueError(
                f"Expected `output` in [0, {len(outputs)}). Received: output={output}"
            )
        return outputs[output]
    output_names = list(getattr(model, "output_names", None) or names)
    if output in output_names:
        return outputs[output_names.index(output)]
    if output in names:
        return outputs[names.index(output)]
    raise ValueError(f"Expected `output` to be one of {output_names}. Received: output={output!r}")


def softmax_kind(output_kt):
    """How a graph tensor comes out of a softmax.

    Returns ``"layer"`` for the output of a ``Softmax`` or ``Activation("softmax")``
    layer, ``"activation"`` for a layer built with ``activation="softmax"``
    (e.g. ``Dense(10, activation="softmax")``), else None.
    """
    op = output_kt._keras_history[0]
    if isinstance(op, keras.layers.Softmax) or (isinstance(op, keras.layers.Activation) and _is_softmax(op.activation)):
        return "layer"
    if _is_softmax(getattr(op, "activation", None)):
        return "activation"
    return None


def ends_in_softmax(model, output=None) -> bool:
    """True if ``model``'s score output (picked as the explainers pick it) comes out of a softmax.

    The one place explainers and metrics decide whether a model outputs
    probabilities. False for a model whose graph cannot be walked (a
    subclassed model): its output is taken to be logits.
    """
    try:
        fn = functional_graph(model)
    except ValueError:
        return False
    if fn is None:
        return False
    return softmax_kind(_pick_output(model, list(fn.outputs), output)) is not None


class GraphRunner:
    """Evaluate ``model`` lazily with a hook at the layer ``path`` (see module docstring).

    Args:
        model: a functional or Sequential Keras classifier.
        path: list of layer names from the top model to the target layer.
        output: which model output is the score (int index or output name);
            None picks the output named ``"logits"`` if any, else the first.
        linear_output: if the chosen output comes out of a softmax (a
            ``Softmax``/``Activation("softmax")`` layer or a layer with
            ``activation="softmax"``), evaluate the pre-softmax logits instead.
    """

    def __init__(self, model, path, output=None, linear_output=True):
        self.model = model
        self.fn = _require_graph(model)
        self.path = list(path)
        outputs = list(self.fn.outputs)
        self.output_kt = self._pick_output(outputs, output)
        self._linearize = None
        if linear_output:
            op = self.output_kt._keras_history[0]
            kind = softmax_kind(self.output_kt)
            if kind == "layer":
                node = op._inbound_nodes[self.output_kt._keras_history[1]]
                self.output_kt = node.arguments.keras_tensors[0]
            elif kind == "activation":
                self._linearize = op

    def _pick_output(self, outputs, output):
        return _pick_output(self.model, outputs, output)

    @property
    def num_classes(self) -> int:
        return int(self.output_kt.shape[-1])

    # === Evaluation ===
    def _run(self, fn, input_thunks, outputs, path, target_fn, linearize):
        """Evaluate ``outputs`` of graph ``fn`` lazily. ``target_fn(thunk)`` replaces the target layer."""
        value = self._evaluator(fn, input_thunks, path, target_fn, linearize)
        return [value(kt) for kt in outputs]

    def _evaluator(self, fn, input_thunks, path, target_fn, linearize):
        """``value(kt)``: graph tensor ``kt`` of ``fn``, computing only what it needs, each node once.

        A nested model on the path is evaluated the same way, output by output:
        asking for one of its outputs does not compute the others (a backbone's
        other pyramid levels, upstream of the target layer, stay uncomputed
        when only the head's input is asked for).
        """
        cache = {}
        inputs = {id(kt): thunk for kt, thunk in zip(fn.inputs, input_thunks)}
        nested = {}  # id(node) -> (sub-graph, its evaluator), for a model on the path

        def value(kt):
            key = id(kt)
            if key in cache:
                return cache[key]
            if key in inputs:
                cache[key] = inputs[key]()
                return cache[key]
            op, node_index, _ = kt._keras_history
            node = op._inbound_nodes[node_index]
            on_path = path and op.name == path[0] and op in fn.layers

            if on_path and len(path) > 1:
                if id(node) not in nested:
                    sub_fn = functional_graph(op)
                    thunks = [(lambda t=t: value(t)) for t in node.arguments.keras_tensors]
                    nested[id(node)] = sub_fn, self._evaluator(sub_fn, thunks, path[1:], target_fn, None)
                sub_fn, sub_value = nested[id(node)]
                index = next(i for i, t in enumerate(node.outputs) if t is kt)
                cache[key] = sub_value(list(sub_fn.outputs)[index])
                return cache[key]

            def compute():
                kwargs_extra = {}
                if getattr(op, "_call_has_training_arg", False):
                    kwargs_extra["training"] = False
                for t in node.arguments.keras_tensors:
                    value(t)
                args, kwargs = node.arguments.fill_in(cache)
                kwargs = {**kwargs, **kwargs_extra}
                if linearize is not None and op is linearize:
                    saved = op.activation
                    op.activation = keras.activations.linear
                    try:
                        return op(*args, **kwargs)
                    finally:
                        op.activation = saved
                return op(*args, **kwargs)

            if on_path and len(path) == 1:
                result = target_fn(compute)
            else:
                result = compute()
            for t, r in zip(node.outputs, keras.tree.flatten(result)):
                cache[id(t)] = r
            return cache[key]

        return value

    def features(self, images):
        """The target layer's output for ``images`` (evaluates only what it needs)."""
        fn, thunks = self.fn, [lambda: images]
        for i, part in enumerate(self.path):
            op = fn.get_layer(part)
            if i == len(self.path) - 1:
                node = self._node_in(fn, op)
                return self._run(fn, thunks, [node.outputs[0]], [], None, None)[0]
            node = self._node_in(fn, op)
            args = node.arguments.keras_tensors
            vals = self._run(fn, thunks, args, [], None, None)
            fn = functional_graph(op)
            thunks = [(lambda v=v: v) for v in vals]
        raise AssertionError("empty path")

    @staticmethod
    def _node_in(fn, op):
        """The node of ``op`` that belongs to graph ``fn``."""
        node_ids = {id(n) for nodes in fn._nodes_by_depth.values() for n in nodes}
        for node in op._inbound_nodes:
            if id(node) in node_ids:
                return node
        return op._inbound_nodes[0]

    def logits_from_features(self, images, features):
        """The score output with the target layer's output replaced by ``features``."""
        return self._run(
            self.fn, [lambda: images], [self.output_kt], self.path, lambda _thunk: features, self._linearize
        )[0]

    def logits(self, images, transform=None):
        """The score output; ``transform(features)`` (if given) is applied at the target layer."""
        target_fn = (lambda thunk: thunk()) if transform is None else (lambda thunk: transform(thunk()))
        return self._run(self.fn, [lambda: images], [self.output_kt], self.path, target_fn, self._linearize)[0]

    def features_and_logits(self, images):
        box = {}

        def record(thunk):
            box["f"] = thunk()
            return box["f"]

        logits = self._run(self.fn, [lambda: images], [self.output_kt], self.path, record, self._linearize)[0]
        return box.get("f"), logits


def gather_scores(logits, targets):
    """``logits[b, targets[b]]`` with keras.ops."""
    targets = ops.convert_to_tensor(targets, "int32")
    return ops.squeeze(ops.take_along_axis(logits, ops.expand_dims(targets, -1), axis=-1), -1)
