"""MAXLModel: a multi-task network whose auxiliary labels come from a meta-learned generator."""

from __future__ import annotations


import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.maxl import _autodiff
from keras_priors.maxl.joint_optimizer import JointOptimizer
from keras_priors.maxl.label_generator import LabelGenerator, check_psi
from keras_priors.maxl.losses import (
    focal_cross_entropy,
    focal_cross_entropy_target_grad,
    label_entropy_penalty,
)
from keras_priors.validation import check_non_negative, check_one_of, check_positive_int

ORDERS = ("second", "first")
FINITE_DIFFERENCES = ("forward", "central")


def _select_feature(outputs, feature):
    """The backbone output the heads read, or a clear error."""
    if isinstance(outputs, dict):
        if not outputs:
            raise ValueError("MAXLModel: Expected the backbone to output feature maps. Received: an empty dict")
        key = feature if feature is not None else sorted(outputs)[-1]
        if key not in outputs:
            raise ValueError(
                f"MAXLModel: Expected `feature` to be one of the backbone's outputs {sorted(outputs)}. "
                f"Received: feature={key!r}")
        return outputs[key]
    if isinstance(outputs, (list, tuple)):
        raise ValueError(
            "MAXLModel: Expected the backbone to output one feature map or a dict of named maps "
            f"(e.g. zoo pyramid backbones: P1..P3). Received: {len(outputs)} unnamed outputs")
    return outputs


@keras_priors_export("keras_priors.maxl.MAXLModel")
class MAXLModel(keras.Model):
    """Meta AuXiliary Learning: a primary head, an auxiliary head and a label generator.

    The multi-task network is ``backbone -> feature map -> global average
    pooling -> {primary Dense(len(psi)), auxiliary Dense(sum(psi))}``. Its
    heads are trained with the reference's focal loss (gamma 2): the primary
    head on the integer ``label``, the auxiliary head on the soft labels of a
    :class:`LabelGenerator` (masked softmax: class ``i`` gets only auxiliary
    classes in its block of ``psi[i]``).

    Each ``train_step`` on a batch also updates the generator with the MAXL
    meta-gradient: with ``theta+ = theta - alpha * d(L_pri + L_aux)/d theta``
    (one virtual SGD step), the generator minimises
    ``L_pri(theta+) + entropy_weight * sum_k m_k log m_k`` (``m`` the batch
    mean of the generated labels, the reference's anti-collapse term, weight
    0.2).

    * ``order="second"``: exact gradient through the virtual step (nested
      ``GradientTape`` on TensorFlow, ``jax.value_and_grad`` of a function that
      calls ``jax.value_and_grad`` on JAX, ``torch.autograd.grad`` with
      ``create_graph=True`` on torch).
    * ``order="first"``: the finite-difference approximation of DARTS and of
      the reference's ``model_vgg_maxl_firstorder.py``: with
      ``d = dL_pri(theta+)/d theta+`` and ``eps = finite_difference_epsilon / |d|``,
      the meta-gradient is ``-alpha * d/d phi [dL_aux/d theta . d]``, the
      directional derivative taken by finite differences of ``dL_aux/d q``
      (``L_aux`` is linear in the generated labels ``q``, so only that
      gradient is differenced). ``finite_difference="forward"`` (default)
      uses ``(g(theta + eps d) - g(theta)) / eps`` and reuses the real step's
      forward pass for ``g(theta)``: one extra forward pass. ``"central"``
      uses ``(g(theta + eps d) - g(theta - eps d)) / (2 eps)`` as the
      reference and DARTS do: two extra forward passes.
      (The reference drops the entropy term in this variant; it is kept here.)

    ``generator_update_every=k`` takes the generator's meta-step on every
    ``k``-th batch only (the network trains on every batch with the current
    generator's labels). The reference updates on every batch (``k = 1``); a
    larger ``k`` amortises the meta-step, as is common in meta-learning, and
    changes the algorithm accordingly. The step is one compiled function
    either way: the choice is a ``cond`` on the optimizer's iteration count.

    Cost of one step in passes over the network, next to a single-task
    step's one forward+backward: first order with forward differences, two
    forward+backward (at ``theta`` and ``theta+``) and one forward, plus the
    generator's forward and backward; central differences add one forward;
    a step that skips the generator update is one forward+backward plus the
    generator's forward. ``benchmarks/maxl_step.py`` measures the ratios.

    The virtual step reuses the gradient of the real step: both heads'
    optimizer step and the generator step are taken from the same batch, the
    network's with the optimizer given to ``compile``, the generator's with
    ``generator_optimizer`` (default: SGD, learning rate 1e-3, weight decay
    5e-4, as in the reference). Batch norm runs in training mode in the
    virtual passes; only the real forward pass updates its moving statistics.

    ``fit`` takes batches that are dicts with ``image`` and ``label`` (extra
    keys are ignored) and logs ``loss`` (primary focal loss), ``aux_loss``,
    ``meta_loss`` (primary loss after the virtual step, averaged over the
    batches that updated the generator), ``label_entropy``
    (the penalty value) and ``accuracy``.

    Args:
        backbone: a functional model on images returning a feature map or a
            dict of them (zoo pyramid backbones).
        psi: auxiliary class counts per primary class.
        num_classes: optional number of primary classes, checked against
            ``len(psi)``.
        generator: a :class:`LabelGenerator` (default: ``LabelGenerator(psi)``).
        feature: which backbone output the heads read (default: last key in
            sorted order, e.g. ``"P3"``).
        order: ``"second"`` or ``"first"``.
        virtual_learning_rate: ``alpha`` of the virtual SGD step (the
            reference uses the network's learning rate, 0.01).
        entropy_weight: weight of the anti-collapse term (0.2).
        focal_gamma: focusing exponent of both head losses (2; 0 = cross-entropy).
        finite_difference_epsilon: the first-order step scale (0.01).
        finite_difference: ``"forward"`` (one extra forward pass, reuses the
            real step's) or ``"central"`` (two, as in the reference).
        generator_update_every: update the generator on every ``k``-th
            batch (1, every batch, as in the reference).
        **kwargs: ``keras.Model`` arguments.

    Example:

    >>> import keras
    >>> import keras_priors as kp
    >>> backbone = kp.zoo.get_spec("resnet_tiny").builder((32, 32, 3))
    >>> model = MAXLModel(backbone, psi=[3, 3], order="first")
    >>> model.compile(optimizer=keras.optimizers.SGD(0.01))
    >>> train = kp.data.kakapo("train", image_size=32, num_samples=16, batch_size=16)
    >>> history = model.fit(train, epochs=1, verbose=0)
    >>> sorted(history.history)
    ['accuracy', 'aux_loss', 'label_entropy', 'loss', 'meta_loss']

    Reference:
        Liu, Davison, Johns. Self-Supervised Generalisation with Meta
        Auxiliary Learning. NeurIPS 2019. Code: github.com/lorenmt/maxl.
        Liu, Simonyan, Yang. DARTS: Differentiable Architecture Search.
        ICLR 2019 (finite-difference approximation).
    """

    def __init__(self, backbone, psi, num_classes=None, generator=None, feature=None, order: str = "second",
                 virtual_learning_rate: float = 0.01, entropy_weight: float = 0.2,
                 focal_gamma: float = 2.0, finite_difference_epsilon: float = 0.01,
                 finite_difference: str = "forward", generator_update_every: int = 1, **kwargs):
        super().__init__(**kwargs)
        # === Config ===
        self.psi = check_psi(psi, "MAXLModel")
        if num_classes is not None and num_classes != len(self.psi):
            raise ValueError(
                f"MAXLModel: Expected one entry of `psi` per primary class ({num_classes} classes). "
                f"Received: psi={list(self.psi)} ({len(self.psi)} entries)")
        self.num_classes = len(self.psi)
        self.num_aux_classes = sum(self.psi)
        self.order = check_one_of("order", order, ORDERS, "MAXLModel")
        self.virtual_learning_rate = check_non_negative("virtual_learning_rate", virtual_learning_rate, "MAXLModel")
        self.entropy_weight = check_non_negative("entropy_weight", entropy_weight, "MAXLModel")
        self.focal_gamma = check_non_negative("focal_gamma", focal_gamma, "MAXLModel")
        self.finite_difference_epsilon = check_non_negative(
            "finite_difference_epsilon", finite_difference_epsilon, "MAXLModel")
        self.finite_difference = check_one_of("finite_difference", finite_difference, FINITE_DIFFERENCES,
                                              "MAXLModel")
        self.generator_update_every = check_positive_int("generator_update_every", generator_update_every,
                                                         "MAXLModel")
        self.feature = feature
        if not isinstance(backbone, keras.Model) or not getattr(backbone, "inputs", None):
            raise ValueError(
                "MAXLModel: Expected `backbone` to be a functional keras.Model on images "
                f"(e.g. kp.zoo.get_spec('resnet_tiny').builder((64, 64, 3))). Received: backbone={backbone!r}")
        if generator is None:
            generator = LabelGenerator(self.psi, name="label_generator")
        if not isinstance(generator, LabelGenerator):
            raise ValueError("MAXLModel: Expected `generator` to be a LabelGenerator. "
                             f"Received: generator={generator!r}")
        if tuple(generator.psi) != self.psi:
            raise ValueError(
                f"MAXLModel: Expected the generator's psi to equal `psi`={list(self.psi)}. "
                f"Received: generator.psi={list(generator.psi)}")
        # === Layers ===
        image_shape = tuple(backbone.inputs[0].shape[1:])
        self._backbone_name = backbone.name
        inputs = keras.Input(shape=image_shape, name="image")
        features = _select_feature(backbone(inputs), feature)
        if len(features.shape) not in (2, 4):
            raise ValueError(
                "MAXLModel: Expected the backbone feature to be (B, h, w, C) or (B, C). "
                f"Received: shape={tuple(features.shape)}")
        pooled = keras.layers.GlobalAveragePooling2D(name="pool")(features) if len(features.shape) == 4 else features
        outputs = {
            "logits": keras.layers.Dense(self.num_classes, name="logits")(pooled),
            "aux_logits": keras.layers.Dense(self.num_aux_classes, name="aux_logits")(pooled),
        }
        self.network = keras.Model(inputs, outputs, name="multi_task_network")
        self.generator = generator
        if not generator.built:
            generator.build((None,) + image_shape, (None,))
        # === Metrics ===
        self.primary_tracker = keras.metrics.Mean(name="loss")
        self.aux_tracker = keras.metrics.Mean(name="aux_loss")
        self.meta_tracker = keras.metrics.Mean(name="meta_loss")
        self.entropy_tracker = keras.metrics.Mean(name="label_entropy")
        self.accuracy_tracker = keras.metrics.Mean(name="accuracy")

    # === Forward ===
    def call(self, inputs, training=None):
        images = inputs["image"] if isinstance(inputs, dict) else inputs
        return self.network(images, training=training)

    @property
    def backbone(self):
        return self.network.get_layer(self._backbone_name)

    @property
    def metrics(self):
        return [self.primary_tracker, self.aux_tracker, self.meta_tracker,
                self.entropy_tracker, self.accuracy_tracker]

    def generate_labels(self, images, labels):
        """Auxiliary label distributions the generator gives ``images`` of primary class ``labels``."""
        return self.generator(images, labels, training=False)

    # === Compile ===
    def compile(self, optimizer="sgd", generator_optimizer=None, **kwargs):
        """Configure training.

        Args:
            optimizer: the multi-task network's optimizer.
            generator_optimizer: the label generator's optimizer (default:
                ``SGD(1e-3, weight_decay=5e-4)``, as in the reference).
            **kwargs: other ``keras.Model.compile`` arguments (no ``loss``:
                the MAXL losses are fixed).
        """
        if kwargs.get("loss") is not None:
            raise ValueError("MAXLModel: `loss` is fixed by MAXL; do not pass it. "
                             f"Received: loss={kwargs['loss']!r}")
        kwargs.pop("loss", None)
        if not isinstance(optimizer, JointOptimizer):
            if generator_optimizer is None:
                generator_optimizer = keras.optimizers.SGD(1e-3, weight_decay=5e-4)
            optimizer = JointOptimizer(optimizer, generator_optimizer)
        gen_ids = {id(v) for v in self.generator.trainable_variables}
        optimizer.generator_mask = [id(v) in gen_ids for v in self.trainable_variables]
        super().compile(optimizer=optimizer, **kwargs)

    def get_compile_config(self):
        if getattr(self, "optimizer", None) is None:
            return None
        return {"optimizer": keras.saving.serialize_keras_object(self.optimizer)}

    def compile_from_config(self, config):
        optimizer = keras.saving.deserialize_keras_object(config["optimizer"])
        self.compile(optimizer=optimizer)
        if self.built:
            self.optimizer.build(self.trainable_variables)

    # === Losses ===
    def _primary_loss(self, labels, logits):
        onehot = ops.one_hot(ops.reshape(ops.cast(labels, "int32"), (-1,)), self.num_classes)
        return focal_cross_entropy(onehot, ops.softmax(ops.cast(logits, "float32")), self.focal_gamma)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        labels = x["label"] if isinstance(x, dict) else y
        return self._primary_loss(labels, y_pred["logits"])

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        labels = x["label"] if isinstance(x, dict) else y
        self._update_accuracy(labels, y_pred["logits"])
        return self.get_metrics_result()

    def _update_accuracy(self, labels, logits):
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        pred = ops.cast(ops.argmax(logits, axis=-1), "int32")
        self.accuracy_tracker.update_state(ops.cast(ops.equal(pred, labels), "float32"))

    def test_step(self, *args):
        # Keras' own test step, with only our trackers (the loss is the primary focal loss).
        if keras.backend.backend() == "jax":
            state, data = args
            tv, ntv, mv = state
            x = data[0] if isinstance(data, tuple) else data
            out, _ = self.network.stateless_call(self._net_values(tv), self._ntv_split(ntv)[0],
                                                 x["image"], training=False)
            logs, mv = self._stateless_metrics(
                mv, x["label"], out, {"loss": self._primary_loss(x["label"], out["logits"])})
            return {k: logs[k] for k in ("loss", "accuracy")}, (tv, ntv, mv)
        data = args[0]
        x = data[0] if isinstance(data, tuple) else data
        out = self.network(x["image"], training=False)
        self.primary_tracker.update_state(self._primary_loss(x["label"], out["logits"]))
        self._update_accuracy(x["label"], out["logits"])
        return {"loss": self.primary_tracker.result(), "accuracy": self.accuracy_tracker.result()}

    # === The MAXL step (backend-independent maths; gradients from _autodiff) ===
    def maxl_gradients(self, net_tv, net_ntv, gen_tv, gen_ntv, images, labels, update_generator=True):
        """Gradients of one MAXL step from explicit variable values.

        Args:
            net_tv, net_ntv, gen_tv, gen_ntv: values of the network's and the
                generator's trainable and non-trainable variables.
            images, labels: the batch.
            update_generator: True for the full MAXL step, False for the
                network's step only (generator gradients are zeros), or a
                boolean scalar tensor choosing between them inside a compiled
                step (one ``cond``; only the chosen branch runs).

        Returns:
            ``(net_grads, gen_grads, new_net_ntv, new_gen_ntv, stats)`` where
            ``stats`` has ``loss``, ``aux_loss``, ``meta_loss``,
            ``label_entropy``, ``generator_updated`` (1.0 or 0.0) and ``logits``.
        """
        labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
        args = (list(net_tv), list(net_ntv), list(gen_tv), list(gen_ntv), images, labels)
        if isinstance(update_generator, bool):
            return self._maxl_step(*args, update_generator)
        return ops.cond(ops.convert_to_tensor(update_generator, "bool"),
                        lambda: self._maxl_step(*args, True), lambda: self._maxl_step(*args, False))

    def _maxl_step(self, net_tv, net_ntv, gen_tv, gen_ntv, images, labels, update_generator):
        alpha = self.virtual_learning_rate
        gamma = self.focal_gamma

        def generate(gen_params):
            q, new_ntv = self.generator.stateless_call(gen_params, gen_ntv, images, labels, training=True)
            return q, new_ntv

        def train_loss(net_params, q):
            out, new_ntv = self.network.stateless_call(net_params, net_ntv, images, training=True)
            l_pri = self._primary_loss(labels, out["logits"])
            aux_probs = ops.softmax(ops.cast(out["aux_logits"], "float32"))
            l_aux = focal_cross_entropy(q, aux_probs, gamma)
            return l_pri + l_aux, (l_pri, l_aux, out["logits"], aux_probs, new_ntv)

        def primary_after(net_params):
            out, _ = self.network.stateless_call(net_params, net_ntv, images, training=True)
            return self._primary_loss(labels, out["logits"]), None

        def aux_target_grad(params):
            # d L_aux / d q at these network weights (L_aux is linear in q).
            out, _ = self.network.stateless_call(params, net_ntv, images, training=True)
            return focal_cross_entropy_target_grad(ops.softmax(ops.cast(out["aux_logits"], "float32")), gamma)

        if not update_generator:
            q, new_gen_ntv = generate(gen_tv)
            q = ops.stop_gradient(q)
            (_, aux), net_grads = _autodiff.value_and_grad(train_loss)(net_tv, q)
            gen_grads = [ops.zeros_like(t) for t in gen_tv]
            after, entropy = ops.zeros(()), label_entropy_penalty(q)
        elif self.order == "second":
            def meta_objective(gen_params):
                q, new_gen_ntv = generate(gen_params)
                (_, aux), grads = _autodiff.value_and_grad(train_loss)(net_tv, q)
                plus = [t - alpha * g for t, g in zip(net_tv, grads)]
                after, _ = primary_after(plus)
                entropy = label_entropy_penalty(q)
                return after + self.entropy_weight * entropy, (grads, aux, after, entropy, new_gen_ntv)

            (_, (net_grads, aux, after, entropy, new_gen_ntv)), gen_grads = (
                _autodiff.value_and_grad(meta_objective)(gen_tv))
            net_grads = [ops.stop_gradient(g) for g in net_grads]
        else:
            q, new_gen_ntv, pullback = _autodiff.vjp(generate, gen_tv)
            q = ops.stop_gradient(q)
            (_, aux), net_grads = _autodiff.value_and_grad(train_loss)(net_tv, q)
            plus = [t - alpha * g for t, g in zip(net_tv, net_grads)]
            (after, _), d = _autodiff.value_and_grad(primary_after)(plus)
            norm = ops.sqrt(sum(ops.sum(ops.square(x)) for x in d))
            eps = self.finite_difference_epsilon / ops.maximum(norm, 1e-12)
            g_plus = aux_target_grad([t + eps * x for t, x in zip(net_tv, d)])
            if self.finite_difference == "central":
                g_minus = aux_target_grad([t - eps * x for t, x in zip(net_tv, d)])
                hessian_q = (g_plus - g_minus) / (2.0 * eps)
            else:
                # g(theta) from the real step's forward pass: no extra pass.
                g_theta = focal_cross_entropy_target_grad(ops.stop_gradient(aux[3]), gamma)
                hessian_q = (g_plus - g_theta) / eps
            (entropy, _), entropy_q = _autodiff.value_and_grad(lambda p: (label_entropy_penalty(p), None))(q)
            gen_grads = pullback(-alpha * hessian_q + self.entropy_weight * entropy_q)
        l_pri, l_aux, logits, _, new_net_ntv = aux
        stats = {"loss": l_pri, "aux_loss": l_aux, "meta_loss": ops.cast(after, "float32"),
                 "label_entropy": ops.cast(entropy, "float32"),
                 "generator_updated": ops.convert_to_tensor(1.0 if update_generator else 0.0, "float32"),
                 "logits": logits}
        return list(net_grads), list(gen_grads), list(new_net_ntv), list(new_gen_ntv), stats

    def _generator_update_flag(self, iterations):
        """True (static) when k = 1, else ``iterations % k == 0`` as a tensor."""
        if self.generator_update_every == 1:
            return True
        return ops.equal(ops.mod(ops.cast(iterations, "int32"), self.generator_update_every), 0)

    def _update_trackers(self, stats, labels):
        self.primary_tracker.update_state(stats["loss"])
        self.aux_tracker.update_state(stats["aux_loss"])
        self.meta_tracker.update_state(stats["meta_loss"], sample_weight=stats["generator_updated"])
        self.entropy_tracker.update_state(stats["label_entropy"])
        self._update_accuracy(labels, stats["logits"])

    def train_step(self, *args):
        if keras.backend.backend() == "jax":
            return self._jax_train_step(*args)
        return self._tf_train_step(*args)

    def _tf_train_step(self, data):
        """The eager/traced step of TensorFlow, also used on torch (values detached from the variables)."""
        x = data[0] if isinstance(data, tuple) else data
        net_vars, gen_vars = self.network.trainable_variables, self.generator.trainable_variables
        net_nt, gen_nt = self.network.non_trainable_variables, self.generator.non_trainable_variables
        if keras.backend.backend() == "torch":
            values = lambda vs: [v.value.detach() for v in vs]  # noqa: E731
        else:
            import tensorflow as tf

            values = lambda vs: [tf.identity(v.value) for v in vs]  # noqa: E731
        update = self._generator_update_flag(self.optimizer.iterations)
        net_grads, gen_grads, new_net_nt, new_gen_nt, stats = self.maxl_gradients(
            values(net_vars), values(net_nt), values(gen_vars), values(gen_nt), x["image"], x["label"], update)
        grads = {id(v): ops.stop_gradient(g) for v, g in zip(net_vars + gen_vars, net_grads + gen_grads)}
        self.optimizer.apply([grads[id(v)] for v in self.trainable_variables], self.trainable_variables,
                             generator_update=update)
        for v, new in zip(net_nt + gen_nt, list(new_net_nt) + list(new_gen_nt)):
            v.assign(new)
        self._update_trackers(stats, x["label"])
        return self.get_metrics_result()

    # --- JAX: the stateless protocol of keras' JAX trainer ---
    def _index(self, owner_vars, model_vars):
        ids = {id(v): i for i, v in enumerate(model_vars)}
        return [ids[id(v)] for v in owner_vars]

    def _net_values(self, tv):
        return [tv[i] for i in self._index(self.network.trainable_variables, self.trainable_variables)]

    def _ntv_split(self, ntv):
        net = [ntv[i] for i in self._index(self.network.non_trainable_variables, self.non_trainable_variables)]
        gen = [ntv[i] for i in self._index(self.generator.non_trainable_variables, self.non_trainable_variables)]
        return net, gen

    def _stateless_metrics(self, metrics_values, labels, out_or_stats, extra=None):
        mapping = list(zip(self.metrics_variables, metrics_values))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            if extra is not None:
                self.primary_tracker.update_state(extra["loss"])
                self._update_accuracy(labels, out_or_stats["logits"])
            else:
                self._update_trackers(out_or_stats, labels)
            logs = self.get_metrics_result()
        new = []
        for v in self.metrics_variables:
            value = scope.get_current_value(v)
            new.append(v.value if value is None else value)
        return logs, new

    def _jax_train_step(self, state, data):
        tv, ntv, ov, mv = state
        x = data[0] if isinstance(data, tuple) else data
        net_i = self._index(self.network.trainable_variables, self.trainable_variables)
        gen_i = self._index(self.generator.trainable_variables, self.trainable_variables)
        net_ni = self._index(self.network.non_trainable_variables, self.non_trainable_variables)
        gen_ni = self._index(self.generator.non_trainable_variables, self.non_trainable_variables)
        step = ov[self._index([self.optimizer.iterations], self.optimizer.variables)[0]]
        update = self._generator_update_flag(step)
        net_grads, gen_grads, new_net_nt, new_gen_nt, stats = self.maxl_gradients(
            [tv[i] for i in net_i], [ntv[i] for i in net_ni], [tv[i] for i in gen_i], [ntv[i] for i in gen_ni],
            x["image"], x["label"], update)
        grads = [None] * len(tv)
        for i, g in zip(net_i + gen_i, net_grads + gen_grads):
            grads[i] = g
        tv, ov = self.optimizer.stateless_apply(ov, grads, tv, generator_update=update)
        ntv = list(ntv)
        for i, value in zip(net_ni + gen_ni, list(new_net_nt) + list(new_gen_nt)):
            ntv[i] = value
        logs, mv = self._stateless_metrics(mv, x["label"], stats)
        return logs, (tv, ntv, ov, mv)

    # === Config ===
    def get_config(self):
        return {
            "name": self.name,
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "psi": list(self.psi),
            "generator": keras.saving.serialize_keras_object(self.generator),
            "feature": self.feature,
            "order": self.order,
            "virtual_learning_rate": self.virtual_learning_rate,
            "entropy_weight": self.entropy_weight,
            "focal_gamma": self.focal_gamma,
            "finite_difference_epsilon": self.finite_difference_epsilon,
            "finite_difference": self.finite_difference,
            "generator_update_every": self.generator_update_every,
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(config["backbone"], custom_objects=custom_objects)
        config["generator"] = keras.saving.deserialize_keras_object(config["generator"], custom_objects=custom_objects)
        return cls(**config)
