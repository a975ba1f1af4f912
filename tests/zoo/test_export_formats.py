"""Every export format from every backend: served with TensorFlow, onnxruntime and the LiteRT interpreter.

Each test skips only when the optional package it needs is absent (``pip install "keras-priors[export]"``).
The ``parity`` tests also run on JAX and torch (``KERAS_BACKEND=torch pytest -m parity``). A backend writes
some formats itself (``NATIVE``); the others are written by a TensorFlow child process from the model's
``.keras`` archive (``keras_priors.zoo._tf_export``), and must serve the same numbers.
"""
import json
import os

import keras
import numpy as np
import pytest

from keras_priors import priors, zoo

from harness import file_tree, serve_export

tf = pytest.importorskip("tensorflow")

SUFFIX = {"onnx": ".onnx", "litert": ".tflite", "tf_saved_model": ""}
SERVED = ["cam", "cam_upsampled", "logits", "probabilities"]
FORMATS = ["tf_saved_model", "onnx", "litert"]

#: The backends that write each format themselves; from the others, TensorFlow writes it in a child process.
NATIVE = {"tf_saved_model": ("tensorflow", "jax"), "onnx": ("tensorflow", "torch"), "litert": ("tensorflow",)}


def _needs(format, serve=True):
    """Skip unless the packages that write ``format`` from this backend (with ``serve``: load it) are here."""
    backend = keras.backend.backend()
    through_tf = backend not in NATIVE[format]
    writer = {"onnx": ["tf2onnx", "onnx"] if through_tf or backend == "tensorflow" else ["onnx"]}.get(format, [])
    for name in writer + ({"onnx": ["onnxruntime"], "litert": ["ai_edge_litert"]}.get(format, []) if serve else []):
        pytest.importorskip(name)


def _dropped_and_kept_layers(model):
    """Names of the network's layers the inference model drops (training-only heads) and keeps."""
    kept = {layer.name for layer in model.inference_model().layers}
    everything = {layer.name for layer in model.network.layers}
    return everything - kept, kept


@pytest.mark.parity
@pytest.mark.parametrize("format", FORMATS)
def test_export_serves_the_classifier_and_cam_like_keras(kakapo32, tmp_path, format):
    _needs(format)
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                      priors=[priors.CAMSuppression(), priors.MaskDecoder(levels=2, filters=8),
                              priors.Auxiliary(num_classes=5)])
    assert set(model.training_only) == {"part_mask", "aux_logits"} <= set(model.network.output)  # heads to drop
    path = str(tmp_path / ("m" + SUFFIX[format]))
    assert model.export(path, format=format, verbose=False) == path
    assert sorted(os.listdir(tmp_path)) == ["m" + SUFFIX[format]]  # no temporary file left behind
    images = np.asarray(kakapo32["image"][:5], "float32")  # a batch size the export never saw
    served = serve_export(path, format, {"image": images})
    assert sorted(served) == SERVED  # the training-only heads are not outputs
    expected = {k: keras.ops.convert_to_numpy(v) for k, v in model({"image": images}, training=False).items()}
    from keras_priors.explain.resize_cam import resize_cam

    expected = {"logits": expected["logits"], "probabilities": tf.nn.softmax(expected["logits"]).numpy(),
                "cam": expected["cam"], "cam_upsampled": np.asarray(resize_cam(expected["cam"], (32, 32)))}
    for name in SERVED:
        np.testing.assert_allclose(served[name], expected[name], atol=1e-4, rtol=0, err_msg=name)
    assert served["cam_upsampled"].shape == (5, 32, 32, 2)
    _assert_no_weights_of_the_heads(model, path, format)


def _assert_no_weights_of_the_heads(model, path, format):
    """The file holds the classifier's weights and no layer, tensor or weight of the training-only heads."""
    dropped, kept = _dropped_and_kept_layers(model)
    n_kept = model.inference_model().count_params()
    n_heads = model.network.count_params() - n_kept
    if format == "tf_saved_model":
        # Variables, not folded constants: exactly the classifier's weights. (Their names carry no layer name
        # when JAX wrote the SavedModel, through jax2tf.)
        with open(os.path.join(path, "keras_priors_export.json")) as f:
            assert json.load(f)["endpoints"] == ["serve", "cam"]
        assert sum(int(np.prod(v.shape)) for v in tf.saved_model.load(path).variables) == n_kept < n_kept + n_heads
        return
    if format == "onnx":
        import onnx

        proto = onnx.load(path)
        names = " ".join([n.name for n in proto.graph.node] + [t.name for t in proto.graph.initializer])
        n_constants = sum(int(np.prod(t.dims)) for t in proto.graph.initializer)
        marker = json.loads({p.key: p.value for p in proto.metadata_props}["keras_priors_export"])
        assert marker["format"] == "onnx" and marker["outputs"] == ["logits", "probabilities", "cam", "cam_upsampled"]
    else:
        from tensorflow.lite.tools import flatbuffer_utils

        tflite = flatbuffer_utils.read_model(path)
        names = " ".join(t.name.decode() for g in tflite.subgraphs for t in g.tensors)
        constants = {t.buffer: int(np.prod(t.shape)) for g in tflite.subgraphs for t in g.tensors
                     if tflite.buffers[t.buffer].data is not None and len(tflite.buffers[t.buffer].data)}
        n_constants = sum(constants.values())
    assert dropped and not [layer for layer in dropped if layer in names], dropped
    assert [layer for layer in kept if layer in names]  # layer names do reach the file: the check can fail
    # BatchNorm folds into the convolutions: at most the classifier's weights, plus the CAM resize matrices
    # (2 x 32 x 4); the heads' weights would not fit in that slack.
    slack = 2 * 32 * 4
    assert 0 < n_constants <= n_kept + slack < n_kept + n_heads, (n_constants, n_kept, n_heads)


@pytest.mark.parity
@pytest.mark.parametrize("format", FORMATS)
def test_dual_input_export_takes_the_box(kakapo32, tmp_path, format):
    _needs(format)
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.DualInput()])
    path = str(tmp_path / ("dual" + SUFFIX[format]))
    model.export(path, format=format, verbose=False)
    batch = {"image": np.asarray(kakapo32["image"][:3], "float32"),
             "part_box": np.asarray(kakapo32["part_box"][:3], "float32")}
    served = serve_export(path, format, batch)
    np.testing.assert_allclose(served["logits"], keras.ops.convert_to_numpy(model(batch)["logits"]), atol=1e-4, rtol=0)


@pytest.mark.parity
def test_through_tensorflow_checks_before_any_work_and_leaves_nothing_on_failure(tmp_path, monkeypatch):
    # Called directly, the TensorFlow child path runs from every backend, TensorFlow included.
    from keras_priors.zoo import _tf_export
    from keras_priors.zoo.export import _export_through_tensorflow

    model = _tiny()
    user = tmp_path / "user.tflite"
    user.write_bytes(b"mine")
    with pytest.raises(FileExistsError, match="user.tflite"):
        _export_through_tensorflow(model, str(user), "litert", verbose=False, overwrite=False)
    monkeypatch.setattr(_tf_export.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ImportError, match=r"format='onnx' from the \w+ backend writes it in a TensorFlow process.*"
                                          r"tensorflow, tf2onnx, onnx"):
        _export_through_tensorflow(model, str(tmp_path / "m.onnx"), "onnx", verbose=False, overwrite=False)
    monkeypatch.undo()
    # A class the child cannot import: refused before any work.
    monkeypatch.setattr(_tf_export, "_modules_of", lambda m: {"__main__": None, "keras_priors.zoo.prior_model": None})
    with pytest.raises(ValueError, match=r"importable modules.*Received: classes defined in __main__"):
        _export_through_tensorflow(model, str(tmp_path / "sm"), "tf_saved_model", verbose=False, overwrite=False)
    # The child fails (a module it cannot import): the error carries what it said; nothing is left behind.
    monkeypatch.setattr(_tf_export, "_modules_of", lambda m: {"keras_priors_no_such_module": None})
    with pytest.raises(RuntimeError, match=r"(?s)through TensorFlow failed.*keras_priors_no_such_module"):
        _export_through_tensorflow(model, str(tmp_path / "sm"), "tf_saved_model", verbose=False, overwrite=False)
    assert os.listdir(tmp_path) == ["user.tflite"] and user.read_bytes() == b"mine"


# === The file rules: never delete a user's file ===
def _tiny():
    return zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3))


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_refuses_a_user_file_a_folder_and_a_link(tmp_path, format):
    _needs(format, serve=False)
    model = _tiny()
    user = tmp_path / ("user" + SUFFIX[format])
    user.write_bytes(b"my own model")
    folder = tmp_path / ("folder" + SUFFIX[format])
    folder.mkdir()
    link = tmp_path / ("link" + SUFFIX[format])
    link.symlink_to(user)
    before = file_tree(str(tmp_path))
    for target, what in ((user, "not a .* model written by keras_priors"), (folder, "a folder"),
                         (link, "a symbolic link")):
        with pytest.raises(FileExistsError, match=rf"filepath=.*{target.name}.*{what}.*overwrite"):
            model.export(str(target), format=format, verbose=False)
    assert file_tree(str(tmp_path)) == before and os.path.islink(link)
    assert sorted(os.listdir(tmp_path)) == sorted([user.name, folder.name, link.name])


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_replaces_its_own_export(tmp_path, format):
    _needs(format, serve=False)
    model = _tiny()
    path = tmp_path / ("m" + SUFFIX[format])
    model.export(str(path), format=format, verbose=False)
    first = os.stat(path).st_ino
    model.export(str(path), format=format, verbose=False)  # our earlier export: replaced without overwrite
    assert sorted(os.listdir(tmp_path)) == [path.name] and os.stat(path).st_ino != first
    from keras_priors.zoo.export import _read_file_marker

    assert _read_file_marker(str(path), format)["format"] == format
    assert _read_file_marker(str(path), "litert" if format == "onnx" else "onnx") is None  # the other format's


def test_overwrite_moves_a_user_file_aside(tmp_path):
    _needs("onnx", serve=False)  # the swap is the same code for both formats; ONNX is the faster to write
    user = tmp_path / "user.onnx"
    user.write_bytes(b"precious")
    with pytest.warns(UserWarning, match=r"moved to .*user.onnx.replaced-"):
        _tiny().export(str(user), format="onnx", verbose=False, overwrite=True)
    backups = [n for n in os.listdir(tmp_path) if n.startswith("user.onnx.replaced-")]
    assert [(tmp_path / b).read_bytes() for b in backups] == [b"precious"]
    assert sorted(os.listdir(tmp_path)) == sorted(["user.onnx"] + backups)
    from keras_priors.zoo.export import _read_file_marker

    assert _read_file_marker(str(user), "onnx")["format"] == "onnx"


@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_failed_export_leaves_nothing(tmp_path, monkeypatch, format):
    _needs(format, serve=False)
    import keras_priors.zoo.export as export_mod

    def boom(*a, **k):
        raise RuntimeError("converter failed")

    backend = keras.backend.backend()
    if backend in NATIVE[format]:  # the writer this backend runs in this process
        writer = "_litert_bytes" if format == "litert" else "_onnx_bytes_torch" if backend == "torch" else "_onnx_bytes"
        monkeypatch.setattr(export_mod, writer, boom)
    else:  # the TensorFlow child process
        from keras_priors.zoo import _tf_export

        monkeypatch.setattr(_tf_export, "export_through_tensorflow", boom)
    with pytest.raises(RuntimeError, match="converter failed"):
        _tiny().export(str(tmp_path / ("m" + SUFFIX[format])), format=format, verbose=False)
    assert os.listdir(tmp_path) == []


def test_bad_format_suffix_and_arguments_are_named():
    model = _tiny()
    with pytest.raises(ValueError, match=r"Expected `format` to be one of 'tf_saved_model', 'onnx', 'litert'.*"
                                         r"format='openvino'"):
        model.export("x", format="openvino")
    with pytest.raises(ValueError, match=r"`filepath` to end with '.tflite' for format='litert'.*model.onnx"):
        model.export("model.onnx", format="litert")
    with pytest.raises(ValueError, match=r"`filepath` to end with '.onnx'"):
        model.export("model_dir", format="onnx")
    with pytest.raises(TypeError, match="Received: input_signature"):
        model.export("model_dir", input_signature=None)
