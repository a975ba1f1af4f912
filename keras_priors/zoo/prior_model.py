"""``PriorModel``: a classifier network plus the priors that shape its training."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export


def classification_loss(labels, logits, num_classes: int):
    """Mean cross-entropy of integer ``labels`` against ``logits`` (float32)."""
    logits = ops.cast(logits, "float32")
    if num_classes == 1:
        labels = ops.reshape(ops.cast(labels, "float32"), (-1, 1))
        return ops.mean(keras.losses.binary_crossentropy(labels, logits, from_logits=True))
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def predicted_class(logits, num_classes: int):
    """Integer class predictions from logits (single logit: ``logit > 0``)."""
    if num_classes == 1:
        return ops.cast(ops.reshape(logits, (-1,)) > 0, "int32")
    return ops.cast(ops.argmax(logits, axis=-1), "int32")


def _scale_for_replicas(loss):
    """Divide by the replica count under ``tf.distribute``, the Keras convention for ``compute_loss``.

    Gradients are summed over replicas, and Keras' trainer multiplies the
    logged loss back; Keras' own ``Loss`` objects do the same division.
    """
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / float(replicas)
    return loss


@keras_priors_export("keras_priors.zoo.PriorModel")
class PriorModel(keras.Model):
    """A classifier whose training adds the loss terms of its priors.

    ``keras_priors.zoo.build`` returns one. It wraps a functional ``network``
    with named outputs (``logits`` and ``cam`` always, plus what the priors
    add) and trains with plain ``fit`` on batches that are dicts with the data
    keys (``image``, ``label``, ``object_mask``, ...): the total loss is the
    classification loss plus each prior's weighted terms, and each term is
    logged as its own scalar (``<term>_loss``) next to ``accuracy``.

    Before the first step, ``fit``/``evaluate`` check that the data has every
    key a prior needs and that images match the model's input shape.

    Args:
        network: a functional model taking a dict of inputs (``image``, and
            ``part_box`` for a dual-input prior) to a dict of outputs.
        priors: the ``keras_priors.priors`` objects used to build it.
        num_classes: number of primary classes (1 = single-logit binary head).
        training_only: output names that export drops (mask decoder,
            auxiliary heads, ...).
    """

    def __init__(self, network, priors=(), num_classes: int = 2, training_only=(), **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.priors = list(priors)
        self.num_classes = int(num_classes)
        self.training_only = tuple(training_only)
        self.input_keys = tuple(network.input.keys()) if isinstance(network.input, dict) else ("image",)
        # Data-level priors draw their randomness from one generator the model owns, so its state is a
        # model variable and advances each step on every backend (inside jax.jit too).
        self._transforming = [p for p in self.priors if p.transforms_batch]
        if self._transforming:
            self.batch_seed_generator = keras.random.SeedGenerator(0, name="batch_seed_generator")
        # === Metrics ===
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")
        self.classification_tracker = keras.metrics.Mean(name="classification_loss")
        self.term_trackers = {}
        for prior in self.priors:
            for term in prior.term_names():
                self.term_trackers[term] = keras.metrics.Mean(name=f"{term}_loss")
        self.prior_metrics = {}
        for prior in self.priors:
            for metric_name in prior.metric_names():
                self.prior_metrics[metric_name] = keras.metrics.Mean(name=metric_name)
        # torch.compile cannot differentiate twice ("aot_autograd does not currently support double
        # backward"), and gradient priors train on a gradient: on torch, Keras then warns at
        # `compile(jit_compile=True)` and trains eagerly.
        if keras.backend.backend() == "torch" and self._gradient_requests:
            self.supports_jit = False
        # Its weights are the network's, built when the network was: saving a model never called is complete
        # (Keras warns "has not yet been built" otherwise), and so is an export from it.
        self.built = bool(network.built)

    # === Forward ===
    def call(self, inputs, training=None):
        requests = []
        if isinstance(inputs, dict):
            if training and self._transforming:
                for prior in self._transforming:
                    if all(k in inputs for k in prior.required_keys):
                        inputs = prior.transform_batch(dict(inputs), self.batch_seed_generator)
            requests = [r for r in self._gradient_requests if all(k in inputs for k in r.keys)]
            batch = inputs
            inputs = {k: inputs[k] for k in self.input_keys}
        elif len(self.input_keys) == 1:
            inputs = {self.input_keys[0]: inputs}
        if not requests:
            return self.network(inputs, training=training)
        return self._call_with_gradients(inputs, batch, requests, training)

    def _call_with_gradients(self, inputs, batch, requests, training):
        """One forward pass that also adds the gradients the priors asked for to the outputs."""
        from keras_priors import _autodiff

        sources, index, scores = [], {}, []
        for request in requests:
            source = self._gradient_source(request.wrt)
            if source.id not in index:
                index[source.id] = len(sources)
                sources.append(source)
            scores.append((index[source.id], lambda out, r=request: r.score(out, batch)))
        outputs, gradients, features = _autodiff.forward_with_gradients(
            self.network, inputs, training, sources, scores)
        outputs = dict(outputs)
        for request, gradient, (i, _) in zip(requests, gradients, scores):
            outputs[request.key] = gradient
            if request.features_key is not None and i in features:
                outputs[request.features_key] = features[i]
        return outputs

    @property
    def _gradient_requests(self):
        return [r for p in self.priors for r in p.gradient_requests()]

    def _gradient_source(self, wrt):
        """The ``_autodiff.Source`` for ``wrt``: an input key, a backbone level or None (the head's input)."""
        from keras_priors import _autodiff

        if wrt in self.input_keys:
            return _autodiff.Source(input_key=wrt)
        cache = self.__dict__.setdefault("_gradient_source_cache", {})
        if wrt not in cache:
            if wrt is None:
                try:
                    tensor = self.network.get_layer("classifier").input
                except ValueError:
                    raise ValueError(
                        "Gradient priors: Expected a classifier head layer named 'classifier' (the zoo's CAMHead) "
                        "for a feature level of None. Received layers: " + str([l.name for l in self.network.layers])
                    ) from None
            else:
                levels = self._feature_levels()
                if wrt not in levels:
                    raise ValueError(
                        f"Gradient priors: Expected `level` one of {sorted(levels)} (the backbone's feature maps) "
                        f"or None (the classifier head's input). Received: level={wrt!r}"
                    )
                tensor = levels[wrt]
            layer, shape, dtype = _autodiff.producing_layer(tensor, owner=f"level={wrt!r}")
            cache[wrt] = _autodiff.Source(layer=layer, shape=shape, dtype=dtype)
        return cache[wrt]

    def _feature_levels(self) -> dict:
        try:
            output = self.backbone.output
        except ValueError:
            return {}
        return dict(output) if isinstance(output, dict) else {}

    @property
    def backbone(self) -> keras.Model:
        return self.network.get_layer("backbone")

    # === Training ===
    def _targets(self, x, y):
        if isinstance(x, dict):
            return x
        return {"label": y}

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        targets = self._targets(x, y)
        replacing = [p for p in self.priors if p.replaces_classification_loss]
        if replacing:
            cls_loss = replacing[0].classification_loss(targets, y_pred, self.num_classes)
        else:
            cls_loss = classification_loss(targets["label"], y_pred["logits"], self.num_classes)
        self.classification_tracker.update_state(cls_loss)
        total = cls_loss
        for prior in self.priors:
            for term, value in prior.loss_terms(targets, y_pred, self.num_classes).items():
                self.term_trackers[term].update_state(value)
                total = total + value
        for extra in self.losses:
            total = total + ops.cast(extra, "float32")
        return _scale_for_replicas(total)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        targets = self._targets(x, y)
        labels = ops.reshape(ops.cast(targets["label"], "int32"), (-1,))
        correct = ops.cast(ops.equal(predicted_class(y_pred["logits"], self.num_classes), labels), "float32")
        self.accuracy_tracker.update_state(correct)
        for prior in self.priors:
            for metric_name, values in prior.metric_values(targets, y_pred, self.num_classes).items():
                self.prior_metrics[metric_name].update_state(values)
        return self.get_metrics_result()

    # === Input checks before the first step ===
    def check_data(self, data) -> None:
        """Raise a clear error if ``data`` lacks a key a prior needs or has the wrong image shape."""
        from keras_priors.zoo.checks import check_training_data

        check_training_data(self, data)

    def fit(self, x=None, y=None, *args, callbacks=None, epochs=1, initial_epoch=0, **kwargs):
        self.check_data(x)
        callbacks = list(callbacks or [])
        for prior in self.priors:
            callbacks.extend(prior.callbacks())
        segments = self._fit_segments(initial_epoch, epochs)
        if not segments:
            return super().fit(x, y, *args, callbacks=callbacks, epochs=epochs, initial_epoch=initial_epoch, **kwargs)
        history = None
        for start, end, begins in segments:
            if history is not None and self.stop_training:
                break
            for begin in begins:
                begin(self)
            part = super().fit(x, y, *args, callbacks=callbacks, epochs=end, initial_epoch=start, **kwargs)
            if history is None:
                history = part
                continue
            for key, values in part.history.items():
                history.history.setdefault(key, []).extend(values)
            history.epoch.extend(part.epoch)
        return history

    def _fit_segments(self, initial_epoch, epochs):
        """``[(start, end, [begin, ...])]``: the priors' fit schedules, cut to ``[initial_epoch, epochs)``.

        Empty when no prior has a schedule. Each segment is one ``fit`` call;
        its ``begin`` hooks run before it.
        """
        starts = {}
        for prior in self.priors:
            for phase in prior.fit_schedule(self, initial_epoch):
                starts.setdefault(max(int(phase.start_epoch), initial_epoch), []).append(phase.begin)
        if not starts:
            return []
        bounds = sorted(starts)
        if bounds[0] > initial_epoch:
            bounds.insert(0, initial_epoch)
        segments = []
        for i, start in enumerate(bounds):
            if segments and start >= epochs:
                break
            end = min(bounds[i + 1], epochs) if i + 1 < len(bounds) else epochs
            segments.append((start, end, starts.get(start, [])))
        return segments

    def evaluate(self, x=None, y=None, *args, **kwargs):
        self.check_data(x)
        return super().evaluate(x, y, *args, **kwargs)

    # === Export ===
    def inference_model(self, include_cam: bool = True) -> keras.Model:
        """The classifier path only: the training-only heads are dropped."""
        from keras_priors.zoo.export import inference_model

        return inference_model(self, include_cam=include_cam)

    def export(self, filepath, format="tf_saved_model", verbose=True, overwrite=False, **kwargs):
        """Export the classifier and its CAM, without the training-only heads.

        ``format`` is ``"tf_saved_model"`` (a folder with ``serve`` and ``cam``
        endpoints), ``"onnx"`` (a ``.onnx`` file) or ``"litert"`` (a
        ``.tflite`` file); all take the model's named inputs (``image`` in
        [0, 1]) and give ``logits``, ``probabilities``, ``cam`` and
        ``cam_upsampled``. See ``keras_priors.zoo.export_model``.

        The export is written next to ``filepath`` first and moved into place
        when complete. An earlier export of this library in the same format
        is replaced; any other existing file or folder raises unless
        ``overwrite=True`` (then it is moved aside, never deleted).
        """
        from keras_priors.zoo.export import export_model

        if kwargs:
            raise TypeError(f"PriorModel.export: Expected filepath, format, verbose and overwrite only (the input "
                            f"signature is the model's own). Received: {', '.join(sorted(kwargs))}")
        return export_model(self, filepath, format=format, verbose=verbose, overwrite=overwrite)

    # === Config ===
    def get_config(self):
        return {
            "name": self.name,
            "network": keras.saving.serialize_keras_object(self.network),
            "priors": [serialize_prior(p) for p in self.priors],
            "num_classes": self.num_classes,
            "training_only": list(self.training_only),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["network"] = keras.saving.deserialize_keras_object(config["network"], custom_objects=custom_objects)
        config["priors"] = [deserialize_prior(p, custom_objects) for p in config.get("priors", [])]
        return cls(**config)


def serialize_prior(prior) -> dict:
    """A prior's Keras serialization config (module, class and registered name, ``get_config``)."""
    return keras.saving.serialize_keras_object(prior)


def deserialize_prior(config: dict, custom_objects=None):
    """The prior a ``serialize_prior`` config describes; a prior class of the user must be registered.

    Configs written before priors were registered (``{"class_name", "config"}``
    only) are looked up among the library's priors.
    """
    from keras_priors import priors as priors_module  # registers the library's priors (lazy imports)

    if "registered_name" not in config and "module" not in config:
        cls = getattr(priors_module, config["class_name"], None)
        if cls is None:
            raise ValueError(f"Unknown prior class in saved model config. Received: {config['class_name']!r}")
        return cls.from_config(config["config"])
    return keras.saving.deserialize_keras_object(config, custom_objects=custom_objects)
