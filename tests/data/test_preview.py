"""Tests for the PNG preview grid."""

import numpy as np
import pytest
import tensorflow as tf

from keras_priors.data import make_kakapo, make_pipeline, preview, preview_kakapo, render_grid


def test_render_grid_draws_outline_and_box():
    img = np.zeros((1, 10, 10, 3), np.float32)
    mask = np.zeros((1, 10, 10, 1), np.float32)
    mask[0, 2:8, 2:8] = 1
    box = np.array([[0.0, 0.0, 3 / 9, 3 / 9]], np.float32)
    grid = render_grid({"image": img, "object_mask": mask, "part_box": box}, n=1, scale=1)
    tile = grid[2:12, 2:12]
    assert tile.shape == (10, 10, 3)
    red = np.all(tile == [255, 26, 26], -1)
    yellow = np.all(tile == [255, 230, 0], -1)
    assert red[7, 5] and red[5, 7] and not red[4, 4]  # outline only, not the inside
    assert yellow[0, 0] and yellow[3, 1] and yellow[1, 3] and not yellow[1, 1]


def test_preview_writes_png(tmp_path):
    path = preview(make_kakapo(6, image_size=24), str(tmp_path / "a" / "grid.png"), n=6)
    png = tf.io.decode_png(tf.io.read_file(path)).numpy()
    assert png.ndim == 3 and png.shape[0] > 48
    ds = make_pipeline(make_kakapo(10, image_size=24), batch_size=4, shuffle=False)
    path = preview(ds, str(tmp_path / "ds.png"), n=5)
    assert tf.io.decode_png(tf.io.read_file(path)).shape[0] > 48
    path = preview_kakapo(str(tmp_path / "k.png"), n=4, seed=1)
    assert tf.io.decode_png(tf.io.read_file(path)).shape[-1] in (3, 4)
    with pytest.raises(ValueError, match="n=0"):
        preview(make_kakapo(2, image_size=16), str(tmp_path / "x.png"), n=0)


def test_preview_without_matplotlib(tmp_path, monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError("no matplotlib")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    data = make_kakapo(4, image_size=16)
    path = preview(data, str(tmp_path / "np.png"), n=4)
    png = tf.io.decode_png(tf.io.read_file(path)).numpy()
    np.testing.assert_array_equal(png, render_grid(data, 4))


def test_mask_outline_is_the_inner_boundary_for_one_mask_or_a_batch():
    from keras_priors.data import mask_outline

    masks = np.zeros((2, 6, 6), "float32")
    masks[0, 1:5, 1:5] = 1
    masks[1, :3, :] = 1  # touches the border: closed there
    batch = mask_outline(masks)
    assert batch.dtype == bool and batch.shape == (2, 6, 6)
    for m, o in zip(masks, batch):
        np.testing.assert_array_equal(mask_outline(m), o)
        assert not (o & (m < 0.5)).any()  # only mask pixels
    assert batch[0].sum() == 12 and not batch[0, 2:4, 2:4].any()
    np.testing.assert_array_equal(batch[1, :3].sum(axis=1), [6, 2, 6])
    with pytest.raises(ValueError, match=r"Expected `mask` of shape \(\.\.\., H, W\)"):
        mask_outline(np.ones(5))
