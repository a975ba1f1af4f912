"""CUB-200-2011 loader following the dataset's on-disk layout exactly.

``root`` is the ``CUB_200_2011`` folder::

    images.txt                 <image_id> <class_dir>/<name>.jpg
    image_class_labels.txt     <image_id> <class_id>     (1-based; label = class_id - 1)
    train_test_split.txt       <image_id> <is_training_image>   (1 = train)
    bounding_boxes.txt         <image_id> <x> <y> <width> <height>
    parts/part_locs.txt        <image_id> <part_id> <x> <y> <visible>
    classes.txt                optional, sets the number of classes (else 200)
    images/<class_dir>/<name>.jpg

The separately released segmentations live in
``segmentations/<class_dir>/<name>.png`` (under ``root``, next to it, or at
``segmentations_root``); without them the examples have no ``object_mask``.

Head box: the visible head parts (official ``parts/parts.txt`` ids: 2 beak,
5 crown, 6 forehead, 7 left eye, 10 nape, 11 right eye, 15 throat) give a tight
box, padded on each side by ``head_padding`` times the geometric mean of the
bird's bounding-box sides and clipped to the image. When no head part is
visible the fallback is the whole bird bounding box from
``bounding_boxes.txt``. ``part_mask`` is that box filled.
"""

from __future__ import annotations

import os

import numpy as np

from keras_priors.data._io import load_pair
from keras_priors.validation import check_fraction, check_positive_int

#: Official CUB part ids (parts/parts.txt) that belong to the head.
HEAD_PARTS = (2, 5, 6, 7, 10, 11, 15)
PART_NAMES = (
    "back", "beak", "belly", "breast", "crown", "forehead", "left eye", "left leg",
    "left wing", "nape", "right eye", "right leg", "right wing", "tail", "throat",
)
SPLITS = ("train", "test", "all")


def _read_table(path: str, types: tuple) -> list[tuple]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"CUB annotation file not found: {path!r} (expected the CUB_200_2011 layout)")
    rows = []
    with open(path, encoding="utf-8") as f:
        for i, line in enumerate(f, start=1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != len(types):
                raise ValueError(
                    f"{path}:{i}: expected {len(types)} fields, received {len(parts)}: {line.strip()!r}"
                )
            try:
                rows.append(tuple(t(p) for t, p in zip(types, parts)))
            except ValueError:
                raise ValueError(f"{path}:{i}: could not parse {line.strip()!r}") from None
    return rows


def _find_segmentations(root: str, segmentations_root: str | None) -> str | None:
    if segmentations_root is not None:
        if not os.path.isdir(segmentations_root):
            raise FileNotFoundError(f"Segmentations folder not found: {segmentations_root!r}")
        return segmentations_root
    for candidate in (os.path.join(root, "segmentations"),
                      os.path.join(os.path.dirname(os.path.abspath(root)), "segmentations")):
        if os.path.isdir(candidate):
            return candidate
    return None


def read_cub_annotations(root: str, split: str = "train", segmentations_root: str | None = None) -> dict:
    """Parse the CUB annotation files of one split into python lists/arrays.

    Returns:
        Dict with ``image_paths``, ``mask_paths`` (or None), ``labels`` (0-based),
        ``bboxes`` ((N, 4) x, y, w, h), ``head_points`` (list of (K, 2) arrays of
        visible head part (x, y)), ``image_ids`` and ``num_classes``.
    """
    if split not in SPLITS:
        raise ValueError(f"Unknown CUB split. Expected one of {list(SPLITS)}. Received: split={split!r}")
    if not os.path.isdir(root):
        raise FileNotFoundError(f"CUB root folder not found: {root!r}")
    images = _read_table(os.path.join(root, "images.txt"), (int, str))
    labels = dict(_read_table(os.path.join(root, "image_class_labels.txt"), (int, int)))
    is_train = dict(_read_table(os.path.join(root, "train_test_split.txt"), (int, int)))
    box_rows = _read_table(os.path.join(root, "bounding_boxes.txt"), (int, float, float, float, float))
    boxes = {r[0]: r[1:] for r in box_rows}
    parts = _read_table(os.path.join(root, "parts", "part_locs.txt"), (int, int, float, float, int))
    classes_file = os.path.join(root, "classes.txt")
    num_classes = len(_read_table(classes_file, (int, str))) if os.path.isfile(classes_file) else 200

    head = {}
    for image_id, part_id, x, y, visible in parts:
        if visible and part_id in HEAD_PARTS:
            head.setdefault(image_id, []).append((x, y))

    seg_root = _find_segmentations(root, segmentations_root)
    wanted = {"train": (1,), "test": (0,), "all": (0, 1)}[split]
    out = {"image_paths": [], "mask_paths": [] if seg_root else None, "labels": [], "bboxes": [],
           "head_points": [], "image_ids": [], "num_classes": num_classes}
    for image_id, rel in images:
        for name, table in (("image_class_labels.txt", labels), ("train_test_split.txt", is_train),
                            ("bounding_boxes.txt", boxes)):
            if image_id not in table:
                raise ValueError(f"{os.path.join(root, name)}: no entry for image_id={image_id} of images.txt")
        if is_train[image_id] not in (0, 1):
            raise ValueError(
                f"{os.path.join(root, 'train_test_split.txt')}: expected is_training_image 0 or 1. "
                f"Received: {is_train[image_id]} for image_id={image_id}"
            )
        if is_train[image_id] not in wanted:
            continue
        class_id = labels[image_id]
        if not 1 <= class_id <= num_classes:
            raise ValueError(
                f"{os.path.join(root, 'image_class_labels.txt')}: expected class ids in [1, {num_classes}]. "
                f"Received: {class_id} for image_id={image_id}"
            )
        out["image_paths"].append(os.path.join(root, "images", rel))
        if seg_root:
            mask_path = os.path.join(seg_root, os.path.splitext(rel)[0] + ".png")
            if not os.path.isfile(mask_path):
                raise FileNotFoundError(f"Segmentation not found for image_id={image_id}: {mask_path!r}")
            out["mask_paths"].append(mask_path)
        out["labels"].append(class_id - 1)
        out["bboxes"].append(boxes[image_id])
        out["head_points"].append(np.asarray(head.get(image_id, []), np.float32).reshape(-1, 2))
        out["image_ids"].append(image_id)
    if not out["image_paths"]:
        raise ValueError(
            f"CUB split {split!r} of {root!r} is empty: train_test_split.txt lists no image with "
            f"is_training_image in {list(wanted)}"
        )
    out["labels"] = np.asarray(out["labels"], np.int32)
    out["bboxes"] = np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
    return out


def head_box(points: np.ndarray, bbox, height: int, width: int, padding: float) -> np.ndarray:
    """Normalised ``[y1, x1, y2, x2]`` head box from visible head points, or the bird box.

    Coordinates are divided by ``size - 1`` (the ``crop_and_resize`` convention).
    """
    x, y, w, h = bbox
    if len(points):
        pad = padding * float(np.sqrt(max(w, 1.0) * max(h, 1.0)))
        x1, y1 = points[:, 0].min() - pad, points[:, 1].min() - pad
        x2, y2 = points[:, 0].max() + pad, points[:, 1].max() + pad
    else:
        x1, y1, x2, y2 = x, y, x + w, y + h
    sy, sx = max(height - 1, 1), max(width - 1, 1)
    box = np.array([y1 / sy, x1 / sx, y2 / sy, x2 / sx], np.float32)
    return np.clip(box, 0.0, 1.0)


def box_mask(box: np.ndarray, size: int) -> np.ndarray:
    """(size, size, 1) float32 mask with the pixels inside a normalised box set to 1."""
    coords = np.arange(size, dtype=np.float32) / np.float32(size - 1)
    inside_y = (coords >= box[0] - 1e-6) & (coords <= box[2] + 1e-6)
    inside_x = (coords >= box[1] - 1e-6) & (coords <= box[3] + 1e-6)
    return (inside_y[:, None] & inside_x[None, :])[..., None].astype(np.float32)


def cub200(
    root: str,
    split: str = "train",
    image_size: int = 224,
    segmentations_root: str | None = None,
    head_padding: float = 0.1,
    batch_size: int | None = None,
    shuffle: bool | None = None,
    augment=None,
    seed: int = 0,
    check_files: bool = False,
):
    """CUB-200-2011 as a ``tf.data.Dataset`` of contract dicts.

    Args:
        root: the ``CUB_200_2011`` folder (with ``images.txt`` etc.).
        split: ``"train"``, ``"test"`` or ``"all"``.
        image_size: output height and width (images are resized, not padded).
        segmentations_root: folder holding ``<class_dir>/<name>.png``; None looks
            for ``segmentations`` under ``root`` and next to it.
        head_padding: padding of the head box, as a fraction of the geometric
            mean of the bird box sides.
        batch_size: batch size, or None for unbatched examples.
        shuffle: shuffle; None shuffles the train split only.
        augment: see :func:`keras_priors.data.make_pipeline`.
        seed: shuffle/augmentation seed.
        check_files: decode every image and segmentation once now, so that a
            corrupt file or a mismatched mask raises ``ValueError`` here rather
            than as a ``tf.errors.InvalidArgumentError`` while iterating.

    Returns:
        ``tf.data.Dataset`` of dicts with ``image``, ``label``, ``part_box``,
        ``part_mask`` and, with segmentations, ``object_mask``; the dataset has
        ``num_classes`` and ``image_ids`` attributes.

    Example:
        On the downloaded dataset: ``cub200("CUB_200_2011", split="train",
        image_size=224, batch_size=32)``. The same call on a one-image folder
        in the CUB layout (one bird, class 1, with a visible head part):

        >>> import os, tempfile, numpy as np, tensorflow as tf
        >>> tmp = tempfile.TemporaryDirectory(); root = os.path.join(tmp.name, "CUB_200_2011")
        >>> tables = {"classes.txt": "1 001.Albatross", "images.txt": "1 001.Albatross/a.jpg",
        ...           "image_class_labels.txt": "1 1", "train_test_split.txt": "1 1",
        ...           "bounding_boxes.txt": "1 10 5 30 20",      # image 1: x y w h
        ...           "parts/part_locs.txt": "1 5 20 10 1"}      # image 1, part 5 (crown) at x=20, y=10
        >>> for name, text in tables.items():
        ...     os.makedirs(os.path.dirname(os.path.join(root, name)), exist_ok=True)
        ...     with open(os.path.join(root, name), "w") as f:
        ...         print(text, file=f)
        >>> os.makedirs(os.path.join(root, "images", "001.Albatross"))
        >>> _ = tf.io.write_file(os.path.join(root, "images", "001.Albatross", "a.jpg"),
        ...                      tf.io.encode_jpeg(np.zeros((40, 60, 3), np.uint8)))
        >>> train = cub200(root, split="train", image_size=32, batch_size=1)
        >>> batch = next(iter(train))
        >>> sorted(batch), tuple(batch["image"].shape), train.num_classes
        (['image', 'label', 'part_box', 'part_mask'], (1, 32, 32, 3), 1)
        >>> [round(v, 2) for v in batch["part_box"].numpy()[0].tolist()]   # the padded head box
        [0.19, 0.3, 0.32, 0.38]
        >>> tmp.cleanup()
    """
    import tensorflow as tf

    from keras_priors.data.pipeline import make_pipeline

    image_size = check_positive_int("image_size", image_size, "cub200")
    head_padding = check_fraction("head_padding", head_padding, "cub200")
    ann = read_cub_annotations(root, split, segmentations_root)
    has_mask = ann["mask_paths"] is not None
    n = len(ann["image_paths"])
    if check_files:
        for i, path in enumerate(ann["image_paths"]):
            load_pair(path, ann["mask_paths"][i] if has_mask else None, image_size)
    # Ragged head points travel as padded arrays plus a count.
    max_pts = max(1, max(len(p) for p in ann["head_points"]))
    points = np.zeros((n, max_pts, 2), np.float32)
    counts = np.zeros((n,), np.int32)
    for i, p in enumerate(ann["head_points"]):
        points[i, : len(p)] = p
        counts[i] = len(p)

    def _load(path, mask_path, pts, count, bbox):
        image, mask, (h, w) = load_pair(
            path.numpy().decode(), mask_path.numpy().decode() if has_mask else None, image_size
        )
        box = head_box(pts.numpy()[: int(count)], bbox.numpy(), h, w, head_padding)
        if mask is None:
            mask = np.zeros((image_size, image_size, 1), np.float32)
        return image, mask, box, box_mask(box, image_size)

    def _map(path, mask_path, label, pts, count, bbox):
        image, mask, box, part = tf.py_function(
            _load, [path, mask_path, pts, count, bbox], [tf.float32, tf.float32, tf.float32, tf.float32]
        )
        s = image_size
        ex = {
            "image": tf.ensure_shape(image, (s, s, 3)),
            "label": label,
            "part_mask": tf.ensure_shape(part, (s, s, 1)),
            "part_box": tf.ensure_shape(box, (4,)),
        }
        if has_mask:
            ex["object_mask"] = tf.ensure_shape(mask, (s, s, 1))
        return ex

    ds = tf.data.Dataset.from_tensor_slices(
        (ann["image_paths"], ann["mask_paths"] if has_mask else [""] * n, ann["labels"], points, counts, ann["bboxes"])
    )
    ds = ds.map(_map, num_parallel_calls=tf.data.AUTOTUNE)
    ds = make_pipeline(ds, batch_size=batch_size, shuffle=(split == "train") if shuffle is None else shuffle,
                       augment=augment, seed=seed, shuffle_buffer=min(n, 4096))
    ds.num_classes = ann["num_classes"]
    ds.image_ids = ann["image_ids"]
    return ds
