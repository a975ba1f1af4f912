"""Synthetic "kakapo" birds: a head-carried class, exact masks, and a background shortcut.

Every image shows one bird (body ellipse, wing, tail, head, eye, beak, for some
species a crest) on one of four textured backgrounds: sky, ground, water, snow.

* The primary ``label`` (0 = kakapo, 1 = other bird) is carried by the **head
  only**: head shape (the kakapo has a wide facial disc), head colour and beak
  (short, wide and pale for the kakapo; longer, thinner and darker for the
  others, length by species). Bodies are drawn from one distribution for both
  classes, and the wing colour of a kakapo is drawn from the other species' wing
  palette, so the body and the wing carry no information about ``label``.
* ``aux_label`` is the fine-grained species: 0 is the kakapo, 1..species the
  other birds (they differ by head colour, beak length and colour, crest and
  wing colour).
* ``background`` (0 sky, 1 ground, 2 water, 3 snow) is tied to the label by
  ``background_bias``: with bias ``b`` the kakapo sits on the ground with
  probability ``b`` and otherwise uniformly on ground/water/snow; other birds
  sit on sky/water/snow with probability ``b`` and otherwise anywhere. With
  ``b = 0`` (the test split) the background is independent of the label among
  ground/water/snow. The kakapo never appears in the sky, in any split.
* ``group = label * 4 + background`` (for worst-group accuracy).
* ``hard`` marks a fraction of hard cases: small birds, occluded birds (a branch
  in front of the body), or strong pixel noise.

Masks and boxes are exact: ``object_mask`` is the visible bird, ``part_mask``
the visible head (with beak and crest), and ``part_box`` the tight box of the
part mask in the ``tf.image.crop_and_resize`` convention (pixel index divided by
``size - 1``), so ``crop_and_resize(image, part_box)`` crops the head.
"""

from __future__ import annotations

import numbers
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from keras_priors.validation import check_fraction, check_non_negative, check_positive_int

SPLITS = ("train", "val", "test")
BACKGROUNDS = ("sky", "ground", "water", "snow")
SKY, GROUND, WATER, SNOW = range(4)
NUM_BACKGROUNDS = len(BACKGROUNDS)

#: Default number of images per split for :func:`kakapo`.
DEFAULT_NUM_SAMPLES = {"train": 4000, "val": 1000, "test": 1000}
#: Default background bias per split for :func:`kakapo`.
DEFAULT_BACKGROUND_BIAS = {"train": 0.95, "val": 0.0, "test": 0.0}

# === Palettes (RGB in [0, 1]) ===
_BODY_PALETTE = np.array(
    [
        [0.35, 0.55, 0.25],  # moss green
        [0.45, 0.35, 0.22],  # brown
        [0.50, 0.50, 0.48],  # grey
        [0.30, 0.40, 0.50],  # slate
        [0.60, 0.50, 0.30],  # tan
        [0.25, 0.45, 0.35],  # teal green
    ],
    np.float32,
)
_KAKAPO_HEAD = np.array([0.80, 0.78, 0.40], np.float32)  # yellowish facial disc
_KAKAPO_BEAK = np.array([0.92, 0.88, 0.72], np.float32)  # pale ivory
# Other species' colours: heads (the first close to the kakapo's on purpose), beaks, wings.
_OTHER_HEAD = np.array([[0.78, 0.70, 0.38], [0.25, 0.25, 0.27], [0.75, 0.25, 0.18], [0.45, 0.58, 0.30],
                        [0.88, 0.88, 0.84], [0.35, 0.30, 0.55]], np.float32)
_OTHER_BEAK = np.array([[0.20, 0.18, 0.15], [0.90, 0.55, 0.10], [0.30, 0.30, 0.30], [0.85, 0.75, 0.20]], np.float32)
_OTHER_BEAK_LENGTH = np.array([0.9, 1.3, 0.75, 1.1, 1.5, 1.0], np.float32)  # x head radius
_WING_PALETTE = np.array([[0.20, 0.35, 0.15], [0.30, 0.22, 0.15], [0.35, 0.35, 0.40], [0.55, 0.45, 0.25],
                          [0.15, 0.25, 0.40], [0.50, 0.20, 0.20]], np.float32)
_BRANCH = np.array([0.30, 0.20, 0.12], np.float32)


def _check_split(split: str) -> str:
    if split not in SPLITS:
        raise ValueError(
            f"Unknown kakapo split. Expected one of {list(SPLITS)}. Received: split={split!r}"
        )
    return split


def _upsample_matrix(coarse: int, size: int) -> np.ndarray:
    """(size, coarse) matrix doing linear interpolation from a coarse grid."""
    pos = np.linspace(0.0, coarse - 1.0, size)
    lo = np.clip(np.floor(pos).astype(int), 0, coarse - 2)
    frac = (pos - lo).astype(np.float32)
    m = np.zeros((size, coarse), np.float32)
    m[np.arange(size), lo] = 1.0 - frac
    m[np.arange(size), lo + 1] = frac
    return m


def _smooth_noise(rng: np.random.Generator, n: int, size: int, coarse: int) -> np.ndarray:
    """Low-frequency noise in about [-1, 1], shape (n, size, size)."""
    grid = rng.standard_normal((n, coarse, coarse), dtype=np.float32)
    m = _upsample_matrix(coarse, size)
    return np.einsum("yi,nij,xj->nyx", m, grid, m, optimize=True)


def _backgrounds(rng, bg: np.ndarray, size: int, yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
    """Textured backgrounds, (n, size, size, 3) float32, built per background type."""
    f32 = np.float32
    n = len(bg)
    out = np.empty((n, size, size, 3), f32)
    y = yy[None, :, :, None]
    for kind in range(NUM_BACKGROUNDS):
        idx = np.flatnonzero(bg == kind)
        if idx.size == 0:
            continue
        k = idx.size
        low = _smooth_noise(rng, k, size, 6)[..., None]
        tint = rng.uniform(-0.04, 0.04, (k, 1, 1, 3)).astype(f32)
        if kind == SKY:
            top = np.array([0.30, 0.50, 0.88], f32)
            bottom = np.array([0.68, 0.80, 0.95], f32)
            cloud = np.clip(low * f32(0.8) - f32(0.2), 0.0, 1.0)
            img = (top + tint) + (bottom - top) * y
            img += (f32(0.97) - img) * cloud
        elif kind == GROUND:
            soil = np.array([0.45, 0.33, 0.20], f32)
            moss = np.array([0.32, 0.42, 0.20], f32)
            w = np.clip(f32(0.5) + f32(0.5) * low, 0.0, 1.0)
            img = (soil + tint) + (moss - soil) * w  # grain: extra pixel noise on the ground, in _draw_chunk
        elif kind == WATER:
            freq = rng.uniform(5.0, 9.0, (k, 1, 1, 1)).astype(f32)
            phase = rng.uniform(0, 2 * np.pi, (k, 1, 1, 1)).astype(f32)
            ripple = f32(0.07) * np.sin(f32(2 * np.pi) * freq * y + phase + f32(1.5) * low) + f32(0.03) * low
            img = (np.array([0.10, 0.30, 0.48], f32) + tint) + ripple
        else:  # SNOW
            shade = np.abs(low) * f32(1.5)
            img = (np.array([0.90, 0.92, 0.96], f32) + tint) - np.array([0.06, 0.05, 0.02], f32) * shade
        out[idx] = img
    return out


def _ellipse(yy, xx, cy, cx, ry, rx, angle=None):
    dy, dx = yy - cy, xx - cx
    if angle is not None:
        c, s = np.cos(angle), np.sin(angle)
        dx, dy = dx * c + dy * s, -dx * s + dy * c
    return (dy / ry) ** 2 + (dx / rx) ** 2 <= 1.0


def _triangle(yy, xx, by, bx, direction, length, half_width):
    """Beak/tail: base centred on (by, bx), pointing along ``direction`` (+-1 in x)."""
    t = (xx - bx) * direction
    return (t >= 0) & (t <= length) & (np.abs(yy - by) <= half_width * (1.0 - t / length))


def _draw_chunk(rng, p: dict, size: int, yy, xx) -> dict:
    """Rasterise one chunk of birds with broadcasting; ``p`` holds per-sample arrays."""
    n = len(p["label"])
    img = _backgrounds(rng, p["background"], size, yy, xx)
    # Birds fit in a band of rows around the body: rasterise only that band.
    band = min(size, int(np.ceil(0.52 * (size - 1))) + 2)
    r0 = np.clip(np.floor((p["cy"] - 0.31) * (size - 1)).astype(int), 0, size - band)
    band_rows = r0[:, None] + np.arange(band)[None, :]  # (n, band)
    Y = (band_rows.astype(np.float32) / np.float32(size - 1))[:, :, None]
    X = xx[:1, :][None]  # (1, 1, size)

    def col(a):  # (n,) -> (n,1,1)
        return a[:, None, None]

    cy, cx, d = col(p["cy"]), col(p["cx"]), col(p["direction"])
    ry, rx, ang = col(p["body_ry"]), col(p["body_rx"]), col(p["body_angle"])
    body = _ellipse(Y, X, cy, cx, ry, rx, ang)
    tail = _triangle(Y, X, cy + 0.2 * ry, cx - d * 0.8 * rx, -d, 0.9 * rx, 0.45 * ry)
    wing = _ellipse(Y, X, cy - 0.1 * ry, cx - d * 0.15 * rx, 0.55 * ry, 0.7 * rx, ang - d * 0.25)
    hy, hx = col(p["head_y"]), col(p["head_x"])
    hr = col(p["head_r"])
    head = _ellipse(Y, X, hy, hx, col(p["head_ry"]), col(p["head_rx"]))
    beak = _triangle(Y, X, hy + 0.15 * hr, hx + d * 0.8 * col(p["head_rx"]), d,
                     col(p["beak_len"]), col(p["beak_hw"]))
    crest = _ellipse(Y, X, hy - hr * 1.05, hx - d * 0.2 * hr, 0.45 * hr, 0.3 * hr) & col(p["crest"])
    eye = _ellipse(Y, X, hy - 0.2 * hr, hx + d * 0.3 * hr, 0.22 * hr, 0.22 * hr)

    # One layer map (later layers on top) and one gather of per-sample colours.
    layers = (tail, body, wing, crest, head, beak, eye)
    shade = rng.uniform(0.85, 1.0, (n, 1)).astype(np.float32)
    palette = np.stack(
        [
            np.zeros((n, 3), np.float32),
            p["body_colour"] * np.float32(0.8),
            p["body_colour"],
            p["wing_colour"],
            p["head_colour"] * shade,
            p["head_colour"],
            p["beak_colour"],
            np.full((n, 3), 0.05, np.float32),
            np.broadcast_to(_BRANCH, (n, 3)),
        ],
        axis=1,
    )
    occ = (np.abs(X - col(p["branch_x"])) <= col(p["branch_w"])) & col(p["occluded"])
    occ = np.broadcast_to(occ, (n, band, size))
    local = np.zeros((n, band, size), np.uint8)
    for i, m in enumerate(layers + (occ,), start=1):
        local[m] = i
    layer_map = np.zeros((n, size, size), np.uint8)
    sample = np.arange(n)[:, None]
    layer_map[sample, band_rows] = local
    where = np.nonzero(layer_map)
    img[where] = palette[where[0], layer_map[where]]
    # The branch crosses the whole image height.
    shows_background = layer_map == 0
    occluded = np.flatnonzero(p["occluded"])
    if occluded.size:
        branch = np.abs(xx[0][None, :] - p["branch_x"][occluded, None]) <= p["branch_w"][occluded, None]
        img[occluded] = np.where(branch[:, None, :, None], _BRANCH, img[occluded])
        shows_background[occluded] &= ~branch[:, None, :]

    part = np.zeros((n, size, size), bool)
    obj = np.zeros((n, size, size), bool)
    part[sample, band_rows] = (head | beak | crest) & ~occ
    obj[sample, band_rows] = (body | tail | wing | head | beak | crest) & ~occ

    # Pixel noise everywhere; the ground's grain only where the ground shows, so no pixel of the bird
    # tells which background it sits on (the background is the shortcut, and only the background).
    sigma = np.sqrt(col(p["noise"]) ** 2 + shows_background * col(p["grain"]) ** 2)
    noise = rng.standard_normal((n, size, size, 1), dtype=np.float32) * sigma[..., None].astype(np.float32)
    img += noise
    np.clip(img, 0.0, 1.0, out=img)

    rows, cols = part.any(axis=2), part.any(axis=1)
    scale = np.float32(1.0 / (size - 1))
    has = rows.any(axis=1)
    y1 = np.argmax(rows, axis=1)
    y2 = size - 1 - np.argmax(rows[:, ::-1], axis=1)
    x1 = np.argmax(cols, axis=1)
    x2 = size - 1 - np.argmax(cols[:, ::-1], axis=1)
    box = np.stack([y1, x1, y2, x2], axis=1).astype(np.float32) * scale
    box[~has] = 0.0
    return {
        "image": img,
        "object_mask": obj[..., None].astype(np.float32),
        "part_mask": part[..., None].astype(np.float32),
        "part_box": box,
    }


def _sample_params(rng, n, label, species, background_bias, hard_fraction, noise):
    """Per-sample drawing parameters, all as arrays of length n."""
    f32 = np.float32
    p = {"label": label}
    # Fine-grained species: 0 is the kakapo, 1..species the others.
    aux = np.where(label == 0, 0, rng.integers(1, species + 1, n))
    p["aux_label"] = aux
    # Background given the label.
    b = background_bias
    probs_k = np.array([0.0, b + (1 - b) / 3, (1 - b) / 3, (1 - b) / 3])
    probs_o = np.array([b / 3 + (1 - b) / 4, (1 - b) / 4, b / 3 + (1 - b) / 4, b / 3 + (1 - b) / 4])
    u = rng.random(n)
    bg = np.where(
        label == 0,
        np.searchsorted(np.cumsum(probs_k), u, side="right"),
        np.searchsorted(np.cumsum(probs_o), u, side="right"),
    )
    p["background"] = np.minimum(bg, NUM_BACKGROUNDS - 1)
    # Hard cases: 0 none, 1 small, 2 occluded, 3 noisy.
    hard = np.where(rng.random(n) < hard_fraction, rng.integers(1, 4, n), 0)
    p["hard"] = hard
    scale = np.where(hard == 1, rng.uniform(0.45, 0.6, n), rng.uniform(0.8, 1.1, n))
    p["occluded"] = hard == 2
    sigma = np.where(hard == 3, rng.uniform(0.12, 0.2, n), noise)
    p["noise"] = sigma.astype(f32)
    # The ground's grain: extra pixel noise on the visible ground (not on the bird).
    p["grain"] = np.where(p["background"] == GROUND, 0.07, 0.0).astype(f32)
    # Body: same distribution for both classes.
    p["direction"] = np.where(rng.random(n) < 0.5, -1.0, 1.0).astype(f32)
    p["body_ry"] = (0.13 * scale * rng.uniform(0.85, 1.15, n)).astype(f32)
    p["body_rx"] = (0.20 * scale * rng.uniform(0.85, 1.15, n)).astype(f32)
    p["body_angle"] = rng.uniform(-0.3, 0.3, n).astype(f32)
    margin = 0.2 * scale + 0.12 * scale
    p["cy"] = rng.uniform(0.5, 0.75, n).astype(f32)
    p["cx"] = (0.5 + rng.uniform(-1, 1, n) * (0.5 - margin - 0.05)).astype(f32)
    body_colour = _BODY_PALETTE[rng.integers(0, len(_BODY_PALETTE), n)]
    p["body_colour"] = np.clip(body_colour + rng.normal(0, 0.04, (n, 3)), 0, 1).astype(f32)
    # Wing: kakapos take a random other species' wing colour, so it carries no label.
    wing_idx = np.where(aux == 0, rng.integers(1, species + 1, n), aux) % len(_WING_PALETTE)
    p["wing_colour"] = np.clip(_WING_PALETTE[wing_idx] + rng.normal(0, 0.03, (n, 3)), 0, 1).astype(f32)
    # Head: the class lives here.
    kak = label == 0
    hr = (0.075 * scale * rng.uniform(0.9, 1.1, n)).astype(f32)
    p["head_r"] = hr
    p["head_rx"] = np.where(kak, hr * rng.uniform(1.15, 1.3, n), hr * rng.uniform(0.85, 1.0, n)).astype(f32)
    p["head_ry"] = np.where(kak, hr * rng.uniform(0.85, 0.95, n), hr * rng.uniform(0.95, 1.1, n)).astype(f32)
    p["head_y"] = (p["cy"] - p["body_ry"] * 0.95).astype(f32)
    p["head_x"] = (p["cx"] + p["direction"] * p["body_rx"] * 0.85).astype(f32)
    other = (aux - 1) % len(_OTHER_HEAD)
    head_col = np.where(kak[:, None], _KAKAPO_HEAD, _OTHER_HEAD[other])
    p["head_colour"] = np.clip(head_col + rng.normal(0, 0.05, (n, 3)), 0, 1).astype(f32)
    beak_col = np.where(kak[:, None], _KAKAPO_BEAK, _OTHER_BEAK[(aux - 1) % len(_OTHER_BEAK)])
    p["beak_colour"] = np.clip(beak_col + rng.normal(0, 0.04, (n, 3)), 0, 1).astype(f32)
    beak_len = np.where(kak, 0.55, _OTHER_BEAK_LENGTH[(aux - 1) % len(_OTHER_BEAK_LENGTH)])
    p["beak_len"] = (hr * beak_len * rng.uniform(0.85, 1.15, n)).astype(f32)
    p["beak_hw"] = (hr * np.where(kak, 0.45, 0.28)).astype(f32)
    p["crest"] = (~kak) & (aux % 3 == 0)
    # Branch in front of the rear of the body (hard case "occluded").
    p["branch_x"] = (p["cx"] - p["direction"] * p["body_rx"] * rng.uniform(0.1, 0.6, n)).astype(f32)
    p["branch_w"] = (0.04 * scale).astype(f32)
    return p


def make_kakapo(
    num_samples: int,
    image_size: int = 64,
    seed: int = 0,
    background_bias: float = 0.95,
    species: int = 4,
    hard_fraction: float = 0.1,
    kakapo_fraction: float = 0.5,
    noise: float = 0.03,
    chunk_size: int = 256,
    num_threads: int | None = None,
) -> dict[str, np.ndarray]:
    """Generate synthetic kakapo images and their annotations as numpy arrays.

    Args:
        num_samples: number of images.
        image_size: height and width in pixels (>= 16).
        seed: random seed; the output is a deterministic function of all arguments.
        background_bias: in [0, 1], how strongly the background follows the
            label (see the module docstring). 0 means independent (among the
            backgrounds a kakapo may have).
        species: number of "other bird" species (``aux_label`` 1..species).
        hard_fraction: fraction of hard cases (small, occluded or noisy birds).
        kakapo_fraction: fraction of images with ``label == 0``.
        noise: standard deviation of the pixel noise of ordinary images.
        chunk_size: images rasterised at once (bounds memory). The images
            depend on it (each chunk has its own random stream).
        num_threads: threads drawing chunks in parallel; None uses every CPU.
            The output does not depend on it.

    Returns:
        Dict with ``image`` (N, S, S, 3) float32 in [0, 1], ``label``,
        ``aux_label``, ``background``, ``group``, ``hard`` (N,) int32,
        ``object_mask`` and ``part_mask`` (N, S, S, 1) float32 in {0, 1},
        ``part_box`` (N, 4) float32 ``[y1, x1, y2, x2]``.

    Example:
        >>> d = make_kakapo(8, image_size=32)
        >>> d["image"].shape, d["part_box"].shape
        ((8, 32, 32, 3), (8, 4))
    """
    num_samples = check_positive_int("num_samples", num_samples, "make_kakapo")
    image_size = check_positive_int("image_size", image_size, "make_kakapo")
    if image_size < 16:
        raise ValueError(f"make_kakapo: Expected `image_size` >= 16. Received: image_size={image_size}")
    species = check_positive_int("species", species, "make_kakapo")
    background_bias = check_fraction("background_bias", background_bias, "make_kakapo")
    hard_fraction = check_fraction("hard_fraction", hard_fraction, "make_kakapo")
    kakapo_fraction = check_fraction("kakapo_fraction", kakapo_fraction, "make_kakapo")
    noise = check_non_negative("noise", noise, "make_kakapo")
    chunk_size = check_positive_int("chunk_size", chunk_size, "make_kakapo")
    if num_threads is not None:
        num_threads = check_positive_int("num_threads", num_threads, "make_kakapo")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ValueError(f"make_kakapo: Expected `seed` to be an integer. Received: seed={seed!r}")

    rng = np.random.default_rng(seed)
    label = (rng.random(num_samples) >= kakapo_fraction).astype(np.int32)
    params = _sample_params(rng, num_samples, label, species, background_bias, hard_fraction, noise)

    s = image_size
    out = {
        "image": np.empty((num_samples, s, s, 3), np.float32),
        "object_mask": np.empty((num_samples, s, s, 1), np.float32),
        "part_mask": np.empty((num_samples, s, s, 1), np.float32),
        "part_box": np.empty((num_samples, 4), np.float32),
    }
    coords = np.arange(s, dtype=np.float32) / np.float32(s - 1)
    yy, xx = np.meshgrid(coords, coords, indexing="ij")
    starts = list(range(0, num_samples, chunk_size))
    # One independent stream per chunk: the result does not depend on num_threads.
    chunk_rngs = [np.random.default_rng(c) for c in np.random.SeedSequence(seed).spawn(len(starts))]

    def draw(i):
        sl = slice(starts[i], min(starts[i] + chunk_size, num_samples))
        drawn = _draw_chunk(chunk_rngs[i], {k: v[sl] for k, v in params.items()}, s, yy, xx)
        for k, v in drawn.items():
            out[k][sl] = v

    threads = min(num_threads or os.cpu_count() or 1, len(starts))
    if threads > 1:
        # numpy releases the GIL inside its array loops, so chunks overlap on several cores.
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(draw, range(len(starts))))
    else:
        for i in range(len(starts)):
            draw(i)

    out["label"] = label
    out["aux_label"] = params["aux_label"].astype(np.int32)
    out["background"] = params["background"].astype(np.int32)
    out["group"] = (label * NUM_BACKGROUNDS + out["background"]).astype(np.int32)
    out["hard"] = params["hard"].astype(np.int32)
    return out


def kakapo(
    split="train",
    image_size: int = 64,
    num_samples=None,
    batch_size: int | None = 32,
    seed: int = 0,
    shuffle=None,
    augment=None,
    background_bias=None,
    species: int = 4,
    hard_fraction: float = 0.1,
    as_numpy: bool = False,
):
    """Synthetic kakapo splits as batched, prefetched ``tf.data`` pipelines.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``, or a tuple of them.
        image_size: image height and width.
        num_samples: images per split: an int for every split, a dict
            ``{split: n}``, or None for :data:`DEFAULT_NUM_SAMPLES`.
        batch_size: batch size; None gives unbatched examples.
        seed: base seed; each split gets its own stream derived from it.
        shuffle: shuffle the examples; None shuffles the train split only.
        augment: passed to :func:`keras_priors.data.make_pipeline`; None
            augments nothing.
        background_bias: float (train split only; other splits use 0) or dict
            ``{split: bias}``; None uses :data:`DEFAULT_BACKGROUND_BIAS`.
        species: number of other-bird species.
        hard_fraction: fraction of hard cases.
        as_numpy: return the numpy dicts of :func:`make_kakapo` instead.

    Returns:
        One ``tf.data.Dataset`` of dicts (or numpy dict) per requested split:
        a single object for a string ``split``, a tuple for a tuple.

    Example:
        >>> train, test = kakapo(split=("train", "test"), image_size=32, num_samples=64, batch_size=16)
        >>> batch = next(iter(test))
        >>> tuple(batch["image"].shape), tuple(batch["object_mask"].shape)
        ((16, 32, 32, 3), (16, 32, 32, 1))
    """
    single = isinstance(split, str)
    splits = (split,) if single else tuple(split)
    if not splits:
        raise ValueError("kakapo: Expected at least one split. Received: split=()")
    for s in splits:
        _check_split(s)
    results = []
    for s in splits:
        if num_samples is None:
            n = DEFAULT_NUM_SAMPLES[s]
        elif isinstance(num_samples, dict):
            n = num_samples.get(s, DEFAULT_NUM_SAMPLES[s])
        else:
            n = num_samples
        if background_bias is None:
            bias = DEFAULT_BACKGROUND_BIAS[s]
        elif isinstance(background_bias, dict):
            bias = background_bias.get(s, DEFAULT_BACKGROUND_BIAS[s])
        else:
            bias = background_bias if s == "train" else 0.0
        split_seed = int(np.random.SeedSequence([int(seed), SPLITS.index(s)]).generate_state(1)[0])
        data = make_kakapo(
            n,
            image_size=image_size,
            seed=split_seed,
            background_bias=bias,
            species=species,
            hard_fraction=hard_fraction,
        )
        if as_numpy:
            results.append(data)
            continue
        from keras_priors.data.pipeline import make_pipeline

        results.append(
            make_pipeline(
                data,
                batch_size=batch_size,
                shuffle=(s == "train") if shuffle is None else shuffle,
                augment=augment,
                seed=seed,
            )
        )
    return results[0] if single else tuple(results)


def preview_kakapo(path: str, n: int = 16, seed: int = 0, split: str = "train", image_size: int = 64) -> str:
    """Write a PNG grid of ``n`` kakapo images with mask outlines and head boxes.

    Args:
        path: output PNG path.
        n: number of images.
        seed: seed of the generator.
        split: which split's background bias to use.
        image_size: image size.

    Returns:
        The path written.
    """
    from keras_priors.data.preview import preview

    _check_split(split)
    data = make_kakapo(n, image_size=image_size, seed=seed, background_bias=DEFAULT_BACKGROUND_BIAS[split])
    return preview(data, path, n=n)
