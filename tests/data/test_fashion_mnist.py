"""Tests for the Fashion-MNIST IDX reader and its decoy / texture variants."""

import gzip
import os

import numpy as np
import pytest

from keras_priors.data import fashion_mnist as fm


def _idx(array, magic_type=0x08):
    header = bytes([0, 0, magic_type, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    return header + array.astype(np.uint8).tobytes()


def make_idx(folder, n_train=30, n_test=20, gz=True, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(folder, exist_ok=True)
    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        images = np.zeros((n, 28, 28), np.uint8)
        images[:, 6:22, 8:20] = rng.integers(100, 256, (n, 16, 12))
        labels = (np.arange(n) % 10).astype(np.uint8)
        for stem, arr in zip(fm._FILES[split], (images, labels)):
            path = os.path.join(folder, stem + (".gz" if gz else ""))
            with (gzip.open if gz else open)(path, "wb") as f:
                f.write(_idx(arr))
        out[split] = (images, labels)
    return out


@pytest.mark.parity
@pytest.mark.parametrize("gz", [True, False])
def test_read_idx_round_trip(tmp_path, gz):
    ref = make_idx(str(tmp_path), gz=gz)
    d = fm.load_fashion_mnist(str(tmp_path))
    for split in ("train", "test"):
        np.testing.assert_array_equal(d[split]["image"], ref[split][0])
        np.testing.assert_array_equal(d[split]["label"], ref[split][1])
        assert d[split]["label"].dtype == np.int32
    single = fm.load_fashion_mnist(str(tmp_path), split="test")
    assert single["image"].shape == (20, 28, 28)


def test_corrupt_files(tmp_path):
    make_idx(str(tmp_path), gz=False)
    path = os.path.join(str(tmp_path), "train-labels-idx1-ubyte")
    with open(path, "wb") as f:
        f.write(b"\x12\x34\x08\x01" + (30).to_bytes(4, "big") + bytes(30))
    with pytest.raises(ValueError, match=r"Corrupt IDX file .*train-labels-idx1-ubyte.*Received: 0x12340801"):
        fm.load_fashion_mnist(str(tmp_path))
    with open(path, "wb") as f:
        f.write(_idx(np.zeros(30, np.uint8))[:-5])
    with pytest.raises(ValueError, match=r"dimensions \(30,\) need 38 bytes, received 33"):
        fm.load_fashion_mnist(str(tmp_path))
    with open(path, "wb") as f:
        f.write(_idx(np.zeros(29, np.uint8)))
    with pytest.raises(ValueError, match="has 30 images but .* has 29 labels"):
        fm.load_fashion_mnist(str(tmp_path), split="train")
    with open(path, "wb") as f:
        f.write(_idx(np.full(30, 12, np.uint8)))
    with pytest.raises(ValueError, match=r"labels in \[0, 10\). Received: 12"):
        fm.load_fashion_mnist(str(tmp_path), split="train")
    bad_gz = os.path.join(str(tmp_path), "x.gz")
    with open(bad_gz, "wb") as f:
        f.write(b"not gzip")
    with pytest.raises(ValueError, match="Could not read IDX file"):
        fm.read_idx(bad_gz)


def test_missing_files_error(tmp_path):
    match = r"Looked in: \[.*empty.*\].*apt-get install dataset-fashion-mnist.*path="
    with pytest.raises(FileNotFoundError, match=match):
        fm.load_fashion_mnist(str(tmp_path / "empty"))
    with pytest.raises(ValueError, match="split='val'"):
        fm.load_fashion_mnist(str(tmp_path), split="val")


@pytest.mark.skipif(not os.path.isdir(fm.DEBIAN_PATH), reason="dataset-fashion-mnist not installed")
def test_real_files_from_debian_location():
    d = fm.load_fashion_mnist(split="test")
    assert d["image"].shape == (10000, 28, 28) and d["image"].dtype == np.uint8
    assert np.bincount(d["label"]).tolist() == [1000] * 10


@pytest.mark.parity
def test_decoy_train_shade_and_masks(tmp_path):
    ref = make_idx(str(tmp_path))
    d = fm.decoy_fashion_mnist("train", path=str(tmp_path), channels=1)
    assert d["image"].shape == (30, 28, 28, 1)
    for i in range(30):
        decoy = d["decoy_mask"][i, ..., 0] > 0
        rows, cols = np.nonzero(decoy)
        assert decoy.sum() == 16 and np.ptp(rows) == 3 and np.ptp(cols) == 3
        assert rows.min() in (0, 24) and cols.min() in (0, 24)
        np.testing.assert_allclose(d["image"][i, decoy, 0], (255 - 25 * d["label"][i]) / 255.0, atol=1e-6)
        # The garment is untouched elsewhere and its mask excludes the swatch.
        np.testing.assert_allclose(d["image"][i, ~decoy, 0], ref["train"][0][i][~decoy] / 255.0, atol=1e-6)
        assert not (d["object_mask"][i, ..., 0].astype(bool) & decoy).any()
        np.testing.assert_array_equal(d["object_mask"][i, ..., 0] > 0, (ref["train"][0][i] > 25) & ~decoy)


def test_decoy_test_shade_is_random_and_padding(tmp_path):
    make_idx(str(tmp_path), n_test=200)
    d = fm.decoy_fashion_mnist("test", path=str(tmp_path), image_size=32, seed=1)
    assert d["image"].shape == (200, 32, 32, 3)
    shades = np.array([d["image"][i, d["decoy_mask"][i, ..., 0] > 0, 0].mean() for i in range(200)])
    from_label = (255 - 25 * d["label"]) / 255.0
    assert 0.03 < np.mean(np.isclose(shades, from_label, atol=1e-4)) < 0.3
    # Padding keeps the swatch inside the original 28x28 area (offset 2).
    rows = np.nonzero(d["decoy_mask"][0, ..., 0])[0]
    assert rows.min() in (2, 26)
    r = fm.decoy_fashion_mnist("test", path=str(tmp_path), image_size=56, resize="resize", num_samples=5)
    assert r["image"].shape == (5, 56, 56, 3) and set(np.unique(r["decoy_mask"])) == {0.0, 1.0}
    with pytest.raises(ValueError, match="resize='crop'"):
        fm.decoy_fashion_mnist("test", path=str(tmp_path), resize="crop")
    with pytest.raises(ValueError, match="channels=2"):
        fm.decoy_fashion_mnist("test", path=str(tmp_path), channels=2)


def test_decoy_shortcut_free_train_split(tmp_path):
    make_idx(str(tmp_path), n_train=200)
    with_shortcut = fm.decoy_fashion_mnist("train", path=str(tmp_path), seed=3)
    free = fm.decoy_fashion_mnist("train", path=str(tmp_path), seed=3, shortcut=False)
    # Same garments and swatch corners; only the swatch shade stops following the label.
    np.testing.assert_array_equal(free["decoy_mask"], with_shortcut["decoy_mask"])
    outside = free["decoy_mask"] == 0
    np.testing.assert_array_equal(free["image"][np.broadcast_to(outside, free["image"].shape)],
                                  with_shortcut["image"][np.broadcast_to(outside, free["image"].shape)])
    shades = np.array([free["image"][i, free["decoy_mask"][i, ..., 0] > 0, 0].mean() for i in range(200)])
    assert np.mean(np.isclose(shades, (255 - 25 * free["label"]) / 255.0, atol=1e-4)) < 0.3
    with pytest.raises(ValueError, match="shortcut='yes'"):
        fm.decoy_fashion_mnist("train", path=str(tmp_path), shortcut="yes")


def test_fashion_on_textures(tmp_path):
    pytest.importorskip("skimage")
    make_idx(str(tmp_path), n_train=200, n_test=200)
    tr = fm.fashion_on_textures("train", path=str(tmp_path), image_size=32, num_samples=None)
    te = fm.fashion_on_textures("test", path=str(tmp_path), image_size=32, num_samples=None)
    for d in (tr, te):
        assert d["image"].shape == (200, 32, 32, 3) and d["image"].dtype == np.float32
        assert 0.0 <= d["image"].min() and d["image"].max() <= 1.0
        np.testing.assert_array_equal(d["group"], d["label"] * 4 + d["background"])
        assert set(np.unique(d["object_mask"])) == {0.0, 1.0}
    assert (tr["background"] == tr["label"] % 4).mean() > 0.85
    assert (te["background"] == te["label"] % 4).mean() < 0.45
    # The garment area differs from the texture, the mask covers it.
    assert 30 < tr["object_mask"][0].sum() < 32 * 32
    with pytest.raises(ValueError, match="Unknown scikit-image photograph.*'nope'"):
        fm.fashion_on_textures("train", path=str(tmp_path), textures=("nope",))
    with pytest.raises(ValueError, match="background_bias"):
        fm.fashion_on_textures("train", path=str(tmp_path), background_bias=2.0)


def test_textures_import_error_message(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def fake_import(name, *args, **kwargs):
        if name.startswith("skimage"):
            raise ImportError("no skimage")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", fake_import)
    with pytest.raises(ImportError, match=r"pip install keras-priors\[vis\]"):
        fm.load_textures(("grass",))


def test_sliced_splits_are_disjoint_parts_of_the_file(tmp_path):
    ref = make_idx(str(tmp_path))
    head = fm.load_fashion_mnist(str(tmp_path), split="train[:24]")
    tail = fm.load_fashion_mnist(str(tmp_path), split="train[24:]")
    np.testing.assert_array_equal(head["image"], ref["train"][0][:24])
    np.testing.assert_array_equal(tail["label"], ref["train"][1][24:])
    assert len(tail["label"]) == 6
    # A sliced train split keeps the training split's default (shortcut on); a validation split asks for none.
    val = fm.decoy_fashion_mnist("train[24:]", path=str(tmp_path), shortcut=False, seed=0)
    assert val["image"].shape == (6, 28, 28, 3)
    shaded = fm.decoy_fashion_mnist("train[:24]", path=str(tmp_path), seed=0)
    shade = (shaded["image"][..., 0] * 255).round()[shaded["decoy_mask"][..., 0] > 0].reshape(24, -1)[:, 0]
    np.testing.assert_array_equal(shade, 255 - 25 * shaded["label"])


@pytest.mark.parametrize("split", ["val", "train[a:]", "train[:5", ("train[1:2]", "tests")])
def test_unknown_split_names_the_form(tmp_path, split):
    make_idx(str(tmp_path))
    with pytest.raises(ValueError, match=r"Expected 'train' or 'test', optionally sliced as in 'train\[:50000\]'"):
        fm.load_fashion_mnist(str(tmp_path), split=split)


def test_empty_slice_is_an_error(tmp_path):
    make_idx(str(tmp_path))
    with pytest.raises(ValueError, match=r"split 'train\[40:\]' is empty \(train has 30 examples\)"):
        fm.load_fashion_mnist(str(tmp_path), split="train[40:]")
