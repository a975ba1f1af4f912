"""Faithfulness and localisation metrics for saliency maps.

All functions take numpy maps (B, H, W) in [0, 1] at image resolution (the
output of any explainer) and return numpy values.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from keras_priors.explain._graph import ends_in_softmax
from keras_priors.explain._utils import check_images, check_targets, softmax_np
from keras_priors.validation import check_fraction, check_non_negative, check_one_of, check_positive_int


def _check_maps(maps, images, argname="maps"):
    maps = np.asarray(maps, np.float32)
    if maps.ndim == 4 and maps.shape[-1] == 1:
        maps = maps[..., 0]
    if maps.ndim != 3 or (images is not None and maps.shape != images.shape[:3]):
        want = "(batch, height, width)" if images is None else str(images.shape[:3])
        raise ValueError(f"Expected `{argname}` of shape {want}. Received: {argname} with shape {maps.shape}.")
    return maps


def _predict_probs(model, images, batch_size, from_logits):
    out = []
    for start in range(0, len(images), batch_size):
        y = model(ops.convert_to_tensor(images[start : start + batch_size]), training=False)
        if isinstance(y, dict):
            y = y["logits"] if "logits" in y else next(iter(y.values()))
        elif isinstance(y, (list, tuple)):
            y = y[0]
        out.append(np.asarray(ops.convert_to_numpy(ops.cast(y, "float32")), np.float64))
    y = np.concatenate(out, axis=0)
    return softmax_np(y) if from_logits else y


def _resolve_from_logits(model, from_logits) -> bool:
    """``from_logits`` as given, or (None) True unless the model's score output comes out of a softmax."""
    if from_logits is None:
        return not ends_in_softmax(model)
    return bool(from_logits)


def _target_probs(model, images, targets, batch_size, from_logits):
    probs = _predict_probs(model, images, batch_size, from_logits)
    return probs[np.arange(len(images)), targets]


def _prepare(model, images, maps, targets, batch_size, from_logits):
    """Checked inputs, targets and the target probabilities on the full images; ``from_logits`` is resolved."""
    images = check_images(images, getattr(model, "input_shape", None))
    maps = _check_maps(maps, images)
    batch_size = check_positive_int("batch_size", batch_size)
    full = _predict_probs(model, images, batch_size, from_logits)
    if targets is None:
        targets = full.argmax(axis=-1).astype(np.int32)
    else:
        targets = check_targets(targets, images.shape[0], full.shape[-1])
    return images, maps, targets, full[np.arange(len(images)), targets]


def keep_count(keep: float, num_pixels: int) -> int:
    """``ceil(keep * num_pixels)``, the number of pixels AD/IC keeps (as the L-CAM code), robust to float error."""
    return min(num_pixels, math.ceil(round(keep * num_pixels, 6)))


def keep_top(maps: np.ndarray, keep: float) -> np.ndarray:
    """Keep each map's ``ceil(keep * H * W)`` highest pixels, zero the rest (keep=1 keeps all).

    Exactly that many pixels are kept: ties at the threshold are broken by
    position (row-major, first kept), as in deletion/insertion.
    """
    maps = np.asarray(maps, np.float32)
    if keep >= 1.0:
        return maps
    B = len(maps)
    flat = maps.reshape(B, -1)
    n = keep_count(keep, flat.shape[1])
    order = np.argsort(-flat, axis=1, kind="stable")[:, :n]
    kept = np.zeros_like(flat)
    rows = np.arange(B)[:, None]
    kept[rows, order] = flat[rows, order]
    return kept.reshape(maps.shape)


def average_drop_increase_confidence(
    model,
    images,
    maps,
    targets=None,
    keep=(1.0, 0.5, 0.15),
    from_logits: bool | None = None,
    batch_size: int = 32,
) -> dict:
    """Average Drop (AD) and Increase in Confidence (IC) at several kept areas.

    For each kept fraction ``p``, the map's ``ceil(p * H * W)`` highest pixels
    are kept (ties broken by position, as the L-CAM code keeps exactly that
    many) and the rest zeroed; the map is used as a soft mask: the
    explanation image is ``image * map``. With ``Y`` the target class's softmax probability on the
    full image and ``O`` on the explanation image:

    * ``AD = 100 / N * sum_i max(0, Y_i - O_i) / Y_i`` (lower is better),
    * ``IC = 100 / N * sum_i 1[O_i > Y_i]`` (higher is better).

    We divide by ``Y`` as in the Grad-CAM++ paper (Chattopadhyay et al. 2018),
    Score-CAM and L-CAM: the drop is then relative, comparable across images
    and classes with very different confidences, and AD lies in [0, 100].
    Some implementations omit the division (an absolute drop in probability
    points), which makes AD depend on the classifier's calibration; numbers
    from them are not comparable with ours.

    Args:
        model: a Keras classifier (callable on a batch of images).
        images: (B, H, W, C) array.
        maps: (B, H, W) saliency maps in [0, 1].
        targets: None (the predicted class on the full image), an int or one int per image.
        keep: kept fractions of the map's area, each in (0, 1].
        from_logits: True if the model outputs logits (softmax is applied),
            False if it already outputs probabilities; None (default) decides
            as the explainers do: probabilities if the score output comes out
            of a softmax layer or activation, else logits.
        batch_size: images per forward pass.

    Returns:
        dict with ``"average_drop@<pct>"`` and ``"increase_in_confidence@<pct>"``
        for each kept fraction (``pct = round(100 * keep)``), as floats.

    Example:
        >>> import keras, numpy as np
        >>> from keras_priors.explain import GradCAM
        >>> model = keras.Sequential([
        ...     keras.Input((16, 16, 3)),
        ...     keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        ...     keras.layers.GlobalAveragePooling2D(),
        ...     keras.layers.Dense(2),
        ... ])
        >>> images = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
        >>> scores = average_drop_increase_confidence(model, images, GradCAM(model)(images))
        >>> sorted(scores)
        ['average_drop@100', 'average_drop@15', 'average_drop@50', 'increase_in_confidence@100', 'increase_in_confidence@15', 'increase_in_confidence@50']
        >>> 0.0 <= scores["average_drop@15"] <= 100.0
        True
        >>> average_drop_increase_confidence(model, images, np.ones((2, 16, 16)), keep=1.0)  # all kept: no drop
        {'average_drop@100': 0.0, 'increase_in_confidence@100': 0.0}
    """
    keep = [check_fraction("keep", k) for k in np.atleast_1d(keep).tolist()]
    if any(k <= 0 for k in keep):
        raise ValueError(f"Expected every `keep` in (0, 1]. Received: keep={keep}")
    from_logits = _resolve_from_logits(model, from_logits)
    images, maps, targets, y = _prepare(model, images, maps, targets, batch_size, from_logits)
    out = {}
    for k in keep:
        masked = images * keep_top(maps, k)[..., None]
        o = _target_probs(model, masked, targets, batch_size, from_logits)
        pct = int(round(100 * k))
        out[f"average_drop@{pct}"] = float(100.0 * np.mean(np.maximum(0.0, y - o) / np.maximum(y, 1e-12)))
        out[f"increase_in_confidence@{pct}"] = float(100.0 * np.mean(o > y))
    return out


def _blur(images, sigma):
    from scipy.ndimage import gaussian_filter

    return np.stack([gaussian_filter(im, sigma=(sigma, sigma, 0)) for im in images]).astype(np.float32)


#: Side of RISE's blur kernel (``klen`` in eclique/RISE's Evaluation notebook).
RISE_KERNEL_SIZE = 11


def rise_kernel(klen: int = RISE_KERNEL_SIZE, sigma: float = 5.0) -> np.ndarray:
    """RISE's blur kernel (``gkern`` in eclique/RISE ``evaluation.py``): a Gaussian-smoothed Dirac, (klen, klen).

    Example:
        >>> k = rise_kernel()
        >>> k.shape, round(float(k.sum()), 6)
        ((11, 11), 1.0)
    """
    from scipy.ndimage import gaussian_filter

    delta = np.zeros((klen, klen))
    delta[klen // 2, klen // 2] = 1.0
    return gaussian_filter(delta, sigma).astype(np.float32)


def rise_blur(images, sigma: float = 5.0, klen: int = RISE_KERNEL_SIZE) -> np.ndarray:
    """RISE's insertion substrate: each channel convolved with :func:`rise_kernel`, zero padding ``klen // 2``.

    As ``nn.functional.conv2d(x, gkern(klen, sigma), padding=klen // 2)`` in
    eclique/RISE: the zero padding darkens a ``klen // 2`` border.
    """
    from scipy.ndimage import correlate

    kern = rise_kernel(klen, sigma)
    images = np.asarray(images, np.float32)
    out = np.empty_like(images)
    for b in range(images.shape[0]):
        for c in range(images.shape[-1]):
            out[b, ..., c] = correlate(images[b, ..., c], kern, mode="constant", cval=0.0)
    return out


def _curves(model, src, dst, order, counts, targets, batch_size, from_logits):
    """(B, len(counts)) target probabilities of ``src`` with its first ``counts[s]`` pixels of ``order`` from ``dst``.

    The (image, step) pairs go through the model ``batch_size`` at a time; only
    one batch of step images is built at once.
    """
    B, H, W, C = src.shape
    S = len(counts)
    flat_src, flat_dst = src.reshape(B, -1, C), dst.reshape(B, -1, C)
    pairs = [(b, s) for b in range(B) for s in range(S)]
    out = np.empty(B * S, np.float32)
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        batch = flat_src[[b for b, _ in chunk]]
        for i, (b, s) in enumerate(chunk):
            idx = order[b, : counts[s]]
            batch[i, idx] = flat_dst[b, idx]
        chunk_targets = np.asarray([targets[b] for b, _ in chunk])
        out[start : start + len(chunk)] = _target_probs(
            model, batch.reshape(len(chunk), H, W, C), chunk_targets, batch_size, from_logits
        )
    return out.reshape(B, S)


#: Values of ``deletion_insertion(protocol=...)``.
DELETION_INSERTION_PROTOCOLS = ("default", "rise")


def deletion_insertion(
    model,
    images,
    maps,
    targets=None,
    steps: int | None = None,
    baseline: str | None = None,
    blur_sigma: float = 5.0,
    from_logits: bool | None = None,
    batch_size: int = 32,
    protocol: str = "default",
    pixels_per_step: int | None = None,
) -> dict:
    """Deletion and insertion curves and their areas (Petsiuk et al. 2018, RISE).

    Pixels are ranked by the map, highest first. Step by step the top pixels
    are *deleted* (the image's pixels replaced by a substrate) or *inserted*
    (the image's pixels copied onto the substrate) and the target class's
    probability is recorded. The area under each curve is the trapezoid rule
    over the changed fraction in [0, 1]: low deletion AUC and high insertion
    AUC are better. ``protocol`` chooses the substrate and the step grid:

    * ``"default"``: one ``baseline`` for both curves (zeros, or a Gaussian
      blur of ``blur_sigma`` pixels); at step ``s`` of ``steps`` (default 20)
      the top ``round(s / steps * H * W)`` pixels are changed; ties in the map
      are ranked by position (row-major, first first).
    * ``"rise"``: as eclique/RISE ``evaluation.py`` (``CausalMetric``) with the
      substrates of their Evaluation notebook: deletion replaces pixels by
      zeros, insertion starts from the image blurred by :func:`rise_blur`
      (an 11x11 Gaussian kernel of ``blur_sigma`` = 5, zero padding).
      ``pixels_per_step`` pixels change per step (default: the image width,
      RISE's 224 at 224x224, i.e. one row's worth), ``n = ceil(H * W /
      pixels_per_step)`` steps (the last one may change fewer), the curve is
      sampled at ``i / n`` and the area is RISE's ``auc`` (the same trapezoid
      rule). The ranking is theirs, ``flip(argsort(map))``: ties ranked
      last-position first. RISE's images are normalised, so zero is the mean
      colour there; on images in [0, 1] zero is black.

    Args:
        model: a Keras classifier.
        images: (B, H, W, C) array.
        maps: (B, H, W) saliency maps.
        targets: None (predicted class), an int or one int per image.
        steps: ``"default"`` protocol: number of steps (curves have ``steps + 1``
            points); None means 20. Not used by ``"rise"`` (give ``pixels_per_step``).
        baseline: ``"default"`` protocol: "zeros" (None) or "blur". Not used by
            ``"rise"``, whose substrates are fixed.
        blur_sigma: standard deviation of the blur, in pixels.
        from_logits: True if the model outputs logits, False for
            probabilities, None (default) to detect a softmax output as the
            explainers do.
        batch_size: images per forward pass.
        protocol: ``"default"`` or ``"rise"`` (see above).
        pixels_per_step: ``"rise"`` protocol: pixels changed per step (RISE's
            ``step``); None means the image width.

    Returns:
        dict: ``protocol`` (the protocol used, a str), ``fractions`` (n+1,),
        ``deletion_curve``/``insertion_curve`` (B, n+1),
        ``deletion_auc``/``insertion_auc`` (B,); with ``"rise"`` also
        ``pixels_per_step`` (int).

    Example:
        >>> import keras, numpy as np
        >>> from keras_priors.explain import GradCAM
        >>> model = keras.Sequential([
        ...     keras.Input((16, 16, 3)),
        ...     keras.layers.Conv2D(8, 3, padding="same", activation="relu"),
        ...     keras.layers.GlobalAveragePooling2D(),
        ...     keras.layers.Dense(2),
        ... ])
        >>> images = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
        >>> maps = GradCAM(model)(images)
        >>> r = deletion_insertion(model, images, maps, steps=4)
        >>> r["protocol"], r["fractions"].tolist(), r["deletion_curve"].shape, r["insertion_auc"].shape
        ('default', [0.0, 0.25, 0.5, 0.75, 1.0], (2, 5), (2,))
        >>> bool(np.allclose(r["deletion_curve"][:, 0], r["insertion_curve"][:, -1]))  # both the full image
        True
        >>> r = deletion_insertion(model, images, maps, protocol="rise", pixels_per_step=64)  # 256 px: 4 steps
        >>> r["protocol"], r["pixels_per_step"], r["fractions"].tolist()
        ('rise', 64, [0.0, 0.25, 0.5, 0.75, 1.0])
    """
    check_one_of("protocol", protocol, DELETION_INSERTION_PROTOCOLS, "deletion_insertion")
    blur_sigma = check_non_negative("blur_sigma", blur_sigma)
    from_logits = _resolve_from_logits(model, from_logits)
    images, maps, targets, _ = _prepare(model, images, maps, targets, batch_size, from_logits)
    B, H, W, C = images.shape
    flat_maps = maps.reshape(B, -1)
    if protocol == "rise":
        for name, value in (("steps", steps), ("baseline", baseline)):
            if value is not None:
                raise ValueError(
                    f"deletion_insertion: Expected `{name}=None` with protocol='rise' (RISE deletes to zeros, "
                    f"inserts from a blur and changes `pixels_per_step` pixels per step). Received: {name}={value!r}"
                )
        step = W if pixels_per_step is None else check_positive_int("pixels_per_step", pixels_per_step)
        n = -(-H * W // step)
        counts = np.minimum(np.arange(n + 1) * step, H * W)
        fractions = np.arange(n + 1) / n
        order = np.flip(np.argsort(flat_maps, axis=1, kind="stable"), axis=-1)
        substrates = {"deletion": np.zeros_like(images), "insertion": rise_blur(images, blur_sigma)}
    else:
        if pixels_per_step is not None:
            raise ValueError(
                f"deletion_insertion: Expected `pixels_per_step=None` with protocol='default' (give `steps`). "
                f"Received: pixels_per_step={pixels_per_step!r}"
            )
        steps = check_positive_int("steps", 20 if steps is None else steps)
        baseline = check_one_of("baseline", "zeros" if baseline is None else baseline, {"zeros", "blur"})
        base = np.zeros_like(images) if baseline == "zeros" else _blur(images, blur_sigma)
        substrates = {"deletion": base, "insertion": base}
        order = np.argsort(-flat_maps, axis=1, kind="stable")
        fractions = np.linspace(0.0, 1.0, steps + 1)
        counts = np.round(fractions * H * W).astype(int)
    curves = {}
    for mode in ("deletion", "insertion"):
        src, dst = (images, substrates[mode]) if mode == "deletion" else (substrates[mode], images)
        curves[mode] = _curves(model, src, dst, order, counts, targets, batch_size, from_logits)
    out = {"protocol": protocol}
    if protocol == "rise":
        out["pixels_per_step"] = int(step)
    out.update({
        "fractions": fractions.astype(np.float32),
        "deletion_curve": curves["deletion"],
        "insertion_curve": curves["insertion"],
        "deletion_auc": np.trapezoid(curves["deletion"], fractions, axis=1).astype(np.float32),
        "insertion_auc": np.trapezoid(curves["insertion"], fractions, axis=1).astype(np.float32),
    })
    return out


def _check_masks(masks, maps):
    masks = np.asarray(masks, np.float32)
    if masks.ndim == 4 and masks.shape[-1] == 1:
        masks = masks[..., 0]
    if masks.shape != maps.shape:
        raise ValueError(
            f"Expected `masks` of shape {maps.shape} (or with a trailing 1) to match `maps`. "
            f"Received: masks with shape {np.shape(masks)}."
        )
    return masks > 0.5


def energy_in_mask(maps, masks) -> np.ndarray:
    """Share of each map's energy (sum of values) inside the object mask, in [0, 1].

    Args:
        maps: (B, H, W) non-negative maps.
        masks: (B, H, W) or (B, H, W, 1) binary masks.

    Returns:
        (B,) float32; 0 for an all-zero map.

    Example:
        >>> import numpy as np
        >>> maps = np.array([[[1.0, 3.0], [0.0, 0.0]]], "float32")
        >>> masks = np.array([[[0, 1], [0, 0]]], "float32")   # the object is the top-right pixel
        >>> energy_in_mask(maps, masks).tolist()   # 3 of the energy 4 inside
        [0.75]
    """
    maps = _check_maps(maps, None)
    if (maps < 0).any():
        raise ValueError(f"Expected `maps` >= 0. Received: maps with minimum {maps.min()}")
    masks = _check_masks(masks, maps)
    total = maps.sum(axis=(1, 2))
    inside = (maps * masks).sum(axis=(1, 2))
    return np.where(total > 0, inside / np.maximum(total, 1e-12), 0.0).astype(np.float32)


def pointing_game(maps, masks, tolerance: float = 0.0) -> np.ndarray:
    """Pointing game (Zhang et al. 2016): hit if the map's maximum lies in the mask.

    A hit also counts when the maximum is within ``tolerance`` pixels (Euclidean)
    of the mask (the paper uses 15 px at 224 px). Ties: the first maximum in
    row-major order.

    Args:
        maps: (B, H, W) maps.
        masks: (B, H, W) or (B, H, W, 1) binary masks.
        tolerance: distance in pixels, >= 0.

    Returns:
        (B,) float32 of 1.0 (hit) / 0.0 (miss); ``.mean()`` is the accuracy.

    Example:
        >>> import numpy as np
        >>> maps = np.zeros((2, 8, 8), "float32")
        >>> maps[0, 1, 1] = 1.0; maps[1, 6, 6] = 1.0         # the maxima
        >>> masks = np.zeros((2, 8, 8), "float32"); masks[:, :3, :3] = 1   # object top-left
        >>> pointing_game(maps, masks).tolist()             # image 1 points 5.7 px off the mask
        [1.0, 0.0]
        >>> pointing_game(maps, masks, tolerance=6).tolist()
        [1.0, 1.0]
    """
    tolerance = check_non_negative("tolerance", tolerance)
    maps = _check_maps(maps, None)
    masks = _check_masks(masks, maps)
    B, H, W = maps.shape
    flat = maps.reshape(B, -1).argmax(axis=1)
    ys, xs = np.divmod(flat, W)
    hits = np.zeros(B, np.float32)
    if tolerance > 0:
        from scipy.ndimage import distance_transform_edt
    for b in range(B):
        if tolerance > 0 and masks[b].any():
            dist = distance_transform_edt(~masks[b])
            hits[b] = float(dist[ys[b], xs[b]] <= tolerance)
        else:
            hits[b] = float(masks[b, ys[b], xs[b]])
    return hits
