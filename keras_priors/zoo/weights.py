"""Weight loading for zoo backbones, in one module that imports nothing else of the zoo.

- ``load_backbone_weights``: a ``.weights.h5`` of the backbone, or the
  backbone of a saved ``.keras`` zoo model (the default loader of every entry).
- ``load_weights_file``: that, plus Keras 2 HDF5 files read layer by layer
  (``load_legacy_h5_weights``), the loader of ``mini_xception``.
- ``copy_weights_in_order``: weights from one backbone into another built the
  same way (``.keras`` files, keras-hub presets in ``zoo.hub``).

``build``, ``registry`` and ``hub`` import this module; it imports none of
them, so the zoo has no import circle.
"""

from __future__ import annotations

import os

import keras
import numpy as np


def load_backbone_weights(backbone: keras.Model, path: str) -> None:
    """Load a ``.weights.h5`` of the backbone, or the backbone of a saved ``.keras`` zoo model.

    Raises a ``ValueError`` naming the file when it does not exist or its
    weights do not fit the backbone's architecture.
    """
    if not os.path.exists(path):
        raise FileNotFoundError("Weights file not found. Expected an existing .weights.h5 or .keras file. "
                                f"Received: {path!r}")
    try:
        if path.endswith(".keras"):
            saved = keras.saving.load_model(path, compile=False)
            source = _find_backbone(saved)
            if source is None:
                raise ValueError("it holds no layer named 'backbone'")
            copy_weights_in_order(source, backbone)
        else:
            backbone.load_weights(path)
    except (ValueError, KeyError, OSError) as e:
        raise ValueError(
            f"The weights in {path!r} do not fit the backbone {backbone.name!r} "
            f"({backbone.count_params()} parameters). Expected weights saved from the same architecture. Cause: {e}"
        ) from e


def _find_backbone(model):
    for layer in getattr(model, "layers", []):
        if layer.name == "backbone":
            return layer
        inner = _find_backbone(layer) if isinstance(layer, keras.Model) else None
        if inner is not None:
            return inner
    return None


# === Weights saved by Keras 2 (legacy HDF5), read layer by layer ===

def _legacy_h5_layers(path):
    """``[(layer_name, [arrays...]), ...]`` of the layers with weights, in the file's order."""
    import h5py

    with h5py.File(path, "r") as f:
        group = f["model_weights"] if "model_weights" in f else f
        if "layer_names" not in group.attrs:
            raise ValueError("it is not a Keras HDF5 weights file (no 'layer_names' attribute)")
        out = []
        for raw in group.attrs["layer_names"]:
            lname = raw.decode("utf8") if isinstance(raw, bytes) else str(raw)
            g = group[lname]
            names = [n.decode("utf8") if isinstance(n, bytes) else str(n) for n in g.attrs.get("weight_names", [])]
            if names:
                out.append((lname, [np.asarray(g[n]) for n in names]))
        return out


def load_legacy_h5_weights(model: keras.Model, path: str, allow_unused_tail: bool = False) -> list:
    """Load a Keras 2 ``.h5``/``.hdf5`` (full model or weights) into ``model``, layer by layer, in order.

    The layers of ``model`` that have trainable weights are paired in order
    with the file's layers that have weights; each pair must have the same
    number of arrays and the same shapes (so a Conv2D in one place and a
    SeparableConv2D in the other fails). Layer names are not compared: Keras
    2 numbered them globally (``conv2d_7``), ours say what they are.

    Args:
        model: the Keras 3 model to fill.
        path: the HDF5 file.
        allow_unused_tail: accept file layers left over after the last layer
            of ``model`` (a classifier head the backbone does not have).

    Returns:
        The names of the file layers that were not loaded (the dropped head).

    Raises:
        ValueError: naming the first layer pair that does not fit.
    """
    saved = _legacy_h5_layers(path)
    targets = [layer for layer in _flat_layers(model) if layer.trainable_weights]
    if len(saved) < len(targets) or (len(saved) > len(targets) and not allow_unused_tail):
        raise ValueError(
            f"Expected {len(targets)} layers with weights in the file (those of {model.name!r}). "
            f"Received: {len(saved)} ({[n for n, _ in saved]})"
        )
    for layer, (lname, arrays) in zip(targets, saved):
        shapes = [tuple(v.shape) for v in layer.weights]
        got = [tuple(a.shape) for a in arrays]
        if shapes != got:
            raise ValueError(
                f"layer {layer.name!r} ({type(layer).__name__}) expects weights of shapes {shapes}. "
                f"Received: file layer {lname!r} with shapes {got}"
            )
    for layer, (_, arrays) in zip(targets, saved):
        layer.set_weights(arrays)
    return [n for n, _ in saved[len(targets):]]


def _flat_layers(model):
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            out.extend(_flat_layers(layer))
        else:
            out.append(layer)
    return out


def load_weights_file(backbone: keras.Model, path: str) -> None:
    """Load ``path`` into a zoo backbone: Keras 2 HDF5 layer by layer, else ``load_backbone_weights``.

    ``.weights.h5`` and ``.keras`` files go through
    ``keras_priors.zoo.load_backbone_weights``; other ``.h5``/``.hdf5`` files
    are read as Keras 2 files with ``load_legacy_h5_weights`` (a classifier
    head in the file is left out: the zoo builds a fresh one).
    """
    if path.endswith((".weights.h5", ".keras")) or not path.endswith((".h5", ".hdf5")):
        return load_backbone_weights(backbone, path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"Weights file not found. Expected an existing .h5/.hdf5 file. Received: {path!r}")
    try:
        load_legacy_h5_weights(backbone, path, allow_unused_tail=True)
    except (ValueError, KeyError, OSError) as e:
        raise ValueError(
            f"The weights in {path!r} do not fit the backbone {backbone.name!r} "
            f"({backbone.count_params()} parameters). Expected a Keras 2 HDF5 file of the same architecture. Cause: {e}"
        ) from e


def copy_weights_in_order(source: keras.Model, target: keras.Model) -> None:
    """Assign ``source``'s weights to ``target``'s, paired in order (both built the same way), shapes checked.

    Names are not compared: keras-hub numbers some layers per process
    (``..._1``), so a preset read back gets other names than the zoo's copy.
    Nothing is assigned unless every pair fits.
    """
    src, dst = source.weights, target.weights
    if len(src) != len(dst):
        raise ValueError(f"the source has {len(src)} weight tensors. Expected: {len(dst)}")
    for a, b in zip(src, dst):
        if tuple(a.shape) != tuple(b.shape):
            raise ValueError(f"weight {b.path!r} has shape {tuple(b.shape)}. "
                             f"Received: {a.path!r} of shape {tuple(a.shape)}")
    for a, b in zip(src, dst):
        b.assign(a)
