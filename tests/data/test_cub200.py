"""Tests for the CUB-200-2011 loader on a tiny fixture in the exact on-disk layout."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_priors.data.cub200 import cub200, head_box, read_cub_annotations

# image_id, relative path, class_id (1-based), is_train, (H, W)
IMAGES = [
    (1, "001.Black_footed_Albatross/Black_Footed_Albatross_0001_1.jpg", 1, 1, (40, 60)),
    (2, "001.Black_footed_Albatross/Black_Footed_Albatross_0002_2.jpg", 1, 0, (50, 50)),
    (3, "002.Laysan_Albatross/Laysan_Albatross_0003_3.jpg", 2, 1, (30, 40)),
]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def make_cub(root, segmentations="root"):
    """Write the fixture; segmentations under root, next to it ("sibling") or nowhere (None)."""
    root = str(root)
    os.makedirs(os.path.join(root, "images"), exist_ok=True)
    _write(os.path.join(root, "classes.txt"), "1 001.Black_footed_Albatross\n2 002.Laysan_Albatross\n")
    _write(os.path.join(root, "images.txt"), "".join(f"{i} {p}\n" for i, p, *_ in IMAGES))
    _write(os.path.join(root, "image_class_labels.txt"), "".join(f"{i} {c}\n" for i, _, c, *_ in IMAGES))
    _write(os.path.join(root, "train_test_split.txt"), "".join(f"{i} {t}\n" for i, _, _, t, _ in IMAGES))
    # x y w h: bird occupies the left half (rows 5..h-5, cols 2..w/2).
    _write(os.path.join(root, "bounding_boxes.txt"),
           "".join(f"{i} 2.0 5.0 {w // 2 - 2}.0 {h - 10}.0\n" for i, _, _, _, (h, w) in IMAGES))
    lines = []
    for i, *_ in IMAGES:
        for part in range(1, 16):
            visible = 1 if (i == 1 and part in (2, 5, 7)) or (i == 2 and part in (3, 15)) else 0
            x, y = (10.0 + part, 8.0 + part) if visible else (0.0, 0.0)
            lines.append(f"{i} {part} {x} {y} {visible}\n")
    _write(os.path.join(root, "parts", "part_locs.txt"), "".join(lines))
    seg_root = {"root": os.path.join(root, "segmentations"),
                "sibling": os.path.join(os.path.dirname(root), "segmentations"), None: None}[segmentations]
    for i, rel, _, _, (h, w) in IMAGES:
        img = np.zeros((h, w, 3), np.uint8)
        img[..., 2] = 200
        img[5 : h - 5, 2 : w // 2] = (250, 40, 40)
        path = os.path.join(root, "images", rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tf.io.write_file(path, tf.io.encode_jpeg(img, quality=95))
        if seg_root:
            seg = np.zeros((h, w, 1), np.uint8)
            seg[5 : h - 5, 2 : w // 2] = 255
            seg[0, 0] = 100  # soft value below the threshold
            spath = os.path.join(seg_root, os.path.splitext(rel)[0] + ".png")
            os.makedirs(os.path.dirname(spath), exist_ok=True)
            tf.io.write_file(spath, tf.io.encode_png(seg))
    return root


def test_annotations_and_labels(tmp_path):
    root = make_cub(tmp_path / "CUB_200_2011")
    train = read_cub_annotations(root, "train")
    assert train["image_ids"] == [1, 3]
    np.testing.assert_array_equal(train["labels"], [0, 1])
    assert train["num_classes"] == 2
    np.testing.assert_allclose(train["head_points"][0], [[12, 10], [15, 13], [17, 15]])
    assert len(train["head_points"][1]) == 0
    test = read_cub_annotations(root, "test")
    assert test["image_ids"] == [2]
    # Part 3 (belly) is not a head part: only the throat counts.
    np.testing.assert_allclose(test["head_points"][0], [[25, 23]])
    assert read_cub_annotations(root, "all")["image_ids"] == [1, 2, 3]


def test_head_box_padding_and_fallback():
    pts = np.array([[12, 10], [17, 15]], np.float32)
    box = head_box(pts, (2, 5, 28, 30), height=40, width=60, padding=0.1)
    pad = 0.1 * np.sqrt(28 * 30)
    np.testing.assert_allclose(box, np.array([10 - pad, 12 - pad, 15 + pad, 17 + pad]) / [39, 59, 39, 59], rtol=1e-5)
    # No visible head part: the bird box. Clipped to [0, 1].
    np.testing.assert_allclose(head_box(np.zeros((0, 2)), (2, 5, 28, 30), 40, 60, 0.1),
                               [5 / 39, 2 / 59, 35 / 39, 30 / 59], rtol=1e-5)
    np.testing.assert_allclose(head_box(np.array([[0, 0]]), (0, 0, 10, 10), 20, 20, 0.5), [0, 0, 5 / 19, 5 / 19])


def test_dataset_examples(tmp_path):
    root = make_cub(tmp_path / "CUB_200_2011")
    ds = cub200(root, split="train", image_size=16, shuffle=False)
    assert ds.num_classes == 2 and ds.image_ids == [1, 3]
    examples = list(ds.as_numpy_iterator())
    assert len(examples) == 2
    ex = examples[0]
    assert ex["image"].shape == (16, 16, 3) and ex["image"].dtype == np.float32
    assert ex["label"] == 0 and examples[1]["label"] == 1
    obj = ex["object_mask"][..., 0]
    assert set(np.unique(obj)) == {0.0, 1.0}
    red = (ex["image"][..., 0] > 0.6) & (ex["image"][..., 2] < 0.5)
    assert (red == (obj > 0)).mean() > 0.9
    # part_mask is the head box filled.
    part = ex["part_mask"][..., 0] > 0
    coords = np.arange(16) / 15
    y1, x1, y2, x2 = ex["part_box"]
    in_y = (coords >= y1 - 1e-6) & (coords <= y2 + 1e-6)
    in_x = (coords >= x1 - 1e-6) & (coords <= x2 + 1e-6)
    expected = in_y[:, None] & in_x[None]
    np.testing.assert_array_equal(part, expected)
    # Second image has no visible head part: fallback to the bird box.
    np.testing.assert_allclose(examples[1]["part_box"], [5 / 29, 2 / 39, 25 / 29, 20 / 39], rtol=1e-5)
    batched = cub200(root, split="all", image_size=16, batch_size=2, shuffle=False)
    assert [b["image"].shape[0] for b in batched] == [2, 1]


def test_segmentations_next_to_root_or_missing(tmp_path):
    root = make_cub(tmp_path / "CUB_200_2011", segmentations="sibling")
    ex = next(cub200(root, "train", image_size=16).as_numpy_iterator())
    assert "object_mask" in ex
    root2 = make_cub(tmp_path / "other" / "CUB_200_2011", segmentations=None)
    ex = next(cub200(root2, "train", image_size=16).as_numpy_iterator())
    assert "object_mask" not in ex and "part_box" in ex


def test_errors(tmp_path):
    root = make_cub(tmp_path / "CUB_200_2011")
    with pytest.raises(ValueError, match="split='val'"):
        cub200(root, split="val")
    with pytest.raises(FileNotFoundError, match="CUB root folder not found"):
        cub200(str(tmp_path / "nope"))
    # Corrupt image: the error names the file.
    bad = os.path.join(root, "images", IMAGES[0][1])
    with open(bad, "wb") as f:
        f.write(b"not a jpeg at all")
    with pytest.raises(tf.errors.InvalidArgumentError, match="Could not decode image file .*Albatross_0001_1.jpg"):
        list(cub200(root, "train", image_size=16, shuffle=False))
    with pytest.raises(ValueError, match="Black_Footed_Albatross_0001_1.jpg"):
        cub200(root, "train", image_size=16, check_files=True)


def test_annotation_errors(tmp_path):
    root = make_cub(tmp_path / "CUB_200_2011")
    _write(os.path.join(root, "image_class_labels.txt"), "1 1\n2 1\n3 7\n")
    with pytest.raises(ValueError, match=r"image_class_labels.txt.*\[1, 2\]. Received: 7 for image_id=3"):
        cub200(root, "train")
    _write(os.path.join(root, "image_class_labels.txt"), "1 1\n2 1\n3 2\n")
    _write(os.path.join(root, "train_test_split.txt"), "1 1\n2 1\n3 1\n")
    with pytest.raises(ValueError, match="split 'test'.*is empty"):
        cub200(root, "test")
    _write(os.path.join(root, "train_test_split.txt"), "1 1\n2 0\n3 x\n")
    with pytest.raises(ValueError, match="train_test_split.txt:3: could not parse"):
        cub200(root, "test")
    _write(os.path.join(root, "train_test_split.txt"), "1 1\n2 0\n3 1\n")
    os.remove(os.path.join(root, "parts", "part_locs.txt"))
    with pytest.raises(FileNotFoundError, match="part_locs.txt"):
        cub200(root)


def test_segmentation_errors(tmp_path):
    root = make_cub(tmp_path / "CUB_200_2011")
    seg = os.path.join(root, "segmentations", os.path.splitext(IMAGES[2][1])[0] + ".png")
    tf.io.write_file(seg, tf.io.encode_png(np.zeros((10, 10, 1), np.uint8)))
    match = r"does not match its image.*expected size \(30, 40\), received \(10, 10\)"
    with pytest.raises(tf.errors.InvalidArgumentError, match=match):
        list(cub200(root, "train", image_size=16, shuffle=False))
    os.remove(seg)
    with pytest.raises(FileNotFoundError, match="Segmentation not found for image_id=3"):
        cub200(root, "train")
