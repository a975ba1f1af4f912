"""Load ``images/<class>/*`` with optional matching ``masks/<class>/*`` as a dataset of dicts."""

from __future__ import annotations

import os

import numpy as np

from keras_priors.data._io import IMAGE_EXTENSIONS, load_pair
from keras_priors.validation import check_positive_int


def _list_images(folder: str) -> list[str]:
    return sorted(
        f for f in os.listdir(folder)
        if os.path.isfile(os.path.join(folder, f)) and os.path.splitext(f)[1].lower() in IMAGE_EXTENSIONS
    )


def scan_image_folder(images_dir: str, masks_dir: str | None = None):
    """List ``(image_paths, mask_paths or None, labels, class_names)`` of a folder tree.

    Raises:
        FileNotFoundError: if a folder does not exist.
        ValueError: if there are no classes or no images, or the masks do not
            match the images one to one (same class folder, same file stem).
    """
    if not os.path.isdir(images_dir):
        raise FileNotFoundError(f"Images folder not found: {images_dir!r}")
    if masks_dir is not None and not os.path.isdir(masks_dir):
        raise FileNotFoundError(f"Masks folder not found: {masks_dir!r}")
    class_names = sorted(d for d in os.listdir(images_dir) if os.path.isdir(os.path.join(images_dir, d)))
    if not class_names:
        raise ValueError(
            f"Expected one sub-folder per class in {images_dir!r} (images/<class>/*). Received: no sub-folders"
        )
    paths, masks, labels = [], [], []
    for label, name in enumerate(class_names):
        files = _list_images(os.path.join(images_dir, name))
        paths += [os.path.join(images_dir, name, f) for f in files]
        labels += [label] * len(files)
        if masks_dir is None:
            continue
        mask_folder = os.path.join(masks_dir, name)
        mask_files = _list_images(mask_folder) if os.path.isdir(mask_folder) else []
        by_stem = {}
        for f in mask_files:
            by_stem.setdefault(os.path.splitext(f)[0], f)
        missing = [f for f in files if os.path.splitext(f)[0] not in by_stem]
        if missing or len(mask_files) != len(files):
            raise ValueError(
                f"Expected one mask per image in {mask_folder!r} (same file stem as in "
                f"{os.path.join(images_dir, name)!r}): {len(files)} images, received {len(mask_files)} masks"
                + (f"; no mask for {missing[0]!r}" if missing else "")
            )
        masks += [os.path.join(mask_folder, by_stem[os.path.splitext(f)[0]]) for f in files]
    if not paths:
        raise ValueError(f"No images found under {images_dir!r} (extensions {list(IMAGE_EXTENSIONS)})")
    return paths, (masks if masks_dir is not None else None), np.asarray(labels, np.int32), class_names


def image_folder(
    images_dir: str,
    masks_dir: str | None = None,
    image_size: int = 64,
    batch_size: int | None = None,
    shuffle: bool = False,
    augment=None,
    seed: int = 0,
    mask_threshold: float = 127.0,
    check_files: bool = False,
):
    """A dataset of ``{"image", "label"[, "object_mask"]}`` from class folders.

    Layout: ``images_dir/<class>/<name>.<ext>`` and, optionally,
    ``masks_dir/<class>/<name>.<any image ext>`` (grey masks, thresholded at
    ``> mask_threshold``). Labels follow the sorted class folder names, which are
    also stored on the dataset as ``dataset.class_names``. Images are decoded
    with ``tf.io`` and resized to ``image_size``; a file that cannot be decoded,
    or a mask whose size differs from its image, fails with an error naming it.

    Args:
        images_dir: root of the class folders.
        masks_dir: root of the matching mask folders, or None.
        image_size: output height and width.
        batch_size: batch size, or None for unbatched examples.
        shuffle: shuffle the examples.
        augment: see :func:`keras_priors.data.make_pipeline`.
        seed: shuffle/augmentation seed.
        mask_threshold: grey level above which a mask pixel is foreground.
        check_files: decode every file once now, so that a corrupt file or a
            mismatched mask raises ``ValueError`` here rather than as a
            ``tf.errors.InvalidArgumentError`` while iterating.

    Returns:
        ``tf.data.Dataset`` of dicts with a ``class_names`` attribute.

    Example:
        Two classes of one 8 x 8 PNG each, with full masks, in a temporary folder:

        >>> import os, tempfile, numpy as np, tensorflow as tf
        >>> tmp = tempfile.TemporaryDirectory()
        >>> for name in ("cat", "dog"):
        ...     for kind, image in (("images", np.zeros((8, 8, 3), np.uint8)),
        ...                         ("masks", np.full((8, 8, 1), 255, np.uint8))):
        ...         os.makedirs(os.path.join(tmp.name, kind, name))
        ...         _ = tf.io.write_file(os.path.join(tmp.name, kind, name, "1.png"), tf.io.encode_png(image))
        >>> ds = image_folder(os.path.join(tmp.name, "images"), os.path.join(tmp.name, "masks"),
        ...                   image_size=4, batch_size=2)
        >>> ds.class_names
        ['cat', 'dog']
        >>> batch = next(iter(ds))
        >>> sorted(batch), tuple(batch["image"].shape), batch["label"].numpy().tolist()
        (['image', 'label', 'object_mask'], (2, 4, 4, 3), [0, 1])
        >>> tmp.cleanup()
    """
    import tensorflow as tf

    from keras_priors.data.pipeline import make_pipeline

    image_size = check_positive_int("image_size", image_size, "image_folder")
    paths, masks, labels, class_names = scan_image_folder(images_dir, masks_dir)
    has_mask = masks is not None
    if check_files:
        for i, path in enumerate(paths):
            load_pair(path, masks[i] if has_mask else None, image_size, mask_threshold)

    def _load(path, mask_path):
        image, mask, _ = load_pair(
            path.numpy().decode(), mask_path.numpy().decode() if has_mask else None, image_size, mask_threshold
        )
        if mask is None:
            mask = np.zeros((image_size, image_size, 1), np.float32)
        return image, mask

    def _map(path, mask_path, label):
        image, mask = tf.py_function(_load, [path, mask_path], [tf.float32, tf.float32])
        ex = {"image": tf.ensure_shape(image, (image_size, image_size, 3)), "label": label}
        if has_mask:
            ex["object_mask"] = tf.ensure_shape(mask, (image_size, image_size, 1))
        return ex

    ds = tf.data.Dataset.from_tensor_slices((paths, masks if has_mask else [""] * len(paths), labels))
    ds = ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE)
    ds = make_pipeline(ds, batch_size=batch_size, shuffle=shuffle, augment=augment, seed=seed,
                       shuffle_buffer=max(1, len(paths)))
    ds.class_names = class_names
    return ds
