"""Fashion-MNIST from the standard IDX files, and two shortcut benchmarks built on it.

* :func:`load_fashion_mnist` reads the IDX files (gzipped or not) from ``path``,
  Debian's ``dataset-fashion-mnist`` location or the Keras cache.
* :func:`decoy_fashion_mnist` is "Decoy Fashion-MNIST" exactly as in Ross et al.
  2017: a 4x4 swatch in a random corner whose shade is ``255 - 25 * label`` in
  training and ``255 - 25 * random_label`` at test; the swatch is returned as
  ``decoy_mask`` (the "wrong reason").
* :func:`fashion_on_textures` pastes the garments on crops of real photographs
  bundled with scikit-image, the background tied to the label in training and
  not at test (Waterbirds-style), with ``background`` and ``group``.
"""

from __future__ import annotations

import gzip
import os
import re

import numpy as np

from keras_priors.validation import check_fraction, check_positive_int

CLASS_NAMES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
               "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot")
NUM_CLASSES = 10
DEBIAN_PATH = "/usr/share/datasets/fashion-mnist"
KERAS_CACHE = os.path.join("~", ".keras", "datasets", "fashion-mnist")
_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
_IMAGES_MAGIC, _LABELS_MAGIC = 2051, 2049
_SPLIT = re.compile(r"^(train|test)(?:\[(-?\d*):(-?\d*)\])?$")
#: Photographs of scikit-image used as backgrounds by :func:`fashion_on_textures`.
DEFAULT_TEXTURES = ("grass", "gravel", "brick", "coffee")


def read_idx(path: str) -> np.ndarray:
    """Read one IDX file (``.gz`` or not) of unsigned bytes into a numpy array.

    Raises:
        ValueError: when the magic number, the dimensions or the size are wrong.
    """
    opener = gzip.open if path.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            raw = f.read()
    except (OSError, EOFError) as err:
        raise ValueError(f"Could not read IDX file {path!r}: {err}") from None
    if len(raw) < 4:
        raise ValueError(f"Corrupt IDX file {path!r}: expected a 4-byte magic number, received {len(raw)} bytes")
    magic = int.from_bytes(raw[:4], "big")
    dtype_code, ndim = raw[2], raw[3]
    if raw[:2] != b"\x00\x00" or dtype_code != 0x08 or ndim == 0:
        raise ValueError(
            f"Corrupt IDX file {path!r}: expected magic number 0x0801 (labels) or 0x0803 (images) "
            f"of unsigned bytes. Received: 0x{magic:08x}"
        )
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"Corrupt IDX file {path!r}: header truncated ({len(raw)} bytes)")
    dims = tuple(int.from_bytes(raw[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim))
    expected = header + int(np.prod(dims))
    if len(raw) != expected:
        raise ValueError(
            f"Corrupt IDX file {path!r}: dimensions {dims} need {expected} bytes, received {len(raw)}"
        )
    return np.frombuffer(raw, np.uint8, offset=header).reshape(dims)


def _find_file(folder: str, stem: str) -> str | None:
    for name in (stem + ".gz", stem, stem.replace("-idx", ".idx") + ".gz", stem.replace("-idx", ".idx")):
        p = os.path.join(folder, name)
        if os.path.isfile(p):
            return p
    return None


def parse_split(split) -> tuple[str, slice]:
    """``"train"`` or ``"train[:50000]"`` -> the file's split name and the slice of its examples.

    Slices count examples in file order, like TFDS' split slicing, so ``"train[:50000]"`` and
    ``"train[50000:]"`` are disjoint: a validation split that no training subset can overlap.

    >>> parse_split("train[50000:]")
    ('train', slice(50000, None, None))
    """
    match = _SPLIT.match(split) if isinstance(split, str) else None
    if match is None:
        raise ValueError(f"Unknown Fashion-MNIST split. Expected 'train' or 'test', optionally sliced as in "
                         f"'train[:50000]'. Received: split={split!r}")
    name, start, stop = match.groups()
    return name, slice(int(start) if start else None, int(stop) if stop else None)


def load_fashion_mnist(path: str | None = None, split=("train", "test")):
    """Load Fashion-MNIST from its IDX files.

    Looks in ``path`` if given, else in Debian's ``/usr/share/datasets/fashion-mnist``
    (``apt-get install dataset-fashion-mnist``), else in ``~/.keras/datasets/fashion-mnist``.

    Args:
        path: folder with ``train-images-idx3-ubyte[.gz]`` etc., or None.
        split: ``"train"``, ``"test"`` (either optionally sliced, as in
            ``"train[:50000]"``: see :func:`parse_split`) or a tuple of them.

    Returns:
        For a string split, a dict ``{"image": uint8 (N, 28, 28), "label":
        int32 (N,)}``; for a tuple, a dict ``{split: that dict}``.

    Raises:
        FileNotFoundError: listing where it looked and how to get the files.
        ValueError: on a corrupt file, a count mismatch or labels out of range.
    """
    single = isinstance(split, str)
    splits = (split,) if single else tuple(split)
    parsed = {s: parse_split(s) for s in splits}
    if path is not None:
        candidates = [path]
    else:
        candidates = [DEBIAN_PATH, os.path.expanduser(KERAS_CACHE)]
    folder = None
    for c in candidates:
        if all(_find_file(c, stem) for s in splits for stem in _FILES[parsed[s][0]]):
            folder = c
            break
    if folder is None:
        wanted = [stem + "[.gz]" for s in splits for stem in _FILES[parsed[s][0]]]
        raise FileNotFoundError(
            f"Fashion-MNIST IDX files {wanted} not found. Looked in: {candidates}. "
            "Install them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), "
            "or pass path= to a folder holding the standard IDX files."
        )
    out = {}
    for s in splits:
        name, part = parsed[s]
        img_path, lab_path = (_find_file(folder, stem) for stem in _FILES[name])
        images, labels = read_idx(img_path), read_idx(lab_path)
        if images.ndim != 3:
            raise ValueError(f"Expected an image IDX file (N, H, W) in {img_path!r}. Received: shape={images.shape}")
        if labels.ndim != 1:
            raise ValueError(f"Expected a label IDX file (N,) in {lab_path!r}. Received: shape={labels.shape}")
        if len(images) != len(labels):
            raise ValueError(
                f"Fashion-MNIST {s}: {img_path!r} has {len(images)} images but {lab_path!r} has {len(labels)} labels"
            )
        if labels.size and labels.max() >= NUM_CLASSES:
            raise ValueError(f"{lab_path!r}: expected labels in [0, {NUM_CLASSES}). Received: {int(labels.max())}")
        out[s] = {"image": images[part], "label": labels[part].astype(np.int32)}
        if not len(out[s]["label"]):
            raise ValueError(f"Fashion-MNIST split {s!r} is empty ({name} has {len(labels)} examples)")
    return out[splits[0]] if single else out


def _subsample(raw: dict, num_samples, rng) -> dict:
    n = len(raw["label"])
    if num_samples is None or num_samples >= n:
        return raw
    num_samples = check_positive_int("num_samples", num_samples)
    idx = np.sort(rng.choice(n, num_samples, replace=False))
    return {k: v[idx] for k, v in raw.items()}


def _fit_size(x: np.ndarray, image_size: int, resize: str) -> np.ndarray:
    """(N, 28, 28, C) float32 -> (N, S, S, C): centre pad or bilinear resize."""
    h = x.shape[1]
    if image_size == h:
        return x
    if resize == "pad":
        if image_size < h:
            raise ValueError(f"Expected image_size >= {h} with resize='pad'. Received: image_size={image_size}")
        before = (image_size - h) // 2
        after = image_size - h - before
        return np.pad(x, ((0, 0), (before, after), (before, after), (0, 0)))
    import tensorflow as tf

    return tf.image.resize(x, (image_size, image_size), method="bilinear").numpy()


def decoy_fashion_mnist(
    split: str = "train",
    path: str | None = None,
    num_samples: int | None = None,
    image_size: int = 28,
    channels: int = 3,
    resize: str = "pad",
    seed: int = 0,
    swatch_size: int = 4,
    mask_threshold: int = 25,
    shortcut: bool | None = None,
) -> dict[str, np.ndarray]:
    """Decoy Fashion-MNIST (Ross et al. 2017): a label-coloured corner swatch as a shortcut.

    With the shortcut (``"train"`` by default) the swatch shade is
    ``255 - 25 * label``; without it (``"test"`` by default) it is
    ``255 - 25 * r`` with ``r`` a random label. The swatch sits in a random
    corner of the 28x28 image (before padding/resizing). ``shortcut=False`` on
    the train split gives the shortcut-free reference training set.

    Args:
        split: ``"train"`` or ``"test"``, optionally sliced (``"train[50000:]"``,
            see :func:`parse_split`).
        path: IDX folder, see :func:`load_fashion_mnist`.
        num_samples: random subset size (None = all).
        image_size: output size; 28 keeps the originals.
        channels: 1 or 3 (grey tiled to RGB).
        resize: ``"pad"`` (centre zero padding) or ``"resize"`` (bilinear).
        seed: seed for the subset, corners and test shades.
        swatch_size: side of the swatch in pixels.
        mask_threshold: grey level above which a pixel belongs to the garment.
        shortcut: tie the swatch shade to the label; None means True for
            ``"train"`` and False for ``"test"``.

    Returns:
        Dict with ``image`` (N, S, S, channels) float32 in [0, 1], ``label``,
        ``object_mask`` (garment) and ``decoy_mask`` (swatch), (N, S, S, 1).

    Reference:
        Ross, Hughes, Doshi-Velez, "Right for the Right Reasons: Training
        Differentiable Models by Constraining their Explanations", IJCAI 2017.
    """
    base, _ = parse_split(split)
    if channels not in (1, 3):
        raise ValueError(f"Expected `channels` to be 1 or 3. Received: channels={channels!r}")
    if resize not in ("pad", "resize"):
        raise ValueError(f"Expected `resize` to be 'pad' or 'resize'. Received: resize={resize!r}")
    image_size = check_positive_int("image_size", image_size, "decoy_fashion_mnist")
    swatch_size = check_positive_int("swatch_size", swatch_size, "decoy_fashion_mnist")
    rng = np.random.default_rng(seed)
    raw = _subsample(load_fashion_mnist(path, split), num_samples, rng)
    images = raw["image"].copy()
    labels = raw["label"]
    n, h, w = images.shape
    obj = images > mask_threshold
    if shortcut is None:
        shortcut = base == "train"
    elif not isinstance(shortcut, bool):
        raise ValueError("decoy_fashion_mnist: Expected `shortcut` to be True, False or None. "
                         f"Received: shortcut={shortcut!r}")
    random_shade = rng.integers(0, NUM_CLASSES, n)
    shade_label = labels if shortcut else random_shade
    shade = (255 - 25 * shade_label).astype(np.uint8)
    top = rng.random(n) < 0.5
    left = rng.random(n) < 0.5
    rows = np.arange(h)[None, :, None]
    cols = np.arange(w)[None, None, :]
    in_rows = np.where(top[:, None, None], rows < swatch_size, rows >= h - swatch_size)
    in_cols = np.where(left[:, None, None], cols < swatch_size, cols >= w - swatch_size)
    decoy = in_rows & in_cols
    images = np.where(decoy, shade[:, None, None], images)
    obj &= ~decoy
    x = (images.astype(np.float32) / 255.0)[..., None]
    out = {
        "image": _fit_size(x, image_size, resize),
        "label": labels.astype(np.int32),
        "object_mask": (_fit_size(obj[..., None].astype(np.float32), image_size, resize) >= 0.5).astype(np.float32),
        "decoy_mask": (_fit_size(decoy[..., None].astype(np.float32), image_size, resize) >= 0.5).astype(np.float32),
    }
    if channels == 3:
        out["image"] = np.repeat(out["image"], 3, axis=-1)
    return out


def _skimage_data():
    try:
        import skimage.data
    except ImportError:
        raise ImportError(
            "fashion_on_textures needs scikit-image for its bundled photographs. "
            "Install it with `pip install keras-priors[vis]` (or `pip install scikit-image`)."
        ) from None
    return skimage.data


def load_textures(names=DEFAULT_TEXTURES) -> list[np.ndarray]:
    """Photographs bundled with scikit-image as float32 RGB arrays in [0, 1]."""
    data = _skimage_data()
    out = []
    for name in names:
        fn = getattr(data, name, None)
        if fn is None or not callable(fn):
            raise ValueError(f"Unknown scikit-image photograph. Expected a name in skimage.data. Received: {name!r}")
        img = np.asarray(fn())
        if img.ndim == 2:
            img = np.repeat(img[..., None], 3, axis=-1)
        img = img[..., :3].astype(np.float32)
        out.append(img / 255.0 if img.max() > 1.0 else img)
    return out


def fashion_on_textures(
    split: str = "train",
    path: str | None = None,
    num_samples: int | None = 10000,
    image_size: int = 64,
    background_bias: float | None = None,
    textures=DEFAULT_TEXTURES,
    garment_scale: float = 0.75,
    texture_scale: float = 0.5,
    seed: int = 0,
    mask_threshold: int = 25,
) -> dict[str, np.ndarray]:
    """Garments pasted on crops of real photographs, background tied to the label in training.

    With ``K`` textures, an example of class ``y`` gets background ``y % K``
    with probability ``background_bias`` and a uniformly random one otherwise
    (default bias 0.9 in ``"train"``, 0 in ``"test"``: independent).
    Garments are pasted with a soft alpha from their grey level.

    Args:
        split: ``"train"`` or ``"test"``, optionally sliced (see :func:`parse_split`).
        path: IDX folder, see :func:`load_fashion_mnist`.
        num_samples: random subset size (None = all).
        image_size: output size.
        background_bias: in [0, 1]; None picks the split's default.
        textures: names of ``skimage.data`` photographs.
        garment_scale: garment side as a fraction of ``image_size``.
        texture_scale: photographs are downscaled by this factor before cropping.
        seed: random seed.
        mask_threshold: grey level above which a pixel belongs to the garment.

    Returns:
        Dict with ``image`` (N, S, S, 3) float32, ``label``, ``background``,
        ``group = label * K + background`` (N,) int32 and ``object_mask``.
    """
    import tensorflow as tf

    base, _ = parse_split(split)
    image_size = check_positive_int("image_size", image_size, "fashion_on_textures")
    garment_scale = check_fraction("garment_scale", garment_scale, "fashion_on_textures")
    bias = (0.9 if base == "train" else 0.0) if background_bias is None else background_bias
    bias = check_fraction("background_bias", bias, "fashion_on_textures")
    photos = load_textures(textures)
    k = len(photos)
    if k == 0:
        raise ValueError("Expected at least one texture. Received: textures=()")
    rng = np.random.default_rng(seed)
    raw = _subsample(load_fashion_mnist(path, split), num_samples, rng)
    labels = raw["label"]
    n = len(labels)
    tied = rng.random(n) < bias
    background = np.where(tied, labels % k, rng.integers(0, k, n)).astype(np.int32)

    s = image_size
    image = np.empty((n, s, s, 3), np.float32)
    for b, photo in enumerate(photos):
        idx = np.flatnonzero(background == b)
        if idx.size == 0:
            continue
        ph, pw = photo.shape[:2]
        scale = max(texture_scale, (s + 1) / min(ph, pw))
        small = tf.image.resize(photo, (int(ph * scale), int(pw * scale)), antialias=True).numpy()
        oy = rng.integers(0, small.shape[0] - s + 1, idx.size)
        ox = rng.integers(0, small.shape[1] - s + 1, idx.size)
        rr = oy[:, None, None] + np.arange(s)[None, :, None]
        cc = ox[:, None, None] + np.arange(s)[None, None, :]
        image[idx] = small[rr, cc]

    g = max(4, int(round(garment_scale * s)))
    garments = tf.image.resize(raw["image"][..., None].astype(np.float32), (g, g), method="bilinear").numpy()
    alpha = np.clip(garments / 64.0, 0.0, 1.0)
    grey = garments / 255.0
    oy = rng.integers(0, s - g + 1, n)
    ox = rng.integers(0, s - g + 1, n)
    rr = oy[:, None, None] + np.arange(g)[None, :, None]
    cc = ox[:, None, None] + np.arange(g)[None, None, :]
    ii = np.arange(n)[:, None, None]
    patch = image[ii, rr, cc]
    image[ii, rr, cc] = patch * (1.0 - alpha) + grey * alpha
    mask = np.zeros((n, s, s, 1), np.float32)
    mask[ii, rr, cc] = (garments > mask_threshold).astype(np.float32)
    return {
        "image": np.clip(image, 0.0, 1.0),
        "label": labels.astype(np.int32),
        "background": background,
        "group": (labels * k + background).astype(np.int32),
        "object_mask": mask,
    }
