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


#: Rows of a dict of arrays that :func:`check_first_batch` looks at.
FIRST_ROWS = 256


def _checked_key(key: str, declared=()) -> bool:
    return key in ("image", "label") or key.endswith(("_mask", "_box")) or key in declared


def declared_keys(model) -> dict:
    """``{data key: (prior, DataKey)}`` for every key the model's priors declare (``Prior.data_spec``)."""
    out = {}
    for prior in model.priors:
        for key, spec in prior.data_spec().items():
            out.setdefault(key, (prior, spec))
    return out


def _first_batch(data, declared=()):
    """The checked keys of a dataset's first element or a dict's first rows, as numpy; None if there are none."""
    try:
        import tensorflow as tf
    except ImportError:  # pragma: no cover - TF is a core dependency
        tf = None
    if tf is not None and isinstance(data, tf.data.Dataset):
        element = next(iter(data.take(1)), None)
        if element is None:
            return None
        if isinstance(element, tuple):
            element = element[0]
        return {k: np.asarray(v) for k, v in element.items() if _checked_key(k, declared)}
    batch = {k: np.asarray(v)[:FIRST_ROWS] for k, v in data.items() if _checked_key(k, declared)}
    return batch if len(batch["image"]) else None


def _scalar(x) -> str:
    """A label value as a person writes it: 5, -1, 0.7 (not np.float32(0.69999999))."""
    x = np.asarray(x)
    return str(int(x)) if np.issubdtype(x.dtype, np.integer) or float(x).is_integer() else f"{float(x):.6g}"


def _range_text(values) -> str:
    return f"min {float(np.min(values)):.4g}, max {float(np.max(values)):.4g}"


def check_first_batch(model, batch) -> None:
    """Raise ``ValueError`` naming the key if the first batch would train with wrong numbers.

    Checks: images are floats in [0, 1] (not uint8 or 0-255) and finite;
    labels are whole numbers in ``[0, num_classes)`` (``{0, 1}`` for a
    single-logit head); every ``*_mask``, and every key a prior declares a
    mask (``DataKey(kind="mask")``), has the images' height and width and
    finite values in [0, 1]; every ``*_box``, and every key declared a box,
    is ``[y1, x1, y2, x2]`` in [0, 1] with ``y1 <= y2`` and ``x1 <= x2``; a
    declared shape with ``"H"``/``"W"`` has the images' height/width there.
    Labels stored as floats with whole values (1.0) are accepted; 0.7 is not.
    """
    declared = declared_keys(model)
    name = model.name
    image = batch["image"]
    if not np.issubdtype(image.dtype, np.floating):
        raise ValueError(
            f"{name}: Expected the data's 'image' as floats in [0, 1]. Received: dtype {image.dtype} "
            f"({_range_text(image)}); divide by 255 (or use tf.image.convert_image_dtype) in the pipeline."
        )
    bad = ~np.isfinite(image)
    if bad.any():
        raise ValueError(f"{name}: Expected finite values in the data's 'image'. Received: {int(bad.sum())} "
                         f"NaN/Inf value(s) in the first batch.")
    tol = 1e-3
    if image.min() < -tol or image.max() > 1 + tol:
        hint = " (it looks like 0-255: divide by 255)" if image.max() > 2 else ""
        raise ValueError(f"{name}: Expected the data's 'image' in [0, 1]. Received: {_range_text(image)} "
                         f"in the first batch{hint}.")

    labels = np.asarray(batch["label"])
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        raise ValueError(f"{name}: Expected integer class indices in the data's 'label'. "
                         f"Received: dtype {labels.dtype}")
    if np.issubdtype(labels.dtype, np.floating):
        fractional = ~np.isfinite(labels) | (labels != np.round(labels))
        if fractional.any():
            raise ValueError(
                f"{name}: Expected class indices (whole numbers) in the data's 'label'. Received: "
                f"label={_scalar(labels[fractional].ravel()[0])}, which training would cast to an integer."
            )
    k = 2 if model.num_classes == 1 else model.num_classes
    out = (labels < 0) | (labels >= k)
    if out.any():
        raise ValueError(
            f"{name}: Expected the data's 'label' in [0, {k - 1}] for num_classes={model.num_classes}. "
            f"Received: label={_scalar(labels[out].ravel()[0])} in the first batch."
        )

    hw = tuple(image.shape[1:3])
    kinds = {key: spec.kind for key, (_, spec) in declared.items()}
    for key, (prior, spec) in declared.items():
        if key in batch and spec.shape is not None and spec.kind != "mask":
            _check_image_size(name, prior, key, spec, batch[key], hw)
    for key, value in batch.items():
        if not (key.endswith("_mask") or kinds.get(key) == "mask"):
            continue
        if tuple(value.shape[1:3]) != hw:
            raise ValueError(
                f"{name}: Expected the data's {key!r} of shape (batch,) + {hw} + (1,), the images' size. "
                f"Received: {tuple(value.shape)} (it would be stretched onto the image)."
            )
        v = value.astype(np.float64)
        bad = ~np.isfinite(v)
        if bad.any():
            raise ValueError(f"{name}: Expected finite values in the data's {key!r}. Received: {int(bad.sum())} "
                             f"NaN/Inf value(s) in the first batch.")
        if v.min() < 0 or v.max() > 1:
            raise ValueError(f"{name}: Expected the data's {key!r} in [0, 1]. Received: {_range_text(v)} "
                             f"in the first batch (it would be clipped).")
    for key, value in batch.items():
        if key.endswith("_box") or kinds.get(key) == "box":
            _check_boxes(name, key, value)


def _check_image_size(name, prior, key, spec, value, hw) -> None:
    """A declared ``"H"``/``"W"`` dimension of ``key`` must be the images' height/width."""
    sizes = {"H": hw[0], "W": hw[1]}
    want = tuple(sizes.get(d, d) for d in spec.shape)
    got = tuple(np.shape(value)[1:])
    if len(got) == len(want) and all(not isinstance(w, int) or g == w for w, g in zip(want, got)):
        return
    raise ValueError(
        f"{name}: {type(prior).__name__} expects the data's {key!r} of shape (batch,) + {want} "
        f"({spec.description or spec.shape_text()}). Received: {tuple(np.shape(value))}"
    )


def _check_boxes(name: str, key: str, boxes) -> None:
    boxes = np.asarray(boxes, np.float64)
    if boxes.ndim != 2 or boxes.shape[-1] != 4:
        raise ValueError(f"{name}: Expected the data's {key!r} of shape (batch, 4) = [y1, x1, y2, x2]. "
                         f"Received: {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{name}: Expected finite values in the data's {key!r}. Received: NaN/Inf in the first batch.")
    if boxes.min() < 0 or boxes.max() > 1:
        raise ValueError(f"{name}: Expected the data's {key!r} in [0, 1] (coordinates relative to the image). "
                         f"Received: {_range_text(boxes)} in the first batch.")
    inverted = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
    if inverted.any():
        i = int(np.flatnonzero(inverted)[0])
        raise ValueError(f"{name}: Expected the data's {key!r} as [y1, x1, y2, x2] with y1 <= y2 and x1 <= x2. "
                         f"Received: {key}={[round(float(v), 4) for v in boxes[i]]} (inverted) at row {i} of "
                         f"the first batch.")


def check_training_data(model, data) -> None:
    """Raise ``ValueError`` naming the prior and key if ``data`` cannot train ``model``.

    Works on dict-shaped ``tf.data.Dataset`` elements and dicts of arrays.
    Other inputs (e.g. an image array with separate labels) are checked by
    Keras itself. Besides the keys and shapes, the first batch's values are
    checked (:func:`check_first_batch`); for a dataset this reads one batch,
    so a shuffle buffer is filled once more. An empty dataset is an error.
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
    declared = declared_keys(model)
    for key, (prior, spec) in declared.items():
        if key in shapes and spec.shape is not None:
            got = shapes[key]
            fits = len(got) == len(spec.shape) + 1 and all(
                not isinstance(w, int) or g is None or g == w for w, g in zip(spec.shape, got[1:]))
            if not fits:
                raise ValueError(
                    f"{model.name}: {type(prior).__name__} expects the data's {key!r} as batches of shape "
                    f"{spec.shape_text()} ({spec.description or 'its declared shape'}). Received: {got}"
                )
    batch = _first_batch(data, declared)
    if batch is None:
        raise ValueError(f"{model.name}: Expected at least one batch of data. Received: an empty dataset.")
    check_first_batch(model, batch)
