"""The explainer base class: one hook (``get_cam_weights``) per method."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_priors.explain import _compile, _graph
from keras_priors.explain._utils import (
    check_images,
    check_targets,
    normalize_maps,
    normalize_maps_tensor,
)
from keras_priors.explain.resize_cam import resize_cam


#: Docstring pieces every CAM explainer (and the faithfulness metrics' examples) share.
#: :func:`explainer_docstring` puts them in place of ``{model_args}``, ``{compile_args}`` and
#: ``{example_model}`` (as ``keras.applications`` fills its model docstrings), so each is written once and
#: every explainer's help still shows it in full.
DOC_PIECES = {
    "{model_args}": """model: a functional/Sequential Keras classifier.
        layer: None (last 4D layer), a name, an ``"outer/inner"`` path, or a Layer.
        output: which model output (index or name); None = "logits" or the first.
        use_logits: score the pre-softmax logit when the model ends with a softmax.""",
    "{compile_args}": """run_eagerly: run op by op instead of one compiled function (see :class:`BaseCAM`).
        jit_compile: TensorFlow only: compile with XLA.""",
    "{example_model}": """>>> import keras, numpy as np
        >>> model = keras.Sequential([
        ...     keras.Input((16, 16, 3)),
        ...     keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv3"),
        ...     keras.layers.GlobalAveragePooling2D(),
        ...     keras.layers.Dense(2),
        ... ])
        >>> images = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")""",
}


def explainer_docstring(obj):
    """Decorator of a class or function: fill the shared pieces (:data:`DOC_PIECES`) into its docstring."""
    doc = obj.__doc__ or ""
    for placeholder, text in DOC_PIECES.items():
        doc = doc.replace(placeholder, text)
    obj.__doc__ = doc
    return obj


class BaseCAM:
    """Base class of the CAM family: ``explainer(images, targets=None) -> maps``.

    A subclass changes only how channel weights are computed
    (:meth:`get_cam_weights`), or the whole pre-relu map (:meth:`get_cam_image`);
    the rest (finding the layer through nested models,
    feature maps, gradients on TF or JAX, ``relu(sum_k w_k A_k)``, bilinear
    upsampling to image size, per-image min-max normalisation) is shared, as in
    pytorch-grad-cam's ``BaseCAM``.

    Works on any functional or Sequential Keras 3 classifier, including one whose
    trunk is a nested model: the graph is re-executed with a hook at the target
    layer (see ``keras_priors/explain/_graph.py``), so there is no
    "Graph disconnected" error.

    By default the whole explanation (forward to the feature map and logits,
    gradients, channel weights, weighted sum, upsampling, normalisation) runs as
    one compiled function, built on the first call for each image size and
    cached on the explainer: ``tf.function`` on TensorFlow, ``jax.jit`` over the
    model's variables on JAX (see ``keras_priors/explain/_compile.py``).
    ``run_eagerly=True`` runs op by op with numpy post-processing (the reference
    the compiled path is tested against, to 1e-5).

    Compiled functions are shared between explainers of the same model, class,
    layer, output, ``use_logits``, ``jit_compile`` and :meth:`cache_config`:
    creating the explainer again (one per call, as the CLI does) does not
    trace or compile again. They are kept on the model and freed with it. A
    subclass shares only if it defines :meth:`cache_config` itself; otherwise
    each instance compiles its own.

    Args:
        model: a functional or Sequential Keras classifier.
        layer: the layer whose feature map is explained: None (the last layer
            with a 4D output, a nested backbone counts), a layer name, a
            ``"outer/inner"`` path into nested models, or a Layer.
        output: which model output gives the class scores (index or name); None
            picks an output named ``"logits"`` if any, else the first.
        use_logits: score the pre-softmax logit when the model ends with a
            softmax (default True, as in Grad-CAM).
    """

    #: Whether :meth:`get_cam_weights` needs gradients of the score w.r.t. the feature map.
    uses_gradients = False

    def __init__(
        self,
        model,
        layer=None,
        output=None,
        use_logits: bool = True,
        run_eagerly: bool = False,
        jit_compile: bool = False,
    ):
        self.model = model
        self.layer = layer
        self.output = output
        self.use_logits = use_logits
        self.run_eagerly = bool(run_eagerly)
        self.jit_compile = bool(jit_compile)
        self.path, self.target_layer, self.runner = self._build_runner()
        if self.uses_gradients:
            _graph.check_connected(model, self.path, self.runner.output_kt)
        self.num_classes = self.runner.num_classes
        self._compiled = _compile.shared_functions(model, self._cache_key())

    def _build_runner(self):
        """``(path, layer, runner)``: the explained layer and the :class:`~keras_priors.explain._graph.GraphRunner`
        that evaluates the model with a hook there (:class:`LCAM` takes its trainer's)."""
        probe = _graph.GraphRunner(self.model, [], output=self.output, linear_output=self.use_logits)
        path, layer = _graph.resolve_layer(self.model, self.layer, probe.output_kt)
        return path, layer, _graph.GraphRunner(self.model, path, output=self.output, linear_output=self.use_logits)

    def cache_config(self):
        """What else, besides the model, class, layer, output, ``use_logits`` and ``jit_compile``, changes the
        compiled functions: a hashable tuple, or None to compile per instance.

        Explainers with equal keys share compiled functions (see the class
        docstring). A subclass that adds arguments read inside
        :meth:`get_cam_weights` (or any compiled function) must return them here.
        """
        return None

    def _cache_key(self):
        if "cache_config" not in vars(type(self)):  # a subclass that did not say what it adds: compile per instance
            return None
        config = self.cache_config()
        if config is None:
            return None
        output = self.output if isinstance(self.output, (int, str, type(None))) else id(self.output)
        return (type(self), tuple(self.path), output, self.use_logits, self.jit_compile, config)

    # === Hook ===
    def get_cam_weights(self, images, targets, activations, grads):
        """Channel weights (B, K) from activations (B, h, w, K) and grads (or None).

        Written with ``keras.ops``: it runs on numpy arrays (eager path) and on
        symbolic tensors inside the compiled function. ``targets`` is (B,) int32.
        """
        raise NotImplementedError

    def get_cam_image(self, images, targets, activations, grads):
        """The map before the relu, (B, h, w): ``sum_k w_k A_k`` with the weights of :meth:`get_cam_weights`.

        The second hook, for methods whose map is not a weighted sum of the
        channels (LayerCAM and HiResCAM weigh every cell, EigenCAM projects on
        a principal component): they override this one instead. Written with
        ``keras.ops``, like :meth:`get_cam_weights`.
        """
        weights = ops.cast(self.get_cam_weights(images, targets, activations, grads), "float32")
        return ops.einsum("bhwk,bk->bhw", ops.cast(activations, "float32"), weights)

    # === Shared machinery ===
    def _check(self, images, targets):
        images = check_images(images, getattr(self.model, "input_shape", None))
        targets = check_targets(targets, images.shape[0], self.num_classes)
        return images, targets

    def __call__(self, images, targets=None) -> np.ndarray:
        """Maps (B, H, W) float32 in [0, 1] at image resolution.

        Args:
            images: (B, H, W, C) array.
            targets: None (the predicted class), an int, or one int per image.
        """
        images, targets = self._check(images, targets)
        if self.run_eagerly or not _compile.can_compile():
            with _compile.no_grad():
                raw = self.raw_maps(images, targets)
            return self.postprocess(raw, images.shape[1:3])
        return self.compiled_maps(images, targets)

    def postprocess(self, raw, size):
        return normalize_maps(resize_cam(raw, size))

    def raw_maps(self, images, targets) -> np.ndarray:
        """Low-resolution maps ``relu(sum_k w_k A_k)`` (B, h, w)."""
        if self.uses_gradients:
            acts, grads, targets = self.activations_and_grads(images, targets)
        else:
            acts, logits = self.runner.features_and_logits(ops.convert_to_tensor(images))
            acts = np.asarray(ops.convert_to_numpy(acts), np.float32)
            if targets is None:
                targets = np.argmax(ops.convert_to_numpy(logits), axis=-1).astype(np.int32)
            grads = None
        cam = self.get_cam_image(images, targets, acts, grads)
        return np.maximum(np.asarray(ops.convert_to_numpy(cam), np.float32), 0.0)

    # === Compiled path ===
    def compiled_function(self, name, size, build, signature=None):
        """The compiled function ``name`` for images of spatial ``size``, built once by ``build(size)``.

        ``signature`` (see :func:`keras_priors.explain._compile.compile_function`)
        leaves the batch dimension free, so one trace serves every batch size on TF.
        """
        key = (name, tuple(int(d) for d in size))
        fn = self._compiled.get(key)
        if fn is None:
            fn = _compile.compile_function(build(key[1]), self._variables(), self.jit_compile, signature)
            self._compiled[key] = fn
        return fn

    @staticmethod
    def images_signature(images):
        """``[(shape, dtype)]`` of an image batch with a free batch dimension."""
        return [((None,) + tuple(images.shape[1:]), "float32")]

    def _variables(self):
        return _compile.unique_variables(self.model)

    @staticmethod
    def _targets_tensor(targets, batch):
        """Targets as int32 with -1 for "the predicted class" (resolved inside the compiled function)."""
        t = np.full((batch,), -1, np.int32) if targets is None else np.asarray(targets, np.int32)
        return ops.convert_to_tensor(t, "int32")

    def compiled_maps(self, images, targets) -> np.ndarray:
        """Maps (B, H, W) in [0, 1] from one compiled call (see the class docstring)."""
        signature = self.images_signature(images) + [((None,), "int32")]
        fn = self.compiled_function("maps", images.shape[1:3], self._build_maps_fn, signature)
        maps = fn(ops.convert_to_tensor(images), self._targets_tensor(targets, len(images)))
        return np.asarray(ops.convert_to_numpy(maps), np.float32)

    def _build_maps_fn(self, size):
        def maps_fn(x, targets):
            acts, grads, targets = self.graph_activations(x, targets)
            return self.maps_tensor(self.get_cam_image(x, targets, acts, grads), size)

        return maps_fn

    @staticmethod
    def maps_tensor(cam, size):
        """Inside a compiled function: the maps ``(B, H, W)`` in [0, 1] from the maps before the relu ``(B, h, w)``
        (relu, upsampling to ``size``, per-image min-max), with ``keras.ops``: :meth:`postprocess`'s twin.

        >>> import keras, numpy as np
        >>> maps = BaseCAM.maps_tensor(np.array([[[-1.0, 0.0], [1.0, 3.0]]], "float32"), (2, 2))
        >>> np.round(keras.ops.convert_to_numpy(maps).astype("float64"), 3).tolist()
        [[[0.0, 0.0], [0.333, 1.0]]]
        """
        return normalize_maps_tensor(resize_cam(ops.relu(ops.cast(cam, "float32")), size))

    def graph_activations(self, x, targets):
        """Inside a compiled function: (A, dscore/dA or None, targets), A and grads float32.

        ``targets`` == -1 means the predicted class (argmax of the logits).
        """
        if not self.uses_gradients:
            feats, logits = self.runner.features_and_logits(x)
            return ops.cast(feats, "float32"), None, _resolve_targets(targets, logits)
        feats = self.runner.features(x)
        backend = keras.backend.backend()
        if backend == "tensorflow":
            import tensorflow as tf

            with tf.GradientTape() as tape:
                tape.watch(feats)
                logits = ops.cast(self.runner.logits_from_features(x, feats), "float32")
                targets = _resolve_targets(targets, logits)
                score = ops.sum(_graph.gather_scores(logits, targets))
            grads = tape.gradient(score, feats)
            if grads is None:
                raise self._no_gradient_error()
        else:  # jax (compile_function runs other backends eagerly, where __call__ never gets here)
            import jax

            logits, vjp = jax.vjp(lambda f: ops.cast(self.runner.logits_from_features(x, f), "float32"), feats)
            targets = _resolve_targets(targets, logits)
            (grads,) = vjp(ops.one_hot(targets, logits.shape[-1], dtype=logits.dtype))
        return ops.cast(feats, "float32"), ops.cast(grads, "float32"), targets

    def _no_gradient_error(self) -> ValueError:
        return ValueError(
            f"Expected a differentiable path from `layer` to the class score. Received: "
            f"layer={'/'.join(self.path)!r}: the score does not depend on it differentiably "
            "(gradient is None)."
        )

    def predict_targets(self, images) -> np.ndarray:
        logits = self.runner.logits(ops.convert_to_tensor(images))
        return np.argmax(ops.convert_to_numpy(logits), axis=-1).astype(np.int32)

    def activations_and_grads(self, images, targets):
        """Feature map A (B,h,w,K), d score_target / dA, and the targets used (numpy)."""
        x = ops.convert_to_tensor(images)
        feats = self.runner.features(x)
        if targets is None:
            logits = self.runner.logits_from_features(x, feats)
            targets = np.argmax(ops.convert_to_numpy(logits), axis=-1).astype(np.int32)
        backend = keras.backend.backend()
        if backend == "tensorflow":
            grads = self._grads_tf(x, feats, targets)
        elif backend == "jax":
            grads = self._grads_jax(x, feats, targets)
        elif backend == "torch":
            grads = self._grads_torch(x, feats, targets)
        else:
            raise NotImplementedError(
                f"{type(self).__name__} needs gradients: supported backends are 'tensorflow', 'jax' and 'torch'. "
                f"Received: keras backend {backend!r}."
            )
        return (
            np.asarray(ops.convert_to_numpy(feats), np.float32),
            np.asarray(grads, np.float32),
            targets,
        )

    def _score(self, x, feats, targets):
        logits = ops.cast(self.runner.logits_from_features(x, feats), "float32")
        return ops.sum(_graph.gather_scores(logits, targets))

    def _grads_tf(self, x, feats, targets):
        import tensorflow as tf

        with tf.GradientTape() as tape:
            tape.watch(feats)
            score = self._score(x, feats, targets)
        grads = tape.gradient(score, feats)
        if grads is None:
            raise self._no_gradient_error()
        return grads.numpy()

    def _grads_torch(self, x, feats, targets):
        import torch

        with torch.enable_grad():
            feats = feats.detach().requires_grad_(True)
            score = self._score(x, feats, targets)
            grads = None
            if score.requires_grad:
                (grads,) = torch.autograd.grad(score, feats, allow_unused=True)
        if grads is None:
            raise self._no_gradient_error()
        return grads.detach().cpu().numpy()

    def _grads_jax(self, x, feats, targets):
        import jax

        _, vjp = jax.vjp(lambda f: self._score(x, f, targets), feats)
        (grads,) = vjp(np.float32(1.0))
        grads = np.asarray(grads)
        if grads.dtype == jax.dtypes.float0:
            raise ValueError(
                f"Expected a differentiable path from `layer` to the class score. Received: "
                f"layer={'/'.join(self.path)!r} (gradient is not defined)."
            )
        return grads


def _resolve_targets(targets, logits):
    """Replace -1 entries of ``targets`` by the argmax of ``logits`` (keras.ops)."""
    predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
    return ops.where(targets < 0, predicted, targets)
