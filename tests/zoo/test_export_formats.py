"""ONNX and LiteRT export: served with onnxruntime and the LiteRT interpreter, compared with Keras.

Each test skips only when the optional package it needs is absent (``pip install "keras-priors[export]"``).
The ``parity`` tests also run on JAX and torch (``KERAS_BACKEND=torch pytest -m parity``): ONNX is written
from TensorFlow and torch, LiteRT from TensorFlow; another backend must raise an error that names it.
"""
import json
import os

import keras
import numpy as np
import pytest

from keras_priors import priors, zoo

from harness import file_tree

tf = pytest.importorskip("tensorflow")

SUFFIX = {"onnx": ".onnx", "litert": ".tflite"}
SERVED = ["cam", "cam_upsampled", "logits", "probabilities"]


#: The backends each format is written from (what the error on any other backend names).
WRITTEN_FROM = {"onnx": ("tensorflow", "torch"), "litert": ("tensorflow",)}


def _needs(format, serve=True):
    """Skip unless this backend writes ``format`` and the packages that write (with ``serve``: load) it are here."""
    backend = keras.backend.backend()
    if backend not in WRITTEN_FROM[format]:
        pytest.skip(f"format={format!r} is not written from the {backend} backend (see "
                    f"test_a_format_this_backend_cannot_write_names_the_backends_that_can)")
    writer = {"tensorflow": ["tf2onnx", "onnx"], "torch": ["onnx"]}[backend]
    for name in {"onnx": writer + (["onnxruntime"] if serve else []),
                 "litert": ["ai_edge_litert"] if serve else []}[format]:
        pytest.importorskip(name)


def _serve(path, format, inputs):
    """{output name: array} from the exported file, loaded by its runtime, on the named ``inputs``."""
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


def _dropped_and_kept_layers(model):
    """Names of the network's layers the inference model drops (training-only heads) and keeps."""
    kept = {layer.name for layer in model.inference_model().layers}
    everything = {layer.name for layer in model.network.layers}
    return everything - kept, kept


@pytest.mark.parity
@pytest.mark.parametrize("format", ["onnx", "litert"])
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
    served = _serve(path, format, {"image": images})
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
@pytest.mark.parametrize("format", ["onnx", "litert"])
def test_dual_input_export_takes_the_box(kakapo32, tmp_path, format):
    _needs(format)
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.DualInput()])
    path = str(tmp_path / ("dual" + SUFFIX[format]))
    model.export(path, format=format, verbose=False)
    batch = {"image": np.asarray(kakapo32["image"][:3], "float32"),
             "part_box": np.asarray(kakapo32["part_box"][:3], "float32")}
    served = _serve(path, format, batch)
    np.testing.assert_allclose(served["logits"], keras.ops.convert_to_numpy(model(batch)["logits"]), atol=1e-4, rtol=0)


@pytest.mark.parity
def test_a_format_this_backend_cannot_write_names_the_backends_that_can(tmp_path):
    backend = keras.backend.backend()
    cannot = [f for f, backends in WRITTEN_FROM.items() if backend not in backends]
    cannot += ["tf_saved_model"] if backend == "torch" else []
    if not cannot:
        pytest.skip(f"the {backend} backend writes every format")
    model = _tiny()
    for format in cannot:
        path = str(tmp_path / ("m" + SUFFIX.get(format, "")))
        if format == "tf_saved_model":  # Keras's SavedModel export on torch needs torch_xla
            with pytest.raises(NotImplementedError, match=r"TensorFlow or JAX backend.*backend='torch'.*'onnx'"):
                model.export(path, format=format, verbose=False)
        else:
            works = " or ".join(WRITTEN_FROM[format])
            with pytest.raises(ValueError, match=rf"Expected the {works} backend to export format='{format}'.*"
                                                 rf"Received: backend '{backend}', which exports"):
                model.export(path, format=format, verbose=False)
        assert os.listdir(tmp_path) == []


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

    monkeypatch.setattr(export_mod, "_onnx_bytes" if format == "onnx" else "_litert_bytes", boom)
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
