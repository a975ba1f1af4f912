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


def test_layer_contract_locator_options():
    run_layer_test(MaskToBox, {"margin": 0.05, "min_size": 0.3, "floor": 0.5, "empty": "argmax",
                               "stop_gradient": True, "from_logits": True, "image_size": (32, 32)},
                   input_shape=(2, 8, 8, 1), expected_output_shape=(2, 4), expected_num_trainable_weights=0)


@pytest.mark.parity
@pytest.mark.parametrize("method", ["moments", "extent"])
def test_empty_full_and_flat_masks(method):
    # empty, full, flat at 0.3 (below the floor / threshold), flat at 0.8 (above)
    masks = np.stack([np.zeros((9, 9, 1)), np.ones((9, 9, 1)), np.full((9, 9, 1), 0.3), np.full((9, 9, 1), 0.8)])
    masks = masks.astype("float32")
    for kwargs in ({}, {"min_size": 0.25, "empty": "argmax", "floor": 0.5, "margin": 0.1}):
        box = ops.convert_to_numpy(MaskToBox(method=method, **kwargs)(masks))
        np.testing.assert_allclose(box, [[0, 0, 1, 1]] * 4, atol=1e-6, err_msg=str(kwargs))


@pytest.mark.parity
def test_min_size_grows_about_the_centre_and_stays_inside():
    mask = _rect_mask(9, 9, [(4, 4, 4, 4), (0, 0, 0, 0), (2, 2, 6, 6)])
    box = ops.convert_to_numpy(MaskToBox(min_size=0.5)(mask))
    np.testing.assert_allclose(box[0], [0.25, 0.25, 0.75, 0.75], atol=1e-5)  # centred on the pixel
    np.testing.assert_allclose(box[1], [0.0, 0.0, 0.5, 0.5], atol=1e-5)  # moved inside, size kept
    np.testing.assert_allclose(box[2], [0.25, 0.25, 0.75, 0.75], atol=1e-5)  # already big enough
    with_margin = ops.convert_to_numpy(MaskToBox(min_size=0.5, margin=0.125)(mask))
    np.testing.assert_allclose(with_margin[2], [0.125, 0.125, 0.875, 0.875], atol=1e-5)


@pytest.mark.parity
def test_unsure_mask_falls_back_to_a_box_on_its_peak():
    mask = np.full((2, 9, 9, 1), 0.1, "float32")
    mask[0, 2, 6] = 0.4  # nothing above the floor: empty, peak at (2, 6)
    mask[1, 2, 6] = 0.9  # one sure pixel: its own box, grown to min_size
    box = ops.convert_to_numpy(MaskToBox(floor=0.5, min_size=0.25, empty="argmax")(mask))
    np.testing.assert_allclose(box, [[0.125, 0.625, 0.375, 0.875]] * 2, atol=1e-5)
    # the default (empty="image") gives the whole image for the unsure one
    box = ops.convert_to_numpy(MaskToBox(floor=0.5, min_size=0.25)(mask))
    np.testing.assert_allclose(box[0], [0, 0, 1, 1], atol=1e-6)


@pytest.mark.parity
@pytest.mark.parametrize("method", ["moments", "extent"])
def test_coarse_mask_gives_the_box_of_the_pixels_its_cells_cover(method):
    # a 5x6 mask at stride 4 of a 20x24 image: cells (r0..r1, c0..c1) cover pixels 4*r0 .. 4*r1 + 3
    rects = [(1, 2, 3, 4), (0, 0, 4, 5), (2, 3, 2, 3)]
    box = ops.convert_to_numpy(MaskToBox(method=method, image_size=(20, 24))(_rect_mask(5, 6, rects)))
    pixels = [(4 * r0, 4 * c0, 4 * r1 + 3, 4 * c1 + 3) for r0, c0, r1, c1 in rects]
    np.testing.assert_allclose(box, _expected(pixels, 20, 24), atol=1e-5)
    # the same mask at full size gives the same box
    full = np.repeat(np.repeat(_rect_mask(5, 6, rects), 4, axis=1), 4, axis=2)
    np.testing.assert_allclose(ops.convert_to_numpy(MaskToBox(method=method)(full)), box, atol=1e-5)


def test_floor_removes_a_soft_background():
    mask = _rect_mask(16, 16, [(6, 6, 9, 9)]) * 0.9 + 0.05
    wide = ops.convert_to_numpy(MaskToBox()(mask))[0]
    tight = ops.convert_to_numpy(MaskToBox(floor=0.5)(mask))[0]
    assert wide[2] - wide[0] > 0.5  # 5 % everywhere outweighs a 4x4 part
    np.testing.assert_allclose(tight, np.array([6, 6, 9, 9]) / 15, atol=1e-5)


def test_stop_gradient(grad):
    mask = _rect_mask(8, 8, [(2, 2, 5, 4)]) * 0.8 + 0.1
    images = np.random.default_rng(0).uniform(size=(1, 8, 8, 3)).astype("float32")
    crop = PartCrop((4, 4))
    for stop, nonzero in ((False, True), (True, False)):
        to_box = MaskToBox(stop_gradient=stop)
        g_mask, _ = grad(lambda m, im, t=to_box: ops.sum(crop([im, t(m)])), mask, images)
        size = 0.0 if g_mask.dtype == object else float(np.abs(g_mask).max())  # TF: None when cut
        assert (size > 0) == nonzero


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
    with pytest.raises(ValueError, match=r"Expected `min_size` in \[0, 1\]. Received: min_size=1.5"):
        MaskToBox(min_size=1.5)
    with pytest.raises(ValueError, match=r"Expected `floor` in \[0, 1\). Received: floor=1.0"):
        MaskToBox(floor=1.0)
    with pytest.raises(ValueError,
                       match=r"Expected `empty` to be one of \['argmax', 'image'\]. Received: empty='centre'"):
        MaskToBox(empty="centre")
    with pytest.raises(ValueError, match=r"Expected `min_size` > 0. Received: min_size=0.0"):
        MaskToBox(empty="argmax")
    with pytest.raises(ValueError, match=r"Expected `image_size` to be None or a pair of integers >= 1"):
        MaskToBox(image_size=(0, 4))
    with pytest.raises(ValueError, match=r"Expected `image_size` at least the mask's height and width. "
                                         r"Received: image_size=\(4, 4\) for a mask of shape \(1, 8, 8, 1\)"):
        MaskToBox(image_size=(4, 4))(np.ones((1, 8, 8, 1), "float32"))
    with pytest.raises(ValueError, match=r"Expected `mask` with 1 channel.*Received: shape \(1, 4, 4, 3\)"):
        MaskToBox()(np.ones((1, 4, 4, 3), "float32"))
    with pytest.raises(ValueError, match="Expected `mask` to have rank 4"):
        MaskToBox()(np.ones((1, 4, 4), "float32"))
