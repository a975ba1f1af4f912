"""Inference-model stripping and export: TF SavedModel, ONNX and LiteRT.

The output selection is :func:`inference_model` (what is kept) and
:func:`serving_outputs` (what every format serves from it); the writers
only differ in how they write the file.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import time
import warnings

import keras
from keras import ops


def inference_model(model, include_cam: bool = True) -> keras.Model:
    """A functional model without the training-only outputs.

    Inputs are the network's inputs; outputs are every network output except
    those the priors named training-only (``model.training_only``: mask
    decoders, auxiliary heads, ...), plus ``probabilities``; ``cam`` only with
    ``include_cam``. Layers that only training-only outputs use are not part
    of it, so their weights are not exported.
    """
    network = model.network
    outputs = network.output
    logits = outputs["logits"]
    if model.num_classes == 1:
        probs = keras.layers.Activation("sigmoid", name="probabilities", dtype="float32")(logits)
    else:
        probs = keras.layers.Activation("softmax", name="probabilities", dtype="float32")(logits)
    dropped = set(model.training_only) | (set() if include_cam else {"cam"})
    kept = {k: v for k, v in outputs.items() if k not in dropped}
    kept["probabilities"] = probs
    return keras.Model(network.input, kept, name=f"{model.name}_inference")


#: A file every export of this library writes, so that a later export recognises the folder as its own.
MARKER = "keras_priors_export.json"
#: What a SavedModel folder written by :func:`export_saved_model` holds; anything else is a user's file.
_SAVED_MODEL_ENTRIES = {"saved_model.pb", "variables", "assets", "fingerprint.pb", "keras_metadata.pb", MARKER}


def _is_our_export(path: str) -> bool:
    """True if ``path`` is a folder holding only a SavedModel this library wrote (marker included)."""
    if not os.path.isdir(path) or os.path.islink(path):
        return False
    entries = set(os.listdir(path))
    return MARKER in entries and "saved_model.pb" in entries and entries <= _SAVED_MODEL_ENTRIES


def _check_destination(filepath: str, overwrite: bool) -> str:
    """What ``filepath`` is now: ``"new"``, ``"empty"``, ``"ours"`` or ``"foreign"``; raise if it may not be
    replaced."""
    if not os.path.lexists(filepath):
        return "new"
    if os.path.isdir(filepath) and not os.path.islink(filepath):
        if not os.listdir(filepath):
            return "empty"
        if _is_our_export(filepath):
            return "ours"
        what = "a folder with files that are not a SavedModel written by keras_priors"
    else:
        what = "an existing file"
    if not overwrite:
        raise FileExistsError(
            f"Expected `filepath` to be a new or empty folder, or a SavedModel written by keras_priors. "
            f"Received: filepath={filepath!r}, {what}; nothing was written. Choose another path or pass "
            f"overwrite=True (--overwrite) to move it aside to a backup beside it."
        )
    return "foreign"


def _backup_name(filepath: str) -> str:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    candidate, n = f"{filepath}.replaced-{stamp}", 1
    while os.path.lexists(candidate):
        n += 1
        candidate = f"{filepath}.replaced-{stamp}-{n}"
    return candidate


def _replace_moving_aside(tmp: str, filepath: str, aside: str) -> str:
    """Move ``filepath`` to ``aside``, then ``tmp`` to ``filepath``; on failure put ``filepath`` back.
    Returns ``aside``."""
    os.replace(filepath, aside)
    try:
        os.replace(tmp, filepath)
    except BaseException:
        os.replace(aside, filepath)
        raise
    return aside


def _swap_into_place(tmp: str, filepath: str, overwrite: bool) -> str | None:
    """Move the finished export ``tmp`` to ``filepath``; return the backup path of a replaced foreign entry."""
    state = _check_destination(filepath, overwrite)
    if state in ("new", "empty"):
        os.replace(tmp, filepath)  # rename(2) replaces an empty folder in one step
        return None
    aside = _replace_moving_aside(tmp, filepath, _backup_name(filepath) if state == "foreign" else tmp + ".old")
    if state == "ours":  # our own previous export: nothing of the user's is in it
        shutil.rmtree(aside, ignore_errors=True)
        return None
    return aside


#: The CAM outputs of :func:`serving_outputs`; the SavedModel serves them from its ``cam`` endpoint.
CAM_OUTPUTS = ("cam", "cam_upsampled")


def serving_outputs(inf, inputs, image_hw) -> dict:
    """What every export format serves: ``inf``'s outputs on ``inputs`` (inference mode).

    Every output of ``inf`` (``logits``, ``probabilities`` and any output no
    prior declared training-only), with ``"cam"`` as float32 at feature
    resolution plus ``"cam_upsampled"`` (``resize_cam`` to ``image_hw``) when
    ``inf`` has a CAM output. ``inf`` is an :func:`inference_model`.
    """
    out = inf(inputs, training=False)
    served = {k: v for k, v in out.items() if k != "cam"}
    if "cam" in out:
        from keras_priors.explain.resize_cam import resize_cam

        c = ops.cast(out["cam"], "float32")
        served["cam"] = c
        served["cam_upsampled"] = resize_cam(c, image_hw)
    return served


def _input_specs(inf):
    """One float32 ``tf.TensorSpec`` per input of ``inf``, named by its key, with a free batch size."""
    import tensorflow as tf

    return {k: tf.TensorSpec((None,) + tuple(v.shape[1:]), tf.float32, name=k) for k, v in inf.input.items()}


def export_saved_model(model, filepath: str, verbose: bool = True, overwrite: bool = False) -> str:
    """Export ``model``'s classifier as a TensorFlow SavedModel, atomically.

    Endpoints:
        ``serve(**inputs) -> {"logits", "probabilities", ...}`` (every output
        of ``inference_model`` but the CAM; training-only outputs are dropped)
        ``cam(**inputs) -> {"cam", "cam_upsampled"}`` (class activation maps
        at feature resolution and resized to the image), when the model has one.

    The SavedModel is written into a temporary folder beside ``filepath`` and
    renamed into place only when complete, so an interrupted export never
    leaves a half-written model. It holds a marker file
    (``keras_priors_export.json``) so that a later export recognises it.

    Args:
        model: a zoo ``PriorModel``.
        filepath: the SavedModel folder. It may be new, an empty folder, or an
            earlier export of this library (replaced). Anything else (a file, a
            folder with other files) raises ``FileExistsError`` before any work,
            unless ``overwrite=True``.
        verbose: print where the model went.
        overwrite: replace an existing file or foreign folder. It is never
            deleted: it is moved aside to ``<filepath>.replaced-<time>``.

    Returns:
        The absolute path of the SavedModel folder.
    """
    if keras.backend.backend() not in _BACKENDS["tf_saved_model"]:
        return _export_through_tensorflow(model, filepath, "tf_saved_model", verbose, overwrite)
    filepath = os.path.abspath(os.fspath(filepath))
    _check_destination(filepath, bool(overwrite))  # fail before any work, with nothing touched

    inf = inference_model(model, include_cam=True)
    specs = _input_specs(inf)
    image_hw = tuple(inf.input["image"].shape[1:3])
    has_cam = "cam" in inf.output

    archive = keras.export.ExportArchive()
    archive.track(inf)

    def serve(inputs):
        out = serving_outputs(inf, inputs, image_hw)
        return {k: v for k, v in out.items() if k not in CAM_OUTPUTS}

    archive.add_endpoint("serve", serve, input_signature=[specs])
    if has_cam:

        def cam(inputs):
            out = serving_outputs(inf, inputs, image_hw)
            return {"cam": out["cam"], "cam_upsampled": out["cam_upsampled"]}

        archive.add_endpoint("cam", cam, input_signature=[specs])

    parent = os.path.dirname(filepath)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        archive.write_out(tmp, verbose=False)
        from keras_priors import __version__

        marker = {"library": "keras_priors", "version": __version__, "model": model.name,
                  "endpoints": ["serve", "cam"] if has_cam else ["serve"]}
        with open(os.path.join(tmp, MARKER), "w") as f:
            json.dump(marker, f, indent=1)
        aside = _swap_into_place(tmp, filepath, bool(overwrite))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # our temporary folder only
        raise
    endpoints = "serve, cam" if has_cam else "serve"
    return _finished(model, filepath, aside, verbose, f"endpoints: {endpoints}")


# === ONNX and LiteRT: one file each ===
#: The formats of :func:`export_model`, named as in Keras 3's ``model.export(filepath, format=...)``.
FORMATS = ("tf_saved_model", "onnx", "litert")
#: The file name ending each single-file format needs (LiteRT's is Keras's own rule).
_SUFFIX = {"onnx": ".onnx", "litert": ".tflite"}
_LABEL = {"tf_saved_model": "TF SavedModel", "onnx": "ONNX", "litert": "LiteRT"}
#: What writing each single-file format imports; ``pip install "keras-priors[export]"`` brings them all
#: (plus onnxruntime and ai-edge-litert, which serve the files).
_NEEDS = {("onnx", "tensorflow"): ("tensorflow", "tf2onnx", "onnx"), ("onnx", "torch"): ("torch", "onnx"),
          ("litert", "tensorflow"): ("tensorflow",)}
#: The backends that write each format in their own process. From the others (Keras's LiteRT export from
#: torch needs litert-torch, its SavedModel export from torch torch_xla), a TensorFlow child process loads the
#: model's ``.keras`` archive and writes it (:mod:`keras_priors.zoo._tf_export`).
_BACKENDS = {"tf_saved_model": ("tensorflow", "jax"), "onnx": ("tensorflow", "torch"), "litert": ("tensorflow",)}
#: The key of the marker an ONNX (``metadata_props``) or LiteRT (model metadata) file of this library carries.
FILE_MARKER = "keras_priors_export"


def export_model(model, filepath, format: str = "tf_saved_model", verbose: bool = True, overwrite: bool = False) -> str:
    """Export ``model``'s classifier and CAM (no training-only heads) in ``format``, atomically.

    Formats (Keras 3's names):

    - ``"tf_saved_model"``: a folder, see :func:`export_saved_model` (endpoints
      ``serve`` and ``cam``).
    - ``"onnx"``: one ``.onnx`` file; inputs named by the model's input keys
      (``image``, and ``part_box`` for a dual-input model), outputs
      ``logits``, ``probabilities``, ``cam`` and ``cam_upsampled``. Serve it
      with ``onnxruntime.InferenceSession(path).run(None, {"image": x})``.
    - ``"litert"``: one ``.tflite`` file with one signature, ``serve``, with
      the same named inputs and outputs. Serve it with
      ``ai_edge_litert.interpreter.Interpreter(model_path=path)
      .get_signature_runner("serve")(image=x)``.

    ``x`` is a float32 ``(batch, H, W, C)`` image in [0, 1], as the model
    takes it; the batch size is free. Every format is written from every
    backend. In process: the SavedModel from TensorFlow or JAX, ONNX from
    TensorFlow (tf2onnx) or torch (``torch.onnx``), LiteRT from TensorFlow.
    Otherwise (SavedModel and LiteRT from torch, ONNX and LiteRT from JAX) a
    TensorFlow child process loads the model's ``.keras`` archive and writes
    it (:mod:`keras_priors.zoo._tf_export`): TensorFlow must be installed, and
    the classes of the model's priors and layers must live in importable
    modules. ONNX and LiteRT need the ``export`` extra
    (``pip install "keras-priors[export]"``).

    The file rules are those of the SavedModel: ``filepath`` may be new or an
    earlier export of this library in the same format (recognised by a marker
    in the file's metadata, ``keras_priors_export``), which is replaced.
    Anything else (a user's file, a folder, a link) raises
    ``FileExistsError`` before any work unless ``overwrite=True``, which moves
    it aside to ``<filepath>.replaced-<time>``; nothing is ever deleted. The
    file is written beside ``filepath`` and renamed into place when complete.

    Args:
        model: a zoo ``PriorModel``.
        filepath: the SavedModel folder, or the ``.onnx`` / ``.tflite`` file.
        format: ``"tf_saved_model"``, ``"onnx"`` or ``"litert"``.
        verbose: print where the model went.
        overwrite: move an existing user's file or folder aside instead of refusing.

    Returns:
        The absolute path of what was written.
    """
    if format not in FORMATS:
        raise ValueError(f"Expected `format` to be one of {', '.join(map(repr, FORMATS))}. Received: format={format!r}")
    if format == "tf_saved_model":
        return export_saved_model(model, filepath, verbose=verbose, overwrite=overwrite)
    return _export_file(model, filepath, format, verbose=verbose, overwrite=overwrite)


def _require(format: str) -> None:
    """Raise a clear error when a package that writes ``format`` on this backend is missing."""
    import importlib.util

    backend = keras.backend.backend()
    missing = [m for m in _NEEDS[format, backend] if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(f"Exporting format={format!r} needs the package(s) {', '.join(missing)}: "
                          f"pip install \"keras-priors[export]\"")


def _read_file_marker(path: str, format: str):
    """The marker dict of an ONNX/LiteRT file this library wrote, else None (never raises)."""
    try:
        if not os.path.isfile(path) or os.path.islink(path) or os.path.getsize(path) >= 2**31:
            return None
        if format == "onnx":
            import onnx

            proto = onnx.load(path, load_external_data=False)
            for prop in proto.metadata_props:
                if prop.key == FILE_MARKER:
                    return json.loads(prop.value)
            return None
        with open(path, "rb") as f:
            if f.read(8)[4:8] != b"TFL3":  # the flatbuffer file identifier of a LiteRT model
                return None
            f.seek(0)
            data = f.read()
        from tensorflow.lite.tools import flatbuffer_utils

        tflite = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
        for entry in tflite.metadata or ():
            name = entry.name.decode() if isinstance(entry.name, bytes) else entry.name
            if name == FILE_MARKER:
                return json.loads(bytes(tflite.buffers[entry.buffer].data).decode())
        return None
    except Exception:  # unreadable, not a model, not ours: all "not ours"
        return None


def _check_file_destination(filepath: str, format: str, overwrite: bool) -> str:
    """What ``filepath`` is now: ``"new"``, ``"ours"`` or ``"foreign"``; raise if it may not be replaced."""
    if not os.path.lexists(filepath):
        return "new"
    if os.path.islink(filepath):
        what = "a symbolic link"
    elif os.path.isdir(filepath):
        what = "a folder"
    elif _read_file_marker(filepath, format) is not None:
        return "ours"
    else:
        what = f"an existing file that is not a {_LABEL[format]} model written by keras_priors"
    if not overwrite:
        raise FileExistsError(
            f"Expected `filepath` to be a new file or a {_LABEL[format]} model written by keras_priors. "
            f"Received: filepath={filepath!r}, {what}; nothing was written. Choose another path or pass "
            f"overwrite=True (--overwrite) to move it aside to a backup beside it."
        )
    return "foreign"


def _swap_file_into_place(tmp: str, filepath: str, format: str, overwrite: bool) -> str | None:
    """Move the finished file ``tmp`` to ``filepath``; return the backup path of a replaced foreign entry."""
    state = _check_file_destination(filepath, format, overwrite)
    if state == "new":
        try:
            os.link(tmp, filepath)  # fails, clobbering nothing, if something appeared at filepath meanwhile
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links
            os.replace(tmp, filepath)
        else:
            os.unlink(tmp)
        return None
    if state == "ours":  # our own earlier export: replaced in one rename
        os.replace(tmp, filepath)
        return None
    return _replace_moving_aside(tmp, filepath, _backup_name(filepath))


def _onnx_bytes(inf, specs, image_hw, marker) -> bytes:
    import onnx
    import tensorflow as tf
    import tf2onnx

    try:  # Keras's own fix-up of tf2onnx for NumPy 2 (what keras.Model.export(format="onnx") calls)
        from keras.src.export.tf2onnx_lib import patch_tf2onnx

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # its `hasattr(np, "object")` probe on NumPy 2
            patch_tf2onnx()
    except ImportError:
        pass
    fn = tf.function(lambda inputs: serving_outputs(inf, inputs, image_hw), input_signature=[specs])
    proto, _ = tf2onnx.convert.from_function(fn, input_signature=[specs])
    onnx.helper.set_model_props(proto, {FILE_MARKER: json.dumps(marker)})
    return proto.SerializeToString()


def _onnx_bytes_torch(inf, shapes, image_hw, marker) -> bytes:
    """ONNX from the torch backend: ``torch.onnx.export`` of the serving function, the batch axis dynamic.

    As Keras 3's ``model.export(format="onnx")`` does on torch when a shape is
    not fully defined: the TorchScript exporter (``dynamo=False``) with
    ``dynamic_axes``, traced on a batch of 2 (no onnxscript needed).
    """
    import onnx
    import torch

    keys = list(shapes)
    names = marker["outputs"]

    class Serving(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inf = inf

        def forward(self, *args):
            out = serving_outputs(self.inf, dict(zip(keys, args)), image_hw)
            return tuple(out[n] for n in names)

    sample = tuple(torch.zeros((2,) + tuple(shapes[k][1:]), dtype=torch.float32) for k in keys)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # shapes read as Python ints: fixed but the batch
        warnings.filterwarnings("ignore", message=r".*[Cc]onstant folding.*")
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        with torch.no_grad():
            torch.onnx.export(Serving().eval(), sample, buffer, input_names=keys, output_names=names,
                              dynamic_axes={n: {0: "batch"} for n in keys + names}, do_constant_folding=True,
                              dynamo=False)
    proto = onnx.load_model_from_string(buffer.getvalue())
    onnx.helper.set_model_props(proto, {FILE_MARKER: json.dumps(marker)})
    return proto.SerializeToString()


def _litert_bytes(inf, specs, image_hw, marker) -> bytes:
    import tensorflow as tf
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    archive = keras.export.ExportArchive()
    archive.track(inf)
    archive.add_endpoint("serve", lambda inputs: serving_outputs(inf, inputs, image_hw), input_signature=[specs])
    with tempfile.TemporaryDirectory(prefix="keras_priors_litert-") as saved:  # our own scratch folder
        archive.write_out(saved, verbose=False)
        converter = tf.lite.TFLiteConverter.from_saved_model(saved, signature_keys=["serve"])
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]  # runs on the plain interpreter
        data = converter.convert()
    tflite = flatbuffer_utils.read_model_from_bytearray(bytearray(data))
    buffer = schema.BufferT()
    buffer.data = list(json.dumps(marker).encode())
    tflite.buffers.append(buffer)
    entry = schema.MetadataT()
    entry.name = FILE_MARKER
    entry.buffer = len(tflite.buffers) - 1
    tflite.metadata = list(tflite.metadata or ()) + [entry]
    return bytes(flatbuffer_utils.convert_object_to_bytearray(tflite))


def _export_file(model, filepath, format: str, verbose: bool = True, overwrite: bool = False) -> str:
    """Write ``model``'s classifier and CAM as one ONNX or LiteRT file (see :func:`export_model`)."""
    filepath = os.path.abspath(os.fspath(filepath))
    suffix = _SUFFIX[format]
    if not filepath.endswith(suffix):
        raise ValueError(f"Expected `filepath` to end with {suffix!r} for format={format!r}. "
                         f"Received: filepath={filepath!r}")
    if keras.backend.backend() not in _BACKENDS[format]:
        return _export_through_tensorflow(model, filepath, format, verbose, overwrite)
    _require(format)
    _check_file_destination(filepath, format, bool(overwrite))  # fail before any work, with nothing touched

    inf = inference_model(model, include_cam=True)
    on_torch = keras.backend.backend() == "torch"
    specs = {k: (None,) + tuple(v.shape[1:]) for k, v in inf.input.items()} if on_torch else _input_specs(inf)
    image_hw = tuple(inf.input["image"].shape[1:3])
    from keras_priors import __version__

    # serving_outputs' names, in its order
    names = [k for k in inf.output if k != "cam"] + (list(CAM_OUTPUTS) if "cam" in inf.output else [])
    marker = {"library": "keras_priors", "version": __version__, "model": model.name, "format": format,
              "inputs": list(specs), "outputs": names}
    writer = _litert_bytes if format == "litert" else _onnx_bytes_torch if on_torch else _onnx_bytes

    parent = os.path.dirname(filepath)
    os.makedirs(parent, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".export-", suffix=suffix, dir=parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(writer(inf, specs, image_hw, marker))
        aside = _swap_file_into_place(tmp, filepath, format, bool(overwrite))
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)  # our temporary file only
        raise
    return _finished(model, filepath, aside, verbose,
                     f"{_LABEL[format]}; inputs: {', '.join(specs)}; outputs: {', '.join(names)}")


def _export_through_tensorflow(model, filepath, format: str, verbose: bool, overwrite: bool) -> str:
    """Write ``format`` from a backend that cannot write it itself, in a TensorFlow child process.

    See :mod:`keras_priors.zoo._tf_export`. The same checks come first and the
    same rules place the result: the destination is checked before any work,
    the export is written into a private folder beside it and moved into place
    when complete, and the private folder is removed whatever happens.
    """
    from keras_priors.zoo import _tf_export

    filepath = os.path.abspath(os.fspath(filepath))
    backend = keras.backend.backend()
    if format == "tf_saved_model":
        _check_destination(filepath, bool(overwrite))
    else:
        _check_file_destination(filepath, format, bool(overwrite))
    needs = _NEEDS.get((format, "tensorflow"), ("tensorflow",))  # what TensorFlow writes the format with
    modules = _tf_export.check_can_export(model, format, backend, needs)
    work = _tf_export.make_workdir(filepath)
    try:
        out = _tf_export.export_through_tensorflow(model, work, format, modules, backend, verbose)
        if format == "tf_saved_model":
            aside = _swap_into_place(out, filepath, bool(overwrite))
        else:
            aside = _swap_file_into_place(out, filepath, format, bool(overwrite))
    finally:
        _tf_export.remove_workdir(work)
    return _finished(model, filepath, aside, verbose,
                     f"{_LABEL[format]}, written by TensorFlow from the {backend} model's .keras archive")


def _finished(model, filepath: str, aside: str | None, verbose: bool, details: str) -> str:
    """Warn where a user's entry was moved aside, say where the export went; return ``filepath``."""
    if aside:
        warnings.warn(f"overwrite=True: what was at {filepath} was moved to {aside} (not deleted).", stacklevel=4)
    if verbose:
        print(f"Exported the classifier of {model.name!r} to {filepath} ({details})")
    return filepath
