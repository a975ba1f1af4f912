"""Shared checks for every layer and loss, in the spirit of Keras' ``run_layer_test``.

``run_layer_test`` builds a layer on a shape, calls it, takes one training step
through it, round-trips it through ``get_config``/``from_config`` and a ``.keras``
file (outputs must match), and runs it under ``mixed_float16``.
``run_loss_test`` does the same for a ``keras.losses.Loss``.
"""

from __future__ import annotations

import os
import tempfile

import keras
import numpy as np
from keras import ops


def _as_list(x):
    if isinstance(x, (list, tuple)):
        return list(x)
    return [x]


def to_numpy(x, dtype=None):
    """``np.asarray(x, dtype)`` that also takes backend tensors and variables.

    On torch a model output that requires grad has no ``__array__`` to numpy
    (``np.asarray`` raises); ``keras.ops.convert_to_numpy`` detaches it.
    """
    if isinstance(x, keras.Variable) or ops.is_tensor(x):
        x = ops.convert_to_numpy(x)
    return np.asarray(x, dtype)


def _to_numpy(tree):
    return keras.tree.map_structure(lambda t: np.asarray(ops.convert_to_numpy(t)), tree)


def _assert_tree_close(a, b, atol, rtol, msg):
    a_flat, b_flat = keras.tree.flatten(_to_numpy(a)), keras.tree.flatten(_to_numpy(b))
    assert len(a_flat) == len(b_flat), f"{msg}: {len(a_flat)} outputs vs {len(b_flat)}"
    for x, y in zip(a_flat, b_flat):
        np.testing.assert_allclose(x, y, atol=atol, rtol=rtol, err_msg=msg)


def _make_inputs(input_shape, input_dtype, rng):
    shapes = input_shape if isinstance(input_shape, list) else [input_shape]
    dtypes = input_dtype if isinstance(input_dtype, list) else [input_dtype] * len(shapes)
    out = []
    for s, d in zip(shapes, dtypes):
        if "int" in d:
            out.append(rng.integers(0, 2, size=s).astype(d))
        else:
            out.append(rng.uniform(0.0, 1.0, size=s).astype(d))
    return out if isinstance(input_shape, list) else out[0]


def run_layer_test(
    layer_cls,
    init_kwargs: dict,
    input_shape=None,
    input_data=None,
    input_dtype: str | list = "float32",
    expected_output_shape=None,
    expected_num_trainable_weights: int | None = None,
    call_kwargs: dict | None = None,
    run_training_check: bool = True,
    run_mixed_precision_check: bool = True,
    run_saving_check: bool = True,
    atol: float = 1e-6,
    rtol: float = 1e-6,
):
    """Run the checks every keras-priors layer must pass.

    Args:
        layer_cls: the layer class.
        init_kwargs: constructor arguments.
        input_shape: a shape tuple (batch included), or a list of them for
            multi-input layers. Random inputs are made from it.
        input_data: explicit inputs instead of ``input_shape``.
        input_dtype: dtype(s) of generated inputs.
        expected_output_shape: a shape or a structure of shapes (batch included).
        expected_num_trainable_weights: checked after build when given.
        call_kwargs: extra keyword arguments for ``call``.
        run_training_check: take one optimizer step through the layer and
            check the loss is finite and trainable weights (if any) changed.
        run_mixed_precision_check: call under ``mixed_float16`` and check the
            output is finite.
        run_saving_check: round-trip through ``get_config``/``from_config`` and
            a ``.keras`` file with equal outputs.

    Returns:
        The built layer and its outputs on ``input_data``.
    """
    call_kwargs = call_kwargs or {}
    rng = np.random.default_rng(1)
    if input_data is None:
        assert input_shape is not None, "give input_shape or input_data"
        input_data = _make_inputs(input_shape, input_dtype, rng)
    else:
        input_shape = keras.tree.map_structure(lambda t: tuple(t.shape), input_data)
        if isinstance(input_data, tuple):
            input_data = list(input_data)

    # === Build and call ===
    layer = layer_cls(**init_kwargs)
    outputs = layer(input_data, **call_kwargs)
    assert layer.built, f"{layer_cls.__name__} is not built after its first call"
    if expected_output_shape is not None:
        got = [tuple(t.shape) for t in keras.tree.flatten(outputs)]
        want = _flatten_shapes(expected_output_shape)
        assert got == want, f"{layer_cls.__name__}: output shapes {got}, expected {want}"
    if expected_num_trainable_weights is not None:
        assert len(layer.trainable_weights) == expected_num_trainable_weights, (
            f"{layer_cls.__name__}: {len(layer.trainable_weights)} trainable weights, "
            f"expected {expected_num_trainable_weights}"
        )
    for t in keras.tree.flatten(outputs):
        assert np.all(np.isfinite(ops.convert_to_numpy(t))), f"{layer_cls.__name__}: non-finite output"

    # === Symbolic call and compute_output_shape ===
    sym_out = layer_cls(**init_kwargs)(_symbolic_inputs(input_data), **call_kwargs)
    sym_shapes = [tuple(t.shape) for t in keras.tree.flatten(sym_out)]
    eager_shapes = [tuple(t.shape) for t in keras.tree.flatten(outputs)]
    for a, b in zip(sym_shapes, eager_shapes):
        assert len(a) == len(b) and all(x is None or x == y for x, y in zip(a[1:], b[1:])), (
            f"{layer_cls.__name__}: symbolic output shape {a} does not match eager {b}"
        )

    # === Serialization: get_config / from_config ===
    if run_saving_check:
        config = layer.get_config()
        revived = layer_cls.from_config(config)
        revived(input_data, **call_kwargs)
        if layer.weights:
            revived.set_weights(layer.get_weights())
        _assert_tree_close(
            outputs, revived(input_data, **call_kwargs), atol, rtol, f"{layer_cls.__name__} from_config"
        )
        assert revived.get_config() == config, f"{layer_cls.__name__}: config changed on round trip"

        # === Serialization: .keras file ===
        model = _wrap_in_model(layer_cls, init_kwargs, input_shape, input_data, call_kwargs)
        if layer.weights:
            model.layers[-1].set_weights(layer.get_weights())
        expected = model(input_data)
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            reloaded = keras.saving.load_model(path)  # no custom_objects: must be registered
        _assert_tree_close(expected, reloaded(input_data), atol, rtol, f"{layer_cls.__name__} .keras save/load")

    # === One training step ===
    if run_training_check:
        model = _wrap_in_model(layer_cls, init_kwargs, input_shape, input_data, call_kwargs)
        before = [ops.convert_to_numpy(w) for w in model.trainable_weights]
        model.compile(optimizer=keras.optimizers.SGD(0.1), loss=_sum_of_squares_loss)
        n = keras.tree.flatten(input_data)[0].shape[0]
        targets = keras.tree.map_structure(lambda t: np.zeros_like(ops.convert_to_numpy(t), "float32"), outputs)
        if isinstance(targets, tuple):
            targets = list(targets)
        history = model.fit(input_data, targets, batch_size=n, epochs=1, verbose=0)
        loss = history.history["loss"][0]
        assert np.isfinite(loss), f"{layer_cls.__name__}: training loss is {loss}"
        if before:
            after = [ops.convert_to_numpy(w) for w in model.trainable_weights]
            assert any(not np.allclose(a, b) for a, b in zip(before, after)), (
                f"{layer_cls.__name__}: a training step changed no trainable weight"
            )

    # === Mixed precision ===
    if run_mixed_precision_check:
        keras.config.set_dtype_policy("mixed_float16")
        try:
            mp_layer = layer_cls(**init_kwargs)
            mp_out = mp_layer(input_data, **call_kwargs)
            for t in keras.tree.flatten(mp_out):
                assert np.all(np.isfinite(ops.convert_to_numpy(ops.cast(t, "float32")))), (
                    f"{layer_cls.__name__}: non-finite output under mixed_float16"
                )
        finally:
            keras.config.set_dtype_policy("float32")

    return layer, outputs


def _flatten_shapes(shapes):
    """A shape tuple, or a list/dict of them, as a flat list of tuples."""
    if isinstance(shapes, tuple) and all(s is None or isinstance(s, int) for s in shapes):
        return [shapes]
    if isinstance(shapes, dict):
        return [tuple(shapes[k]) for k in sorted(shapes)]
    return [tuple(s) for s in shapes]


def _symbolic_inputs(input_data):
    def one(x):
        x = np.asarray(ops.convert_to_numpy(x))
        return keras.Input(batch_shape=(None,) + x.shape[1:], dtype=str(x.dtype))

    if isinstance(input_data, list):
        return [one(x) for x in input_data]
    return one(input_data)


def _sum_of_squares_loss(y_true, y_pred):
    return ops.mean(ops.square(ops.cast(y_pred, "float32") - ops.cast(y_true, "float32")))


def _wrap_in_model(layer_cls, init_kwargs, input_shape, input_data, call_kwargs):
    inputs = _symbolic_inputs(input_data)
    outputs = layer_cls(**init_kwargs)(inputs, **call_kwargs)
    return keras.Model(inputs, outputs)


def run_loss_test(
    loss_cls,
    init_kwargs: dict,
    y_true,
    y_pred,
    expected: float | None = None,
    atol: float = 1e-5,
    run_mixed_precision_check: bool = True,
):
    """Checks every keras-priors loss must pass.

    Computes the loss (and compares with ``expected`` when given), checks it is
    a finite float32 scalar, round-trips ``get_config``/``from_config`` and a
    ``.keras`` file of a model compiled with it, and checks that a float16
    ``y_pred`` still gives a float32 loss.

    Returns:
        The loss value as a Python float.
    """
    loss = loss_cls(**init_kwargs)
    value = loss(y_true, y_pred)
    assert tuple(value.shape) == (), f"{loss_cls.__name__}: loss is not a scalar, shape {value.shape}"
    value_np = float(ops.convert_to_numpy(value))
    assert np.isfinite(value_np), f"{loss_cls.__name__}: loss is {value_np}"
    if expected is not None:
        np.testing.assert_allclose(value_np, expected, atol=atol, err_msg=f"{loss_cls.__name__} value")

    # === get_config / from_config ===
    config = loss.get_config()
    revived = loss_cls.from_config(config)
    np.testing.assert_allclose(
        float(ops.convert_to_numpy(revived(y_true, y_pred))), value_np, atol=atol, err_msg="from_config"
    )
    revived_serialized = keras.losses.deserialize(keras.losses.serialize(loss))
    assert type(revived_serialized) is loss_cls, "keras.losses.serialize/deserialize lost the class"

    # === .keras file with the loss compiled in ===
    y_pred_np = np.asarray(ops.convert_to_numpy(y_pred))
    inp = keras.Input(shape=y_pred_np.shape[1:])
    model = keras.Model(inp, keras.layers.Identity()(inp))
    model.compile(optimizer="sgd", loss=loss)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "model.keras")
        model.save(path)
        reloaded = keras.saving.load_model(path)
    assert isinstance(reloaded.loss, loss_cls), f"{loss_cls.__name__}: compiled loss not restored from .keras"

    # === Mixed precision: float16 predictions, float32 loss ===
    if run_mixed_precision_check:
        v16 = loss(y_true, ops.cast(y_pred, "float16"))
        assert keras.backend.standardize_dtype(v16.dtype) == "float32", f"{loss_cls.__name__}: float16 y_pred gave a {v16.dtype} loss"
        assert np.isfinite(float(ops.convert_to_numpy(v16)))
    return value_np


def dict_dataset(d: dict, batch_size: int = 16, drop=()):
    """A batched ``tf.data.Dataset`` of dicts from a dict of arrays, without the keys in ``drop``."""
    import tensorflow as tf

    d = {k: v for k, v in d.items() if k not in drop}
    return tf.data.Dataset.from_tensor_slices(d).batch(batch_size)


def prior_loss_and_gradient(model, prior, batch, variable):
    """``prior``'s loss term on ``model(batch, training=True)`` and its gradient w.r.t. ``variable``.

    The gradient is taken the way ``fit`` takes it on each backend (a
    ``GradientTape`` on TensorFlow; ``jax.grad`` of ``stateless_call`` on JAX),
    so it differentiates through the gradients the prior asked for (double
    backprop).
    """
    backend = keras.backend.backend()
    batch = {k: ops.convert_to_tensor(v) for k, v in batch.items()}

    def term(outputs):
        return ops.sum(list(prior.loss_terms(batch, outputs, model.num_classes).values()))

    if backend == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            value = term(model(batch, training=True))
        return float(value), np.asarray(tape.gradient(value, variable.value))
    if backend == "torch":
        import torch

        value = term(model(batch, training=True))
        (g,) = torch.autograd.grad(value, variable.value)
        return float(value), g.detach().cpu().numpy()
    import jax

    if not model.built:
        model(batch)
    index = [id(v) for v in model.trainable_variables].index(id(variable))
    non_trainable = [v.value for v in model.non_trainable_variables]

    def f(trainable):
        outputs, _ = model.stateless_call(trainable, non_trainable, batch, training=True)
        return term(outputs)

    value, grads = jax.value_and_grad(f)([v.value for v in model.trainable_variables])
    return float(value), np.asarray(grads[index])


def finite_difference(fn, variable, entries, eps: float = 1e-3):
    """Central differences of ``fn()`` w.r.t. the given flat ``entries`` of ``variable``."""
    base = np.asarray(ops.convert_to_numpy(variable)).astype("float32")
    out = []
    for i in entries:
        values = []
        for sign in (1, -1):
            w = base.copy().reshape(-1)
            w[i] += sign * eps
            variable.assign(w.reshape(base.shape))
            values.append(fn())
        out.append((values[0] - values[1]) / (2 * eps))
    variable.assign(base)
    return np.array(out)


def kakapo_batch(n: int = 8, seed: int = 3, image_size: int = 32) -> dict:
    """One numpy batch of kakapo training images with the keys the mask priors need."""
    from keras_priors.data import kakapo

    data = kakapo("train", image_size=image_size, num_samples=n, batch_size=None, seed=seed, as_numpy=True)
    return {k: data[k] for k in ("image", "object_mask", "label")}


def tiny_zoo_model(priors, num_classes: int = 2):
    """``resnet_tiny`` on 32 px images with ``priors``: the model the prior tests train."""
    from keras_priors import zoo

    return zoo.build("resnet_tiny", num_classes=num_classes, input_shape=(32, 32, 3), priors=priors)


def assert_export_serves_the_classifier(model, images, directory):
    """Export ``model`` (TensorFlow) into ``directory``; the SavedModel takes the image alone and serves its logits.

    Checks that the served endpoint gives ``logits`` and ``probabilities`` equal to ``model.predict`` to
    1e-5, and that the inference model has only the ``image`` input and none of the gradients or features
    that gradient priors add to the training outputs (``"<prior>/gradient"``, ``"<prior>/features"``).
    """
    import tensorflow as tf

    loaded = tf.saved_model.load(model.export(str(directory), verbose=False))
    served = loaded.serve({"image": tf.constant(images)})
    assert sorted(served) == ["logits", "probabilities"], sorted(served)
    np.testing.assert_allclose(served["logits"].numpy(), np.asarray(model.predict(images, verbose=0)["logits"]),
                               atol=1e-5)
    inference = model.inference_model()
    assert list(inference.input) == ["image"], list(inference.input)
    assert not [k for k in inference.output if "/" in k], list(inference.output)
