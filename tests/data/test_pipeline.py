"""Tests for make_pipeline and aligned augmentation."""

import numpy as np
import pytest
import tensorflow as tf

from keras_priors.data.pipeline import augment_example, check_arrays, make_pipeline

MAGENTA = np.array([1.0, 0.0, 1.0], np.float32)
CYAN = np.array([0.0, 1.0, 1.0], np.float32)


def _birds(n=8, s=32, seed=0):
    """Magenta 'bird' rectangles with a cyan 'head' on a green background."""
    rng = np.random.default_rng(seed)
    img = np.zeros((n, s, s, 3), np.float32)
    img[..., 1] = 0.5
    obj = np.zeros((n, s, s, 1), np.float32)
    part = np.zeros((n, s, s, 1), np.float32)
    box = np.zeros((n, 4), np.float32)
    for i in range(n):
        y, x = rng.integers(4, 12, 2)
        obj[i, y : y + 14, x : x + 16] = 1
        img[i, y : y + 14, x : x + 16] = MAGENTA
        hy, hx = y + rng.integers(0, 6), x + rng.integers(0, 8)
        part[i, hy : hy + 5, hx : hx + 6] = 1
        img[i, hy : hy + 5, hx : hx + 6] = CYAN
        box[i] = np.array([hy, hx, hy + 4, hx + 5], np.float32) / (s - 1)
    return {"image": img, "object_mask": obj, "part_mask": part, "part_box": box,
            "label": rng.integers(0, 2, n).astype(np.int32)}


def _tight_box(mask):
    s = mask.shape[0]
    rows, cols = np.flatnonzero(mask.any(1)), np.flatnonzero(mask.any(0))
    return np.array([rows[0], cols[0], rows[-1], cols[-1]], np.float32) / (s - 1)


def test_flip_is_exact():
    data = _birds()
    tf.random.set_seed(0)
    for ex in make_pipeline(data, batch_size=None, shuffle=False, augment=("flip",)).as_numpy_iterator():
        magenta = np.all(ex["image"] == MAGENTA, -1) | np.all(ex["image"] == CYAN, -1)
        np.testing.assert_array_equal(magenta, ex["object_mask"][..., 0] > 0)
        np.testing.assert_allclose(ex["part_box"], _tight_box(ex["part_mask"][..., 0]), atol=1e-6)


def test_batch_examples_get_their_own_draws():
    data = _birds(n=16)
    tf.random.set_seed(4)
    out = next(make_pipeline(data, batch_size=16, shuffle=False, augment=("flip",)).as_numpy_iterator())
    flipped = [not np.array_equal(out["image"][i], data["image"][i]) for i in range(16)]
    assert 0 < sum(flipped) < 16
    for i in range(16):
        expected = data["part_mask"][i, :, ::-1] if flipped[i] else data["part_mask"][i]
        np.testing.assert_array_equal(out["part_mask"][i], expected)
        np.testing.assert_allclose(out["part_box"][i], _tight_box(out["part_mask"][i][..., 0]), atol=1e-6)


def test_flip_box_math():
    ex = {"image": tf.zeros((4, 4, 3)), "part_box": tf.constant([0.1, 0.2, 0.5, 0.6])}
    flipped = [augment_example(ex, ("flip",))["part_box"].numpy() for _ in range(20)]
    seen = {tuple(round(float(v), 5) for v in b) for b in flipped}
    assert seen == {(0.1, 0.2, 0.5, 0.6), (0.1, 0.4, 0.5, 0.8)}


def _unbatch(ds):
    for b in ds.as_numpy_iterator():
        for i in range(len(b["label"])):
            yield {k: v[i] for k, v in b.items()}


@pytest.mark.parametrize("batch_size", [None, 5])
def test_crop_and_flip_keep_masks_and_boxes_aligned(batch_size):
    data = _birds(n=12, s=32, seed=1)
    tf.random.set_seed(1)
    ds = make_pipeline(data, batch_size=batch_size, shuffle=False, augment={"flip": True, "crop": 0.6})
    examples = ds.as_numpy_iterator() if batch_size is None else _unbatch(ds)
    changed = 0
    for ex, orig in zip(examples, data["part_box"]):
        img, obj, part = ex["image"], ex["object_mask"][..., 0] > 0, ex["part_mask"][..., 0] > 0
        bird = np.abs(img - MAGENTA).max(-1) < 0.5
        head = np.abs(img - CYAN).max(-1) < 0.5
        # Mask and coloured pixels agree except on a thin resampling boundary.
        assert ((bird | head) == obj).mean() > 0.97
        assert (head == part).mean() > 0.97
        # The box still encloses the part mask (to within one pixel of resampling).
        y1, x1, y2, x2 = ex["part_box"] * 31
        rows, cols = np.nonzero(part)
        assert rows.min() >= y1 - 1 and rows.max() <= y2 + 1
        assert cols.min() >= x1 - 1 and cols.max() <= x2 + 1
        # The crop keeps the whole head.
        assert part.sum() >= 25
        changed += not np.allclose(ex["part_box"], orig)
    assert changed > 6


def test_color_jitter_touches_image_only():
    data = _birds(n=4)
    tf.random.set_seed(2)
    out = next(make_pipeline(data, batch_size=4, shuffle=False, augment={"color": 0.3}).as_numpy_iterator())
    for k in ("object_mask", "part_mask", "part_box", "label"):
        np.testing.assert_array_equal(out[k], data[k])
    assert not np.allclose(out["image"], data["image"])
    assert out["image"].min() >= 0.0 and out["image"].max() <= 1.0


def test_batching_shuffle_and_dataset_input():
    data = _birds(n=10)
    batches = list(make_pipeline(data, batch_size=4, shuffle=True, seed=3).as_numpy_iterator())
    assert [len(b["label"]) for b in batches] == [4, 4, 2]
    labels = np.concatenate([b["label"] for b in batches])
    assert sorted(labels) == sorted(data["label"])
    ds = tf.data.Dataset.from_tensor_slices(data)
    out = list(make_pipeline(ds, batch_size=5, shuffle=False, drop_remainder=True))
    assert len(out) == 2
    np.testing.assert_array_equal(out[0]["image"].numpy(), data["image"][:5])


def test_bad_inputs():
    data = _birds(n=4)
    with pytest.raises(ValueError, match="'label' has 3"):
        check_arrays({**data, "label": data["label"][:3]})
    with pytest.raises(ValueError, match=r"object_mask.*match the images' size \(32, 32\)"):
        check_arrays({**data, "object_mask": np.zeros((4, 16, 16, 1))})
    with pytest.raises(ValueError, match="empty"):
        make_pipeline({k: v[:0] for k, v in data.items()})
    with pytest.raises(ValueError, match=r"labels in \[0, 1\). Received: label=1"):
        make_pipeline({**data, "label": np.array([0, 1, 0, 0], np.int32)}, num_classes=1)
    with pytest.raises(ValueError, match="Unknown augmentation.*'rotate'"):
        make_pipeline(data, augment=("rotate",))
    with pytest.raises(ValueError, match="batch_size"):
        make_pipeline(data, batch_size=0)
    with pytest.raises(ValueError, match="dict of arrays or a tf.data.Dataset"):
        make_pipeline([1, 2, 3])
    with pytest.raises(ValueError, match="'image' key"):
        make_pipeline({"label": np.zeros(3)})
