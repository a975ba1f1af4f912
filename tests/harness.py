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
        assert keras.backend.standardize_dtype(v16.dtype) == "float32", (
            f"{loss_cls.__name__}: float16 y_pred gave a {v16.dtype} loss")
        assert np.isfinite(float(ops.convert_to_numpy(v16)))
    return value_np


def dict_dataset(d: dict, batch_size: int = 16, drop=()):
    """A batched ``tf.data.Dataset`` of dicts from a dict of arrays, without the keys in ``drop``."""
    import tensorflow as tf

    d = {k: v for k, v in d.items() if k not in drop}
    return tf.data.Dataset.from_tensor_slices(d).batch(batch_size)


def file_tree(path) -> dict:
    """``{relative path: bytes}`` of every file under ``path`` (to check that nothing on disk changed)."""
    out = {}
    for root, _, files in os.walk(path):
        for f in files:
            full = os.path.join(root, f)
            with open(full, "rb") as fh:
                out[os.path.relpath(full, path)] = fh.read()
    return out


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


def serve_export(path, format, inputs):
    """{output name: array} from the export, loaded by its runtime, on the named ``inputs``."""
    if format == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)
        tensors = {k: tf.constant(v) for k, v in inputs.items()}
        return {k: v.numpy() for k, v in {**loaded.serve(tensors), **loaded.cam(tensors)}.items()}
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        assert sorted(i.name for i in session.get_inputs()) == sorted(inputs)
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, inputs)))
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    assert list(interpreter.get_signature_list()) == ["serve"]
    assert sorted(interpreter.get_signature_list()["serve"]["inputs"]) == sorted(inputs)
    return interpreter.get_signature_runner("serve")(**inputs)


def run_prior_test(
    prior_cls,
    init_kwargs: dict,
    batch: dict,
    outputs: dict | None = None,
    expected_loss: dict | None = None,
    expected_classification_loss: float | None = None,
    expected_training_only=(),
    num_classes: int = 2,
    run_fit_check: bool = True,
    run_export_check: bool = True,
    run_saving_check: bool = True,
    atol: float = 1e-5,
):
    """Run the checks every prior must pass, as ``run_layer_test`` does for a layer.

    1. Config: ``get_config``/``from_config`` and Keras serialization round trips
       give the same class and config.
    2. Loss terms: on the hand-made ``outputs`` (a dict of arrays standing for
       the model's outputs), ``prior.loss_terms(batch, outputs)`` equals
       ``expected_loss`` (``{term: number}``, weighted; ``{}`` for a prior with
       no terms), and ``classification_loss`` equals
       ``expected_classification_loss`` for a prior that replaces it. The
       weight is applied by the base class, not by the prior.
    3. Model: ``tiny_zoo_model([prior])`` (resnet_tiny, 32 px) has exactly the
       training-only outputs ``expected_training_only``; its loss on ``batch``
       is the classification loss plus the prior's weighted terms; for each
       key the prior declares, a batch without it fails before the first step
       with an error naming the prior and the key.
    4. Fit: one epoch on ``batch`` logs each term as ``<term>_loss``, finite.
    5. Export: the inference model has every output but the training-only
       ones (plus ``probabilities``); on TensorFlow the SavedModel serves the
       same logits from the inputs alone.
    6. Saving: ``.keras`` save and reload with ``safe_mode=True`` (no
       ``custom_objects``) gives the same prior config and the same outputs.

    Args:
        prior_cls: the prior class.
        init_kwargs: its constructor arguments.
        batch: a dict of numpy arrays with ``image`` (B, 32, 32, 3), ``label``
            and the keys the prior needs.
        outputs: hand-made model outputs for the loss check.
        expected_loss: the weighted loss terms on ``batch`` and ``outputs``,
            computed by hand.
        expected_classification_loss: for a prior that replaces the
            classification loss, its value on ``batch`` and ``outputs``.
        expected_training_only: the output names the prior makes training-only.
        num_classes: primary classes of the tiny model (and of the loss check).

    Returns:
        The trained ``PriorModel``.
    """
    from keras_priors.priors import Prior
    from keras_priors.zoo.prior_model import classification_loss

    owner = prior_cls.__name__
    prior = prior_cls(**init_kwargs)
    assert isinstance(prior, Prior), f"{owner} is not a keras_priors.priors.Prior"

    # === Config ===
    config = prior.get_config()
    assert prior_cls.from_config(config).get_config() == config, f"{owner}: config changed on from_config"
    revived = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(prior))
    assert type(revived) is prior_cls, f"{owner}: Keras serialization gave {type(revived).__name__}"
    assert revived.get_config() == config, f"{owner}: config changed on Keras serialization"

    # === Loss terms against hand-computed numbers ===
    assert type(prior).loss_terms is Prior.loss_terms, (
        f"{owner} overrides loss_terms; override unweighted_loss_terms and let the base class apply `weight`")
    tensors = {k: ops.convert_to_tensor(v) for k, v in batch.items()}
    if expected_loss is not None:
        assert outputs is not None, "give the hand-made `outputs` the expected loss was computed on"
        hand = {k: ops.convert_to_tensor(v) for k, v in outputs.items()}
        terms = prior.loss_terms(tensors, hand, num_classes)
        assert sorted(terms) == sorted(expected_loss), (
            f"{owner}: loss terms {sorted(terms)}, expected {sorted(expected_loss)}")
        assert sorted(terms) == sorted(prior.term_names()), (
            f"{owner}: terms {sorted(terms)} but term_names() {prior.term_names()}")
        for name, value in terms.items():
            assert tuple(value.shape) == (), f"{owner}: term {name!r} is not a scalar, shape {value.shape}"
            np.testing.assert_allclose(float(ops.convert_to_numpy(value)), expected_loss[name], atol=atol,
                                       err_msg=f"{owner}: loss term {name!r}")
    if expected_classification_loss is not None:
        assert prior.replaces_classification_loss, f"{owner} does not replace the classification loss"
        hand = {k: ops.convert_to_tensor(v) for k, v in outputs.items()}
        np.testing.assert_allclose(float(ops.convert_to_numpy(prior.classification_loss(tensors, hand, num_classes))),
                                   expected_classification_loss, atol=atol, err_msg=f"{owner}: classification loss")

    # === The model: training-only outputs, total loss, keys check ===
    model = tiny_zoo_model([prior], num_classes=num_classes)
    assert sorted(model.training_only) == sorted(expected_training_only), (
        f"{owner}: training-only outputs {sorted(model.training_only)}, expected {sorted(expected_training_only)}")
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    y_pred = model(tensors, training=False)
    terms = prior.loss_terms(tensors, y_pred, num_classes)
    if prior.replaces_classification_loss:
        cls_loss = prior.classification_loss(tensors, y_pred, num_classes)
    else:
        cls_loss = classification_loss(tensors["label"], y_pred["logits"], num_classes)
    want = float(ops.convert_to_numpy(cls_loss)) + sum(float(ops.convert_to_numpy(v)) for v in terms.values())
    got = float(ops.convert_to_numpy(model.compute_loss(x=tensors, y_pred=y_pred)))
    np.testing.assert_allclose(got, want, rtol=1e-5, err_msg=f"{owner}: model loss is not classification + terms")
    needed = list(dict.fromkeys([*prior.required_keys, *prior.data_spec()]))
    for key in needed:
        assert key in batch, f"give `batch` the key {key!r} that {owner} needs"
        without = {k: v for k, v in batch.items() if k != key}
        try:
            model.fit(without, epochs=1, batch_size=len(batch["image"]), verbose=0)
        except ValueError as e:
            assert key in str(e) and owner in str(e), (
                f"{owner}: the error for a missing {key!r} does not name both: {e}")
        else:
            raise AssertionError(f"{owner}: a batch without {key!r} trained")
        assert int(model.optimizer.iterations) == 0, f"{owner}: a step ran before the missing {key!r} was reported"

    # === Fit ===
    if run_fit_check:
        history = model.fit(dict(batch), epochs=1, batch_size=len(batch["image"]), verbose=0).history
        assert np.isfinite(history["loss"][-1]), f"{owner}: training loss {history['loss'][-1]}"
        for term in prior.term_names():
            assert np.isfinite(history[f"{term}_loss"][-1]), f"{owner}: {term}_loss not logged or not finite"

    # === Export: training-only outputs dropped ===
    inputs = {k: batch[k] for k in model.input_keys}
    inference = model.inference_model()
    want_outputs = (set(model.network.output) - set(model.training_only)) | {"probabilities"}
    assert set(inference.output) == want_outputs, (
        f"{owner}: inference outputs {sorted(inference.output)}, expected {sorted(want_outputs)}")
    reference = _to_numpy(model(inputs, training=False))
    if run_export_check and keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        with tempfile.TemporaryDirectory() as tmp:
            loaded = tf.saved_model.load(model.export(os.path.join(tmp, "exported"), verbose=False))
            served = loaded.serve({k: tf.constant(v) for k, v in inputs.items()})
            assert not set(served) & set(model.training_only), f"{owner}: export serves {sorted(served)}"
            np.testing.assert_allclose(served["logits"].numpy(), reference["logits"], atol=1e-5,
                                       err_msg=f"{owner}: exported logits")

    # === .keras save and reload, safe_mode=True ===
    if run_saving_check:
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "model.keras")
            model.save(path)
            reloaded = keras.saving.load_model(path, safe_mode=True)
        assert [type(p) for p in reloaded.priors] == [prior_cls], f"{owner}: reloaded priors {reloaded.priors}"
        assert reloaded.priors[0].get_config() == prior.get_config(), f"{owner}: prior config changed on reload"
        assert sorted(reloaded.training_only) == sorted(model.training_only)
        _assert_tree_close(reference, reloaded(inputs, training=False), 1e-5, 1e-5, f"{owner} .keras save/load")
    return model


def prior_batch(labels, seed: int = 0, **keys) -> dict:
    """A batch for ``run_prior_test``: random 32 px images in [0, 1], ``labels``, and the given keys as
    float32/int32."""
    labels = np.asarray(labels, "int32")
    rng = np.random.default_rng(seed)
    batch = {"image": rng.uniform(0.0, 1.0, (len(labels), 32, 32, 3)).astype("float32"), "label": labels}
    for key, value in keys.items():
        value = np.asarray(value)
        batch[key] = value.astype("int32" if np.issubdtype(value.dtype, np.integer) else "float32")
    return batch


def half_masks(*halves) -> np.ndarray:
    """(B, 32, 32, 1) masks, one per name: ``"top"``, ``"left"``, ``"full"`` or ``"empty"``."""
    out = np.zeros((len(halves), 32, 32, 1), "float32")
    for i, half in enumerate(halves):
        if half == "top":
            out[i, :16] = 1
        elif half == "left":
            out[i, :, :16] = 1
        elif half == "full":
            out[i] = 1
        elif half != "empty":
            raise ValueError(f"half_masks: Expected 'top', 'left', 'full' or 'empty'. Received: {half!r}")
    return out
