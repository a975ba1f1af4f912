"""Tests for the synthetic kakapo data set."""

import time

import numpy as np
import pytest

from keras_priors.data.kakapo import GROUND, SKY, kakapo, make_kakapo


@pytest.fixture(scope="module")
def train():
    return make_kakapo(600, image_size=48, seed=1, background_bias=0.95, hard_fraction=0.2)


@pytest.mark.parity
def test_shapes_dtypes_and_ranges(train):
    n, s = 600, 48
    assert train["image"].shape == (n, s, s, 3) and train["image"].dtype == np.float32
    for k in ("object_mask", "part_mask"):
        assert train[k].shape == (n, s, s, 1) and train[k].dtype == np.float32
        assert set(np.unique(train[k])) <= {0.0, 1.0}
    assert train["part_box"].shape == (n, 4) and train["part_box"].dtype == np.float32
    for k in ("label", "aux_label", "group", "background", "hard"):
        assert train[k].shape == (n,) and train[k].dtype == np.int32
    assert 0.0 <= train["image"].min() and train["image"].max() <= 1.0
    np.testing.assert_array_equal(train["group"], train["label"] * 4 + train["background"])
    # kakapo is species 0 and only the kakapo.
    np.testing.assert_array_equal(train["aux_label"] == 0, train["label"] == 0)
    assert set(np.unique(train["aux_label"])) == {0, 1, 2, 3, 4}


@pytest.mark.parity
def test_deterministic_by_seed():
    a, b = make_kakapo(20, image_size=32, seed=7), make_kakapo(20, image_size=32, seed=7)
    c = make_kakapo(20, image_size=32, seed=8)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k])
    assert not np.array_equal(a["image"], c["image"])
    # Threads do not change the result.
    d = make_kakapo(20, image_size=32, seed=7, chunk_size=6, num_threads=1)
    e = make_kakapo(20, image_size=32, seed=7, chunk_size=6, num_threads=3)
    for k in a:
        np.testing.assert_array_equal(d[k], e[k])


@pytest.mark.parity
def test_part_inside_object_and_box_is_tight(train):
    obj, part = train["object_mask"][..., 0] > 0, train["part_mask"][..., 0] > 0
    assert not (part & ~obj).any()
    assert (part.sum((1, 2)) > 0).all(), "every head has visible pixels"
    s = part.shape[1]
    for i in range(0, len(part), 37):
        rows, cols = np.flatnonzero(part[i].any(1)), np.flatnonzero(part[i].any(0))
        expected = np.array([rows[0], cols[0], rows[-1], cols[-1]], np.float32) / (s - 1)
        np.testing.assert_allclose(train["part_box"][i], expected, atol=1e-6)


def test_box_crops_the_head_with_crop_and_resize(train):
    import tensorflow as tf

    i = 3
    crop = tf.image.crop_and_resize(train["part_mask"][i : i + 1], train["part_box"][i : i + 1], [0], (8, 8))
    # Edges of the tight box touch the head: first/last row and column of the crop are not empty.
    crop = crop.numpy()[0, ..., 0] > 0
    assert crop[0].any() and crop[-1].any() and crop[:, 0].any() and crop[:, -1].any()


@pytest.mark.parity
def test_kakapo_never_in_the_sky_and_train_bias():
    for bias in (0.95, 0.5, 0.0):
        d = make_kakapo(800, image_size=24, seed=2, background_bias=bias)
        assert not ((d["label"] == 0) & (d["background"] == SKY)).any()
    d = make_kakapo(2000, image_size=24, seed=3, background_bias=0.95)
    kak, other = d["label"] == 0, d["label"] == 1
    assert (d["background"][kak] == GROUND).mean() > 0.93
    assert (d["background"][other] == GROUND).mean() < 0.05


@pytest.mark.parity
def test_test_split_background_independent_of_label_off_sky():
    d = make_kakapo(4000, image_size=24, seed=4, background_bias=0.0)
    off_sky = d["background"] != SKY
    for b in (1, 2, 3):
        p_k = (d["background"][(d["label"] == 0)] == b).mean()
        p_o = (d["background"][(d["label"] == 1) & off_sky] == b).mean()
        assert abs(p_k - 1 / 3) < 0.04 and abs(p_o - 1 / 3) < 0.04


def test_label_lives_in_the_head_not_the_body(train):
    img, obj, part = train["image"], train["object_mask"][..., 0] > 0, train["part_mask"][..., 0] > 0
    body = obj & ~part
    clean = train["hard"] == 0

    def mean_colour(mask, which):
        sel = clean & which
        return np.array([img[i][mask[i]].mean(0) for i in np.flatnonzero(sel)]).mean(0)

    kak, other = train["label"] == 0, train["label"] == 1
    body_gap = np.abs(mean_colour(body, kak) - mean_colour(body, other)).max()
    head_gap = np.abs(mean_colour(part, kak) - mean_colour(part, other)).max()
    assert body_gap < 0.04, body_gap
    assert head_gap > 2 * body_gap
    # Head shape: the kakapo's facial disc is wider than tall, the others' heads are not.
    width, height = part.any(1).sum(1), part.any(2).sum(1)
    assert (width / height)[kak & clean].mean() > (width / height)[other & clean].mean() + 0.1


def test_hard_fraction():
    d = make_kakapo(1000, image_size=24, seed=5, hard_fraction=0.3)
    assert 0.25 < (d["hard"] > 0).mean() < 0.35
    assert set(np.unique(d["hard"])) == {0, 1, 2, 3}
    assert (make_kakapo(200, image_size=24, hard_fraction=0.0)["hard"] == 0).all()


def test_generation_is_fast():
    start = time.perf_counter()
    make_kakapo(2000, image_size=64, seed=0)
    # Target is 10k in 5 s on 2 cores; allow slack for a loaded CI machine.
    assert time.perf_counter() - start < 6.0


def test_bad_arguments():
    cases = [
        ({"num_samples": 0}, "num_samples=0"),
        ({"num_samples": 4, "image_size": 8}, "image_size=8"),
        ({"num_samples": 4, "background_bias": 1.5}, "background_bias=1.5"),
        ({"num_samples": 4, "hard_fraction": -0.1}, "hard_fraction=-0.1"),
        ({"num_samples": 4, "species": 0}, "species=0"),
        ({"num_samples": 4, "seed": "a"}, "seed='a'"),
    ]
    for kwargs, match in cases:
        with pytest.raises(ValueError, match=match):
            make_kakapo(**kwargs)


def test_kakapo_datasets():
    train, test = kakapo(split=("train", "test"), image_size=32, num_samples=40, batch_size=16)
    batch = next(iter(train))
    assert batch["image"].shape == (16, 32, 32, 3)
    assert batch["part_box"].shape == (16, 4)
    sizes = [b["label"].shape[0] for b in test]
    assert sizes == [16, 16, 8]
    single = kakapo("val", image_size=32, num_samples=10, batch_size=None)
    assert next(iter(single))["image"].shape == (32, 32, 3)
    # Splits differ, and train differs from test in its background bias.
    arrays = kakapo(split=("train", "test"), image_size=24, num_samples=600, as_numpy=True)
    kak_ground = [(a["background"][a["label"] == 0] == GROUND).mean() for a in arrays]
    assert kak_ground[0] > 0.9 and kak_ground[1] < 0.5


def test_kakapo_unknown_split():
    with pytest.raises(ValueError, match="split='validation'"):
        kakapo(split="validation", num_samples=4)
    with pytest.raises(ValueError, match="at least one split"):
        kakapo(split=(), num_samples=4)
