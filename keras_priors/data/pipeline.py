"""tf.data pipelines over the keras_priors data contract, with aligned augmentation.

Any source (a dict of numpy arrays or a ``tf.data.Dataset`` of dicts) becomes a
shuffled, batched, prefetched dataset. Augmentation moves ``image``,
``object_mask``, ``part_mask`` (and any other ``*_mask`` key) and ``part_box``
together: a horizontal flip mirrors the box, a random crop maps the box into the
crop, and colour jitter touches the image only. Boxes use the
``tf.image.crop_and_resize`` convention (``[y1, x1, y2, x2]``, a coordinate
``v`` is pixel ``v * (size - 1)``), which both operations keep exact.
"""

from __future__ import annotations

import numpy as np

from keras_priors.validation import check_fraction, check_positive_int

#: Augmentations understood by :func:`make_pipeline` and :func:`augment_example`.
AUGMENTATIONS = ("flip", "crop", "color")


def _is_mask_key(key: str) -> bool:
    return key.endswith("_mask")


def _normalise_augment(augment) -> dict:
    if augment is None or augment is False:
        return {}
    if augment is True:
        return {"flip": True, "crop": 0.75, "color": 0.1}
    if isinstance(augment, str):
        augment = (augment,)
    if isinstance(augment, (list, tuple)):
        augment = {name: True for name in augment}
    if not isinstance(augment, dict):
        raise ValueError(
            "Expected `augment` to be None, True, a list of names from "
            f"{list(AUGMENTATIONS)} or a dict. Received: augment={augment!r}"
        )
    for name in augment:
        if name not in AUGMENTATIONS:
            raise ValueError(
                f"Unknown augmentation. Expected names in {list(AUGMENTATIONS)}. Received: {name!r}"
            )
    out = {}
    if augment.get("flip"):
        out["flip"] = True
    if augment.get("crop"):
        c = augment["crop"]
        out["crop"] = 0.75 if c is True else check_fraction("crop", c, "augment")
    if augment.get("color"):
        c = augment["color"]
        out["color"] = 0.1 if c is True else check_fraction("color", c, "augment")
    return out


def check_arrays(data: dict, num_classes: int | None = None, name: str = "data") -> int:
    """Validate a dict of arrays against the data contract; return the sample count.

    Checks that every array has the same leading length (not zero), that masks
    match the images' height and width, and that labels are in range.

    Raises:
        ValueError: naming the key, what was expected and what was received.
    """
    if not isinstance(data, dict) or not data:
        raise ValueError(f"Expected `{name}` to be a non-empty dict of arrays. Received: {type(data).__name__}")
    if "image" not in data:
        raise ValueError(f"Expected `{name}` to have an 'image' key. Received keys: {sorted(data)}")
    n = len(data["image"])
    if n == 0:
        raise ValueError(
            f"`{name}` is empty: expected at least one example. Received: image.shape={np.shape(data['image'])}"
        )
    image_shape = np.shape(data["image"])
    if len(image_shape) != 4:
        raise ValueError(f"Expected `{name}['image']` of shape (N, H, W, C). Received: shape={image_shape}")
    for key, value in data.items():
        if len(value) != n:
            raise ValueError(
                f"Expected every array in `{name}` to have {n} examples (as 'image'). "
                f"Received: {key!r} has {len(value)}"
            )
        if _is_mask_key(key) and tuple(np.shape(value)[1:3]) != tuple(image_shape[1:3]):
            raise ValueError(
                f"Expected `{name}[{key!r}]` to match the images' size {tuple(image_shape[1:3])}. "
                f"Received: shape={np.shape(value)}"
            )
    if "part_box" in data and np.shape(data["part_box"])[1:] != (4,):
        raise ValueError(f"Expected `{name}['part_box']` of shape (N, 4). Received: shape={np.shape(data['part_box'])}")
    if num_classes is not None and "label" in data:
        labels = np.asarray(data["label"])
        bad = np.flatnonzero((labels < 0) | (labels >= num_classes))
        if bad.size:
            raise ValueError(
                f"Expected labels in [0, {num_classes}). Received: label={labels[bad[0]]} at index {bad[0]}"
            )
    return n


def augment_batch(batch: dict, augment, seed=None) -> dict:
    """Augment a batch of examples (leading batch axis), each with its own random draw.

    Vectorised over the batch: one ``crop_and_resize`` call crops every image
    and mask with its own window, flips are a ``tf.where`` over the batch.

    Args:
        batch: dict of batched tensors following the data contract.
        augment: True (flip + crop 0.75 + colour 0.1), a list of names from
            ``("flip", "crop", "color")``, or a dict ``{"flip": True,
            "crop": min_scale, "color": strength}``.
        seed: optional op seed for ``tf.random``.

    Returns:
        The augmented batch (same keys, same shapes and dtypes).
    """
    import tensorflow as tf

    opts = _normalise_augment(augment)
    ex = dict(batch)
    keys = [k for k in ex if k == "image" or _is_mask_key(k)]
    n = tf.shape(ex["image"])[0]
    if "flip" in opts:
        do = tf.random.uniform([n], seed=seed) < 0.5
        for k in keys:
            v = ex[k]
            w = tf.cast(do, v.dtype)[:, None, None, None]
            ex[k] = v + w * (tf.reverse(v, axis=[2]) - v)  # faster than a broadcast tf.where
        if "part_box" in ex:
            b = ex["part_box"]
            flipped = tf.stack([b[:, 0], 1.0 - b[:, 3], b[:, 2], 1.0 - b[:, 1]], axis=1)
            ex["part_box"] = tf.where(do[:, None], flipped, b)
    if "crop" in opts:
        min_scale = tf.constant(opts["crop"], tf.float32)
        sh = tf.random.uniform([n], min_scale, 1.0, seed=seed)
        sw = tf.random.uniform([n], min_scale, 1.0, seed=seed)
        lo_y, hi_y = tf.zeros([n]), 1.0 - sh
        lo_x, hi_x = tf.zeros([n]), 1.0 - sw
        if "part_box" in ex:
            # Keep the part inside the crop when it fits (an empty box [0,0,0,0] always fits).
            b = ex["part_box"]
            py_lo, py_hi = tf.maximum(0.0, b[:, 2] - sh), tf.minimum(b[:, 0], 1.0 - sh)
            px_lo, px_hi = tf.maximum(0.0, b[:, 3] - sw), tf.minimum(b[:, 1], 1.0 - sw)
            ok_y, ok_x = py_lo <= py_hi, px_lo <= px_hi
            lo_y, hi_y = tf.where(ok_y, py_lo, lo_y), tf.where(ok_y, py_hi, hi_y)
            lo_x, hi_x = tf.where(ok_x, px_lo, lo_x), tf.where(ok_x, px_hi, hi_x)
        oy = lo_y + tf.random.uniform([n], seed=seed) * (hi_y - lo_y)
        ox = lo_x + tf.random.uniform([n], seed=seed) * (hi_x - lo_x)
        windows = tf.stack([oy, ox, oy + sh, ox + sw], axis=1)
        index = tf.range(n)
        for k in keys:
            v = ex[k]
            size = tf.shape(v)[1:3]
            out = tf.image.crop_and_resize(tf.cast(v, tf.float32), windows, index, size, method="bilinear")
            if _is_mask_key(k):
                out = tf.cast(out >= 0.5, tf.float32)
            ex[k] = tf.ensure_shape(tf.cast(out, v.dtype), v.shape)
        if "part_box" in ex:
            scale = tf.stack([sh, sw, sh, sw], axis=1)
            origin = tf.stack([oy, ox, oy, ox], axis=1)
            ex["part_box"] = tf.clip_by_value((ex["part_box"] - origin) / scale, 0.0, 1.0)
    if "color" in opts:
        s = float(opts["color"])
        img = ex["image"]
        dtype = img.dtype
        img = tf.cast(img, tf.float32)

        def draw(lo, hi):
            return tf.random.uniform([n, 1, 1, 1], lo, hi, seed=seed)

        img = img + draw(-s, s)  # brightness
        mean = tf.reduce_mean(img, axis=[1, 2, 3], keepdims=True)
        img = (img - mean) * draw(1.0 - 2 * s, 1.0 + 2 * s) + mean  # contrast
        grey = tf.reduce_mean(img, axis=-1, keepdims=True)
        img = (img - grey) * draw(1.0 - 3 * s, 1.0 + 3 * s) + grey  # saturation
        ex["image"] = tf.cast(tf.clip_by_value(img, 0.0, 1.0), dtype)
    return ex


def augment_example(example: dict, augment, seed=None) -> dict:
    """Augment one (unbatched) example dict, keeping masks and boxes aligned.

    Same options as :func:`augment_batch`.
    """
    import tensorflow as tf

    batch = {k: tf.expand_dims(tf.convert_to_tensor(v), 0) for k, v in example.items()}
    out = augment_batch(batch, augment, seed=seed)
    return {k: v[0] for k, v in out.items()}


def make_pipeline(
    data,
    batch_size: int | None = 32,
    shuffle: bool = True,
    augment=None,
    seed: int | None = 0,
    num_classes: int | None = None,
    shuffle_buffer: int = 4096,
    drop_remainder: bool = False,
    prefetch: bool = True,
):
    """Turn a dict of arrays or a dataset of dicts into a training pipeline.

    Args:
        data: dict of numpy arrays (first axis = examples) or a
            ``tf.data.Dataset`` of unbatched dicts.
        batch_size: batch size, or None for unbatched examples.
        shuffle: shuffle examples (reshuffled every epoch).
        augment: None (no augmentation), True, a list of names from
            ``("flip", "crop", "color")`` or a dict of options; see
            :func:`augment_batch` (applied per batch, after batching, each
            example with its own random draw).
        seed: shuffle/augmentation seed.
        num_classes: when given, labels of a dict source must lie in
            ``[0, num_classes)``.
        shuffle_buffer: shuffle buffer size for datasets (arrays are shuffled
            over all examples).
        drop_remainder: drop the last incomplete batch.
        prefetch: add ``prefetch(AUTOTUNE)``.

    Returns:
        ``tf.data.Dataset`` of dicts.

    Example:
        >>> from keras_priors.data import make_kakapo
        >>> ds = make_pipeline(make_kakapo(64, image_size=32), batch_size=16, augment=("flip",))
        >>> int(ds.cardinality())   # 64 examples in batches of 16
        4
        >>> batch = next(iter(ds))
        >>> tuple(batch["image"].shape), tuple(batch["part_box"].shape), tuple(batch["label"].shape)
        ((16, 32, 32, 3), (16, 4), (16,))
    """
    import tensorflow as tf

    opts = _normalise_augment(augment)
    if batch_size is not None:
        batch_size = check_positive_int("batch_size", batch_size, "make_pipeline")
    if isinstance(data, dict):
        n = check_arrays(data, num_classes=num_classes)
        ds = tf.data.Dataset.from_tensor_slices({k: np.asarray(v) for k, v in data.items()})
        buffer = n
    elif isinstance(data, tf.data.Dataset):
        ds = data
        buffer = check_positive_int("shuffle_buffer", shuffle_buffer, "make_pipeline")
    else:
        raise ValueError(
            "Expected `data` to be a dict of arrays or a tf.data.Dataset. "
            f"Received: {type(data).__name__}"
        )
    if shuffle:
        ds = ds.shuffle(buffer, seed=seed, reshuffle_each_iteration=True)
    if batch_size is not None:
        ds = ds.batch(batch_size, drop_remainder=drop_remainder)
        if opts:
            ds = ds.map(lambda b: augment_batch(b, opts), num_parallel_calls=tf.data.AUTOTUNE)
    elif opts:
        ds = ds.map(lambda ex: augment_example(ex, opts), num_parallel_calls=tf.data.AUTOTUNE)
    if prefetch:
        ds = ds.prefetch(tf.data.AUTOTUNE)
    return ds
