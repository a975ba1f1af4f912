"""JointOptimizer: one optimizer for the multi-task network, another for the label generator."""

from __future__ import annotations

import keras
from keras import ops
from keras.src.utils import tracking

from keras_priors.api_export import keras_priors_export


@keras_priors_export("keras_priors.maxl.JointOptimizer")
class JointOptimizer(keras.optimizers.Optimizer):
    """Route each trainable variable to one of two optimizers.

    ``MAXLModel.compile(optimizer=..., generator_optimizer=...)`` wraps both in
    one of these, so Keras' ``fit`` (stateful on TensorFlow, ``stateless_apply``
    on JAX) sees a single optimizer whose state holds both. Variables flagged
    in ``generator_mask`` (set by the model before building) go to
    ``generator_optimizer``, the others to ``optimizer``.

    Args:
        optimizer: optimizer of the multi-task network.
        generator_optimizer: optimizer of the label generator.
        name: optimizer name.
    """

    def __init__(self, optimizer, generator_optimizer, name=None, **kwargs):
        super().__init__(learning_rate=0.0, name=name or "joint_optimizer")
        self.main_optimizer = keras.optimizers.get(optimizer)
        self.generator_optimizer = keras.optimizers.get(generator_optimizer)
        self.generator_mask = None

    def _split(self, values):
        if self.generator_mask is None or len(values) != len(self.generator_mask):
            raise ValueError(
                "JointOptimizer: Expected one value per trainable variable of the model "
                f"({None if self.generator_mask is None else len(self.generator_mask)}). "
                f"Received: {len(values)} values")
        main = [v for v, g in zip(values, self.generator_mask) if not g]
        gen = [v for v, g in zip(values, self.generator_mask) if g]
        return main, gen

    def _merge(self, main, gen):
        main, gen = iter(main), iter(gen)
        return [next(gen) if g else next(main) for g in self.generator_mask]

    @tracking.no_automatic_dependency_tracking
    def build(self, var_list):
        if self.generator_mask is None:
            raise ValueError("JointOptimizer: `generator_mask` must be set (by MAXLModel.compile) before build.")
        main, gen = self._split(list(var_list))
        self.main_optimizer.build(main)
        self.generator_optimizer.build(gen)
        super().build(var_list)

    @property
    def variables(self):
        return self._variables + self.main_optimizer.variables + self.generator_optimizer.variables

    def apply(self, grads, trainable_variables=None, generator_update=True):
        """Apply ``grads``; ``generator_update`` (bool or boolean scalar tensor) False skips the generator."""
        grads = list(grads)
        if trainable_variables is None:
            trainable_variables = self._trainable_variables
        trainable_variables = list(trainable_variables)
        if not self.built:
            with keras.name_scope(self.name, caller=self):
                self.build(trainable_variables)
            self.built = True
        g_main, g_gen = self._split(grads)
        v_main, v_gen = self._split(trainable_variables)
        self.main_optimizer.apply(g_main, v_main)
        if generator_update is True:
            self.generator_optimizer.apply(g_gen, v_gen)
        elif generator_update is not False:
            # Skipped, not applied with zero gradients: weight decay and momentum would still move it.
            def update():
                self.generator_optimizer.apply(g_gen, v_gen)
                return ops.convert_to_tensor(True)

            ops.cond(ops.convert_to_tensor(generator_update, "bool"), update,
                     lambda: ops.convert_to_tensor(False))

    def stateless_apply(self, optimizer_variables, grads, trainable_variables, generator_update=True):
        n_own, n_main = len(self._variables), len(self.main_optimizer.variables)
        optimizer_variables = list(optimizer_variables)
        own = optimizer_variables[:n_own]
        o_main = optimizer_variables[n_own:n_own + n_main]
        o_gen = optimizer_variables[n_own + n_main:]
        g_main, g_gen = self._split(list(grads))
        v_main, v_gen = self._split(list(trainable_variables))
        v_main, o_main = self.main_optimizer.stateless_apply(o_main, g_main, v_main)
        if generator_update is not False:
            new_v_gen, new_o_gen = self.generator_optimizer.stateless_apply(o_gen, g_gen, v_gen)
            if generator_update is True:
                v_gen, o_gen = new_v_gen, new_o_gen
            else:
                # The generator's update is small: compute it, keep it only where asked.
                keep = ops.convert_to_tensor(generator_update, "bool")
                v_gen = [ops.where(keep, a, b) for a, b in zip(new_v_gen, v_gen)]
                o_gen = [ops.where(keep, a, b) for a, b in zip(new_o_gen, o_gen)]
        return self._merge(v_main, v_gen), list(own) + list(o_main) + list(o_gen)

    @property
    def learning_rate(self):
        return self.main_optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, learning_rate):
        if hasattr(self, "main_optimizer"):
            self.main_optimizer.learning_rate = learning_rate

    @property
    def iterations(self):
        return self.main_optimizer.iterations

    def finalize_variable_values(self, var_list):
        main, gen = self._split(list(var_list))
        self.main_optimizer.finalize_variable_values(main)
        self.generator_optimizer.finalize_variable_values(gen)

    def get_config(self):
        return {
            "name": self.name,
            "optimizer": keras.saving.serialize_keras_object(self.main_optimizer),
            "generator_optimizer": keras.saving.serialize_keras_object(self.generator_optimizer),
        }

    @classmethod
    def from_config(cls, config, custom_objects=None):
        config = dict(config)
        for key in ("optimizer", "generator_optimizer"):
            config[key] = keras.saving.deserialize_keras_object(config[key], custom_objects=custom_objects)
        return cls(**config)
