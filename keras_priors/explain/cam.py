"""CAM: class activation maps from a GlobalAveragePooling2D + Dense head, no gradients."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.explain import _graph
from keras_priors.layers import CAMHead
from keras_priors.explain.base_cam import BaseCAM, explainer_docstring

# Layers allowed between GlobalAveragePooling2D and the Dense head (they do not change the map).
_PASS_THROUGH = (keras.layers.Dropout, keras.layers.Flatten, keras.layers.Identity, keras.layers.Activation,
                 keras.layers.Softmax)


def _producer(kt):
    op, node_index, _ = kt._keras_history
    return op, op._inbound_nodes[node_index]


def find_cam_head(model, output=None):
    """Find ``(feature_layer_path, dense_layer)`` for a ``... -> GAP -> [Dropout] -> Dense`` head.

    A :class:`keras_priors.layers.CAMHead` (the zoo's head: ``GAP + Dense``
    written as a 1x1 projection then the mean) counts as such a head.

    Raises ``ValueError`` when the model has no such head.
    """
    fn = _graph._require_graph(model)
    runner = _graph.GraphRunner(model, [], output=output, linear_output=False)
    kt = runner.output_kt
    op, node = _producer(kt)
    while isinstance(op, _PASS_THROUGH):
        kt = node.arguments.keras_tensors[0]
        op, node = _producer(kt)
    if isinstance(op, CAMHead):
        return _graph.layer_path_of(fn, node.arguments.keras_tensors[0]), op
    if not isinstance(op, keras.layers.Dense):
        raise ValueError(
            "Expected `model` to end with a CAM head: GlobalAveragePooling2D -> (Dropout) -> Dense. "
            f"Received: model={model.name!r} whose output comes from {type(op).__name__} {op.name!r}. "
            "Use GradCAM for other heads."
        )
    dense = op
    kt = node.arguments.keras_tensors[0]
    op, node = _producer(kt)
    while isinstance(op, _PASS_THROUGH):
        kt = node.arguments.keras_tensors[0]
        op, node = _producer(kt)
    if not isinstance(op, keras.layers.GlobalAveragePooling2D) or getattr(op, "keepdims", False):
        raise ValueError(
            "Expected `model` to end with a CAM head: GlobalAveragePooling2D -> (Dropout) -> Dense. "
            f"Received: model={model.name!r} whose Dense {dense.name!r} is fed by {type(op).__name__} {op.name!r}."
        )
    feat_kt = node.arguments.keras_tensors[0]
    feat_op, _ = _producer(feat_kt)
    if feat_op not in fn.layers:
        raise ValueError(f"Could not locate the layer feeding {op.name!r} in model {model.name!r}.")
    return _graph.layer_path_of(fn, feat_kt), dense


@explainer_docstring
class CAM(BaseCAM):
    """Class activation map (Zhou et al. 2016): ``relu(sum_k W[k, c] A_k)``, no gradients.

    The feature layer and the Dense weights are found automatically from the
    model's ``GlobalAveragePooling2D -> (Dropout) -> Dense`` head or
    :class:`keras_priors.layers.CAMHead` (zoo models); a model without such a
    head is a clear error (use :class:`GradCAM`). The bias is left out (it
    only shifts the map, and min-max normalisation removes shifts before the relu
    in the usual CAM convention).

    Args:
        model: a functional/Sequential classifier ending in GAP + Dense.
        layer: must be None or the layer feeding the GAP (the head decides).
        output: which model output (index or name); None = "logits" or the first.
        use_logits: score the pre-softmax logit when the model ends with a softmax.
        run_eagerly: run op by op instead of one compiled function: the forward
            to (feature map, logits), the weighted sum and the upsampling
            otherwise run as one compiled call (see :class:`BaseCAM`).
        jit_compile: TensorFlow only: compile with XLA.

    Example:
        {example_model}
        >>> maps = CAM(model)(images)          # (B, H, W) in [0, 1], for the predicted classes
        >>> maps.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
        ((2, 16, 16), True, True)

    Reference:
        Zhou et al., "Learning Deep Features for Discriminative Localization", CVPR 2016.
    """

    def __init__(self, model, layer=None, output=None, use_logits: bool = True, run_eagerly: bool = False,
                 jit_compile: bool = False):
        path, dense = find_cam_head(model, output=output)
        if layer is not None:
            want, _ = _graph.resolve_layer(model, layer)
            if want != path:
                raise ValueError(
                    f"Expected `layer` to be None or the layer feeding the GAP head ({'/'.join(path)!r}). "
                    f"Received: layer={layer!r}"
                )
        super().__init__(model, layer="/".join(path), output=output, use_logits=use_logits,
                         run_eagerly=run_eagerly, jit_compile=jit_compile)
        self.layer = layer
        self.dense = dense

    def cache_config(self):
        """Nothing besides the model, layer and output changes the compiled functions."""
        return ()

    def get_cam_weights(self, images, targets, activations, grads):
        kernel = self.dense.kernel  # (K, classes)
        if kernel.shape[0] != activations.shape[-1]:
            raise ValueError(
                f"Expected the Dense kernel to have {activations.shape[-1]} input channels. "
                f"Received: kernel shape {tuple(kernel.shape)}."
            )
        kernel = ops.cast(kernel, "float32")
        return ops.transpose(ops.take(kernel, ops.convert_to_tensor(targets, "int32"), axis=1))
