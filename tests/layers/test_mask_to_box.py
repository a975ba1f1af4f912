import numpy as np
import pytest
from keras import ops

from harness import run_layer_test
from keras_priors.layers import MaskToBox, PartCrop


def _rect_mask(h, w, rects):
    mask = np.zeros((len(rects), h, w, 1), "float32")
    for b, (r0, c0, r1, c1) in enumerate(rects):
        mask[b, r0 : r1 + 1, c0 : c1 + 1] = 1.0
    return mask


RECTS = [(2, 3, 5, 9), (0, 0, 9, 11), (4, 4, 4, 4), (1, 0, 8, 2)]


def _expected(rects, h, w):
    return np.array([[r0 / (h - 1), c0 / (w - 1), r1 / (h - 1), c1 / (w - 1)] for r0, c0, r1, c1 in rects], "float32")


@pytest.mark.parametrize("method", ["moments", "extent"])
def test_layer_contract(method):
    run_layer_test(MaskToBox, {"method": method, "margin": 0.05}, input_shape=(2, 8, 8, 1),
                   expected_output_shape=(2, 4), expected_num_trainable_weights=0)


@pytest.mark.parity
@pytest.mark.parametrize("method", ["moments", "extent"])
def test_exact_rectangles(method):
    mask = _rect_mask(10, 12, RECTS)
    box = ops.convert_to_numpy(MaskToBox(method=method)(mask))
    np.testing.assert_allclose(box, _expected(RECTS, 10, 12), atol=1e-5)


@pytest.mark.parity
def test_margin_clip_empty_and_logits():
    mask = _rect_mask(10, 12, RECTS[:3])
    mask = np.concatenate([mask, np.zeros_like(mask[:1])])  # + an empty mask
    box = ops.convert_to_numpy(MaskToBox(margin=0.1)(mask))
    want = _expected(RECTS[:3], 10, 12) + np.array([-0.1, -0.1, 0.1, 0.1], "float32")
    np.testing.assert_allclose(box[:3], np.clip(want, 0, 1), atol=1e-5)
    np.testing.assert_allclose(box[3], [0, 0, 1, 1], atol=1e-6)
    box_e = ops.convert_to_numpy(MaskToBox(method="extent")(mask))
    np.testing.assert_allclose(box_e[3], [0, 0, 1, 1], atol=1e-6)
    logits = np.where(mask > 0.5, 20.0, -20.0).astype("float32")
    box_l = ops.convert_to_numpy(MaskToBox(from_logits=True)(logits))
    np.testing.assert_allclose(box_l[:3], _expected(RECTS[:3], 10, 12), atol=1e-5)


@pytest.mark.parity
def test_soft_mask_moments_match_numpy(rng):
    mask = rng.uniform(size=(4, 10, 12, 1)).astype("float32")
    box = ops.convert_to_numpy(MaskToBox(num_std=1.0)(mask))
    m = mask[0, ..., 0].astype("float64")
    rows = m.sum(1)
    mean = (rows * np.arange(10)).sum() / rows.sum()
    var = (rows * (np.arange(10) - mean) ** 2).sum() / rows.sum()
    half = max(np.sqrt(var + 1 / 12) - 0.5, 0.0)
    np.testing.assert_allclose(box[0, [0, 2]], np.clip([(mean - half) / 9, (mean + half) / 9], 0, 1), atol=1e-5)


def test_threshold_extent():
    mask = np.zeros((1, 5, 5, 1), "float32")
    mask[0, 1, 1] = 0.4
    mask[0, 3, 2] = 0.9
    box = ops.convert_to_numpy(MaskToBox(method="extent", threshold=0.5)(mask))
    np.testing.assert_allclose(box, [[0.75, 0.5, 0.75, 0.5]], atol=1e-6)
    box = ops.convert_to_numpy(MaskToBox(method="extent", threshold=0.3)(mask))
    np.testing.assert_allclose(box, [[0.25, 0.25, 0.75, 0.5]], atol=1e-6)


def test_moments_box_is_differentiable_and_feeds_part_crop(grad, rng):
    mask = _rect_mask(8, 8, [(2, 2, 5, 4)])
    mask = np.clip(mask + rng.uniform(0, 0.1, size=mask.shape), 0, 1).astype("float32")
    images = rng.uniform(size=(1, 8, 8, 3)).astype("float32")
    to_box, crop = MaskToBox(), PartCrop((4, 4))
    g_mask, _ = grad(lambda m, im: ops.sum(crop([im, to_box(m)])), mask, images)
    assert np.all(np.isfinite(g_mask)) and np.abs(g_mask).max() > 0


def test_errors():
    with pytest.raises(ValueError, match="Expected `method` to be one of"):
        MaskToBox(method="hull")
    with pytest.raises(ValueError, match="threshold"):
        MaskToBox(threshold=2.0)
    with pytest.raises(ValueError, match="margin"):
        MaskToBox(margin=-0.1)
    with pytest.raises(ValueError, match=r"Expected `mask` with 1 channel.*Received: shape \(1, 4, 4, 3\)"):
        MaskToBox()(np.ones((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="Expected `mask` to have rank 4"):
        MaskToBox()(np.ones((1, 4, 4), "float32"))
