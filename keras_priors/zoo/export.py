"""Inference-model stripping and SavedModel export."""

from __future__ import annotations

import os
import shutil
import tempfile

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


def export_saved_model(model, filepath: str, verbose: bool = True) -> str:
    """Export ``model``'s classifier as a TensorFlow SavedModel, atomically.

    Endpoints:
        ``serve(**inputs) -> {"logits", "probabilities"}``
        ``cam(**inputs) -> {"cam", "cam_upsampled"}`` (class activation maps
        at feature resolution and resized to the image), when the model has one.

    The SavedModel is written into a temporary folder beside ``filepath`` and
    renamed into place only when complete, so an interrupted export never
    leaves a half-written model.
    """
    import tensorflow as tf

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
            return {"cam": c, "cam_upsampled": ops.image.resize(c, image_hw, interpolation="bilinear")}

        archive.add_endpoint("cam", cam, input_signature=[specs])

    filepath = os.path.abspath(os.fspath(filepath))
    parent = os.path.dirname(filepath)
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".export-", dir=parent)
    try:
        archive.write_out(tmp, verbose=False)
        if os.path.exists(filepath):
            old = tmp + ".old"
            os.replace(filepath, old)
            os.replace(tmp, filepath)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, filepath)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if verbose:
        endpoints = "serve, cam" if has_cam else "serve"
        print(f"Exported the classifier of {model.name!r} to {filepath} (endpoints: {endpoints})")
    return filepath
