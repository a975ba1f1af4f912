"""Inference-model stripping and SavedModel export."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import warnings

import keras
from keras import ops


def inference_model(model, include_cam: bool = True) -> keras.Model:
    """A functional model with the classifier path only.

    Inputs are the network's inputs; outputs are ``logits``, ``probabilities``
    and (with ``include_cam``) ``cam``. Mask decoders, auxiliary heads and other
    training-only outputs are not part of it, so their weights are not exported.
    """
    network = model.network
    outputs = network.output
    logits = outputs["logits"]
    if model.num_classes == 1:
        probs = keras.layers.Activation("sigmoid", name="probabilities", dtype="float32")(logits)
    else:
        probs = keras.layers.Activation("softmax", name="probabilities", dtype="float32")(logits)
    kept = {"logits": logits, "probabilities": probs}
    if include_cam and "cam" in outputs:
        kept["cam"] = outputs["cam"]
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
    """What ``filepath`` is now: ``"new"``, ``"empty"``, ``"ours"`` or ``"foreign"``; raise if it may not be replaced."""
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


def _swap_into_place(tmp: str, filepath: str, overwrite: bool) -> str | None:
    """Move the finished export ``tmp`` to ``filepath``; return the backup path of a replaced foreign entry."""
    state = _check_destination(filepath, overwrite)
    if state in ("new", "empty"):
        os.replace(tmp, filepath)  # rename(2) replaces an empty folder in one step
        return None
    aside = _backup_name(filepath) if state == "foreign" else tmp + ".old"
    os.replace(filepath, aside)
    try:
        os.replace(tmp, filepath)
    except BaseException:
        os.replace(aside, filepath)
        raise
    if state == "ours":  # our own previous export: nothing of the user's is in it
        shutil.rmtree(aside, ignore_errors=True)
        return None
    return aside


def export_saved_model(model, filepath: str, verbose: bool = True, overwrite: bool = False) -> str:
    """Export ``model``'s classifier as a TensorFlow SavedModel, atomically.

    Endpoints:
        ``serve(**inputs) -> {"logits", "probabilities"}``
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
    if keras.backend.backend() == "torch":  # Keras' ExportArchive cannot `track` a model on torch
        raise NotImplementedError(
            "PriorModel.export: Expected the TensorFlow or JAX backend for a SavedModel. Received: "
            "backend='torch'. Save with `model.save('m.keras')` and export it from a TensorFlow or JAX process.")
    import tensorflow as tf

    filepath = os.path.abspath(os.fspath(filepath))
    _check_destination(filepath, bool(overwrite))  # fail before any work, with nothing touched

    inf = inference_model(model, include_cam=True)
    specs = {k: tf.TensorSpec((None,) + tuple(v.shape[1:]), tf.float32, name=k) for k, v in inf.input.items()}
    image_hw = tuple(inf.input["image"].shape[1:3])
    has_cam = "cam" in inf.output

    archive = keras.export.ExportArchive()
    archive.track(inf)

    def serve(inputs):
        out = inf(inputs, training=False)
        return {"logits": out["logits"], "probabilities": out["probabilities"]}

    archive.add_endpoint("serve", serve, input_signature=[specs])
    if has_cam:

        def cam(inputs):
            out = inf(inputs, training=False)
            c = ops.cast(out["cam"], "float32")
            from keras_priors.explain.resize_cam import resize_cam

            return {"cam": c, "cam_upsampled": resize_cam(c, image_hw)}

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
    if aside:
        warnings.warn(f"overwrite=True: what was at {filepath} was moved to {aside} (not deleted).", stacklevel=2)
    if verbose:
        endpoints = "serve, cam" if has_cam else "serve"
        print(f"Exported the classifier of {model.name!r} to {filepath} (endpoints: {endpoints})")
    return filepath
