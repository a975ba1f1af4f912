"""Tests for image_folder on a tiny images/<class>/* + masks/<class>/* fixture."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_priors.data.folders import image_folder


def _img(path, array, png=False):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    data = tf.io.encode_png(array) if png else tf.io.encode_jpeg(array, quality=95)
    tf.io.write_file(str(path), data)


def make_folder(root, size=(20, 24)):
    h, w = size
    for cls in ("zebra", "apple"):
        for k in range(2):
            img = np.zeros((h, w, 3), np.uint8)
            img[4:16, 6:18] = 255
            _img(os.path.join(root, "images", cls, f"{cls}{k}.jpg"), img)
            mask = np.zeros((h, w, 1), np.uint8)
            mask[4:16, 6:18] = 255
            _img(os.path.join(root, "masks", cls, f"{cls}{k}.png"), mask, png=True)
    return os.path.join(root, "images"), os.path.join(root, "masks")


def test_labels_from_sorted_classes_and_masks(tmp_path):
    images, masks = make_folder(str(tmp_path))
    ds = image_folder(images, masks, image_size=12)
    assert ds.class_names == ["apple", "zebra"]
    examples = list(ds.as_numpy_iterator())
    assert [int(e["label"]) for e in examples] == [0, 0, 1, 1]
    ex = examples[0]
    assert ex["image"].shape == (12, 12, 3) and ex["object_mask"].shape == (12, 12, 1)
    white = ex["image"].mean(-1) > 0.5
    assert (white == (ex["object_mask"][..., 0] > 0)).mean() > 0.9
    no_mask = next(image_folder(images, image_size=12, batch_size=4).as_numpy_iterator())
    assert "object_mask" not in no_mask and no_mask["image"].shape == (4, 12, 12, 3)


def test_mask_count_and_size_errors(tmp_path):
    images, masks = make_folder(str(tmp_path))
    os.remove(os.path.join(masks, "zebra", "zebra1.png"))
    with pytest.raises(ValueError, match=r"one mask per image.*2 images, received 1 masks; no mask for 'zebra1.jpg'"):
        image_folder(images, masks)
    _img(os.path.join(masks, "zebra", "zebra1.png"), np.zeros((5, 5, 1), np.uint8), png=True)
    match = r"zebra1.png.*does not match.*expected size \(20, 24\), received \(5, 5\)"
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        list(image_folder(images, masks, image_size=8))
    with pytest.raises(ValueError, match=r"zebra1.png.*does not match"):
        image_folder(images, masks, image_size=8, check_files=True)
    _img(os.path.join(masks, "zebra", "extra.png"), np.zeros((5, 5, 1), np.uint8), png=True)
    with pytest.raises(ValueError, match="2 images, received 3 masks"):
        image_folder(images, masks)


def test_corrupt_image_and_empty_folders(tmp_path):
    images, _ = make_folder(str(tmp_path))
    with open(os.path.join(images, "apple", "apple0.jpg"), "wb") as f:
        f.write(b"\x00garbage")
    with pytest.raises(tf.errors.InvalidArgumentError, match=r"Could not decode image file .*apple0.jpg"):
        list(image_folder(images, image_size=8))
    with pytest.raises(ValueError, match=r"Could not decode image file .*apple0.jpg"):
        image_folder(images, image_size=8, check_files=True)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="one sub-folder per class"):
        image_folder(str(empty))
    (empty / "cls").mkdir()
    with pytest.raises(ValueError, match="No images found"):
        image_folder(str(empty))
    with pytest.raises(FileNotFoundError, match="Images folder not found"):
        image_folder(str(tmp_path / "missing"))
    with pytest.raises(FileNotFoundError, match="Masks folder not found"):
        image_folder(images, str(tmp_path / "missing"))
