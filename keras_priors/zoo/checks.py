"""Checks on training data that run before the first training step."""

from __future__ import annotations

import numpy as np


def _element_shapes(data):
    """``{key: shape tuple (batch dim included, None if unknown)}`` for dict-shaped data, else None."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - TF is a core dependency
        tf = None
    if tf is not None and isinstance(data, tf.data.Dataset):
        spec = data.element_spec
        if isinstance(spec, tuple):
            spec = spec[0]
        if not isinstance(spec, dict):
            return None
        return {k: tuple(v.shape) for k, v in spec.items()}
    if isinstance(data, dict):
        return {k: tuple(np.shape(v)) for k, v in data.items()}
    return None


def check_training_data(model, data) -> None:
    """Raise ``ValueError`` naming the prior and key if ``data`` cannot train ``model``.

    Works on dict-shaped ``tf.data.Dataset`` elements and dicts of arrays.
    Other inputs (e.g. an image array with separate labels) are checked by
    Keras itself.
    """
    shapes = _element_shapes(data)
    if shapes is None:
        return
    keys = set(shapes)
    for key in ("image", "label"):
        if key not in keys:
            raise ValueError(
                f"{model.name}: the data has no {key!r} key. Expected dict batches with keys "
                f"'image' and 'label' (plus what the priors need). Received keys: {sorted(keys)}"
            )
    for prior in model.priors:
        prior.check_data(keys)
    expected = tuple(model.network.input["image"].shape[1:])
    got = shapes["image"]
    if len(got) != 4 or any(e is not None and g is not None and e != g for e, g in zip(expected, got[1:])):
        raise ValueError(
            f"{model.name}: the data's 'image' does not fit the model. Expected batches of shape "
            f"(batch,) + {expected}. Received: {got}"
        )
    for key in ("object_mask", "part_mask"):
        if key in shapes and any(p.required_keys and key in p.required_keys for p in model.priors):
            mshape = shapes[key]
            if len(mshape) != 4 or mshape[-1] not in (1, None):
                raise ValueError(
                    f"{model.name}: the data's {key!r} must be batches of shape (batch, H, W, 1). "
                    f"Received: {mshape}"
                )
