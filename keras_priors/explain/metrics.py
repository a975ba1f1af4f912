"""Faithfulness and localisation metrics for saliency maps.

All functions take numpy maps (B, H, W) in [0, 1] at image resolution (the
output of any explainer) and return numpy values.
"""

from __future__ import annotations

import math

import numpy as np
from keras import ops

from keras_priors.explain._graph import ends_in_softmax
from keras_priors.explain.base_cam import explainer_docstring
from keras_priors.explain._utils import check_images, check_targets, softmax_np
from keras_priors.losses import _spatial
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


@explainer_docstring
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
        {example_model}
        >>> from keras_priors.explain import GradCAM
        >>> scores = average_drop_increase_confidence(model, images, GradCAM(model)(images))
        >>> sorted(scores)  # doctest: +NORMALIZE_WHITESPACE
        ['average_drop@100', 'average_drop@15', 'average_drop@50', 'increase_in_confidence@100',
         'increase_in_confidence@15', 'increase_in_confidence@50']
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


@explainer_docstring
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
        {example_model}
        >>> from keras_priors.explain import GradCAM
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

    "Energy in mask": ``keras_priors.metrics.CAMEnergyInMask`` measures the
    same share on a CAM's positive evidence for one class (both use
    ``keras_priors.losses._spatial.energy_inside_and_total``).

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
    inside, total = _spatial.energy_inside_and_total(maps, masks)
    return np.asarray(ops.convert_to_numpy(_spatial.energy_share(inside, total)), np.float32)


def pointing_game(maps, masks=None, tolerance: float = 0.0, boxes=None) -> np.ndarray:
    """Pointing game (Zhang et al. 2016): hit if the map's maximum lies in the mask (or box).

    A hit also counts when the maximum is within ``tolerance`` pixels
    (Euclidean) of the mask. The default, ``tolerance=0``, is the strict game
    (the maximum must fall on the object); Zhang et al. use 15 px at 224x224
    (:data:`POINTING_GAME_TOLERANCE`): pass ``tolerance=15`` to score as they
    do, scaled with the image size for other sizes. Ties: the first maximum
    in row-major order.

    Args:
        maps: (B, H, W) maps.
        masks: (B, H, W) or (B, H, W, 1) binary masks.
        tolerance: distance in pixels, >= 0 (default 0: strict).
        boxes: (B, 4) boxes ``(y_min, x_min, y_max, x_max)`` instead of ``masks`` (see :func:`box_masks`).

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
        >>> pointing_game(maps, boxes=[[0, 0, 3, 3], [0, 0, 3, 3]]).tolist()   # the same object as a box
        [1.0, 0.0]
    """
    tolerance = check_non_negative("tolerance", tolerance)
    maps = _check_maps(maps, None)
    masks = _masks_or_boxes(maps, masks, boxes, "pointing_game")
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


#: Distance (pixels) within which Zhang et al. 2016 count a pointing-game hit at 224x224.
POINTING_GAME_TOLERANCE = 15


def box_masks(boxes, height: int, width: int) -> np.ndarray:
    """Binary masks (B, H, W) of boxes ``(y_min, x_min, y_max, x_max)`` in pixels, max exclusive.

    Box ``(1, 2, 3, 5)`` covers rows 1-2 and columns 2-4 (``mask[1:3, 2:5]``);
    coordinates are clipped to the image. One box per image.

    Example:
        >>> box_masks([[1, 2, 3, 5]], 4, 6)[0].astype(int)
        array([[0, 0, 0, 0, 0, 0],
               [0, 0, 1, 1, 1, 0],
               [0, 0, 1, 1, 1, 0],
               [0, 0, 0, 0, 0, 0]])
    """
    boxes = np.asarray(boxes)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"Expected `boxes` of shape (batch, 4) as (y_min, x_min, y_max, x_max). "
                         f"Received: boxes with shape {boxes.shape}.")
    if np.any(boxes[:, 2] < boxes[:, 0]) or np.any(boxes[:, 3] < boxes[:, 1]):
        raise ValueError(f"Expected `boxes` with y_max >= y_min and x_max >= x_min. Received: boxes={boxes.tolist()}")
    yy = np.arange(height)[None, :, None]
    xx = np.arange(width)[None, None, :]
    y0, x0, y1, x1 = (boxes[:, i][:, None, None] for i in range(4))
    return ((yy >= y0) & (yy < y1) & (xx >= x0) & (xx < x1)).astype(np.float32)


def _masks_or_boxes(maps, masks, boxes, owner):
    if (masks is None) == (boxes is None):
        raise ValueError(f"{owner}: Expected exactly one of `masks` (B, H, W) or `boxes` (B, 4). "
                         f"Received: masks={'None' if masks is None else 'an array'}, "
                         f"boxes={'None' if boxes is None else 'an array'}.")
    if boxes is not None:
        boxes = np.asarray(boxes)
        if len(boxes) != len(maps):
            raise ValueError(f"{owner}: Expected one box per map ({len(maps)}). Received: {len(boxes)} boxes.")
        masks = box_masks(boxes, maps.shape[1], maps.shape[2])
    return _check_masks(masks, maps)


def energy_pointing_game(maps, boxes=None, masks=None) -> np.ndarray:
    """Energy-based pointing game (Wang et al. 2020, Score-CAM): share of the map's energy inside the box.

    ``sum(map inside the box) / sum(map)`` per image, in [0, 1] (higher is
    better), as Score-CAM's "proportion of energy in the bounding box": the
    map is binarised by the box and the energy inside is divided by the
    total. Give ``boxes`` (as the paper) or ``masks`` (then it equals
    :func:`energy_in_mask`).

    Args:
        maps: (B, H, W) non-negative maps (CAMs after ReLU).
        boxes: (B, 4) boxes ``(y_min, x_min, y_max, x_max)``, max exclusive (see :func:`box_masks`).
        masks: (B, H, W) or (B, H, W, 1) binary masks, instead of ``boxes``.

    Returns:
        (B,) float32; 0 for an all-zero map.

    Example:
        >>> import numpy as np
        >>> maps = np.zeros((1, 4, 4), "float32"); maps[0, 0, 0] = 3.0; maps[0, 3, 3] = 1.0
        >>> energy_pointing_game(maps, boxes=[[0, 0, 2, 2]]).tolist()   # 3 of the energy 4 in the box
        [0.75]

    Reference:
        Wang et al., "Score-CAM: Score-Weighted Visual Explanations for
        Convolutional Neural Networks", CVPR Workshops 2020 (Sec. 4.3).
    """
    maps = _check_maps(maps, None)
    masks = _masks_or_boxes(maps, masks, boxes, "energy_pointing_game")
    return energy_in_mask(maps, masks)


def relevance_mass_accuracy(maps, masks=None, boxes=None) -> np.ndarray:
    """Relevance mass accuracy (Arras et al. 2022, CLEVR-XAI): positive relevance inside the mask / all of it.

    ``R_within / R_total`` with ``R = max(map, 0)``: only positive relevance
    counts, as in the paper and Quantus' ``RelevanceMassAccuracy`` (whose
    docstring states it; its code divides the plain sums, which is the same
    on non-negative maps such as CAMs). In [0, 1], higher is better; 1 when
    all positive relevance lies on the object.

    Args:
        maps: (B, H, W) relevance maps (may be signed, e.g. input gradients).
        masks: (B, H, W) or (B, H, W, 1) binary ground-truth masks.
        boxes: (B, 4) boxes ``(y_min, x_min, y_max, x_max)`` instead of ``masks``.

    Returns:
        (B,) float32: 0 for a map with no positive relevance; NaN for an empty
        mask (no ground truth; Quantus also returns NaN), so average with ``np.nanmean``.

    Example:
        >>> import numpy as np
        >>> maps = np.array([[[2.0, -5.0], [1.0, 1.0]]], "float32")
        >>> masks = np.array([[[1, 1], [0, 0]]], "float32")
        >>> relevance_mass_accuracy(maps, masks).tolist()   # (2 + 0) / (2 + 1 + 1): the -5 is not counted
        [0.5]

    Reference:
        Arras, Osman, Samek, "CLEVR-XAI: A benchmark dataset for the ground
        truth evaluation of neural network explanations", Information Fusion 81 (2022).
    """
    maps = _check_maps(maps, None)
    masks = _masks_or_boxes(maps, masks, boxes, "relevance_mass_accuracy")
    pos = np.maximum(maps.astype(np.float64), 0.0)
    total = pos.sum(axis=(1, 2))
    inside = (pos * masks).sum(axis=(1, 2))
    out = np.where(total > 0, inside / np.maximum(total, 1e-300), 0.0)
    out[~masks.any(axis=(1, 2))] = np.nan
    return out.astype(np.float32)


# === ROAD: remove and debias (Rong et al. 2022) ===

#: Neighbour offsets and weights of ROAD's noisy linear imputation (``neighbors_weights`` in
#: tleemann/road_evaluation ``imputations.py``): 1/6 for the 4 direct neighbours, 1/12 for the diagonals.
ROAD_NEIGHBOUR_WEIGHTS = (
    ((1, 1), 1 / 12), ((0, 1), 1 / 6), ((-1, 1), 1 / 12), ((1, -1), 1 / 12),
    ((0, -1), 1 / 6), ((-1, -1), 1 / 12), ((1, 0), 1 / 6), ((-1, 0), 1 / 6),
)


def noisy_linear_imputation(image, removed, noise: float = 0.01, rng=None) -> np.ndarray:
    """ROAD's noisy linear imputation: removed pixels become the weighted mean of their neighbours, plus noise.

    Each removed pixel ``i`` takes the value solving ``x_i = sum_n w_n x_n /
    sum_n w_n`` over its neighbours ``n`` inside the image (weights
    :data:`ROAD_NEIGHBOUR_WEIGHTS`), where a neighbour that is also removed
    is itself an unknown: one sparse linear system for all removed pixels
    (every channel a right-hand side), solved with ``scipy.sparse.linalg.spsolve``
    as in the authors' code; then Gaussian noise of standard deviation
    ``noise`` (absolute, in image units) is added to the imputed values.

    Args:
        image: (H, W, C) image.
        removed: (H, W) boolean, True where the pixel is removed. At least one
            pixel must stay (with none left the system is singular).
        noise: standard deviation of the added noise (0 for none).
        rng: a ``numpy.random.Generator`` for the noise (default: seed 0).

    Returns:
        (H, W, C) float32: kept pixels unchanged, removed ones imputed.

    Example:
        >>> import numpy as np
        >>> img = np.zeros((3, 3, 1), "float32"); img[0, :] = 1.0   # top row 1, the rest 0
        >>> removed = np.zeros((3, 3), bool); removed[1, 1] = True
        >>> out = noisy_linear_imputation(img, removed, noise=0.0)
        >>> round(float(out[1, 1, 0]), 6)   # 1/12 + 1/6 + 1/12 from the top row
        0.333333

    Reference:
        Rong, Leemann, Borisov, Kasneci, Kasneci, "A Consistent and Efficient
        Evaluation Strategy for Attribution Methods", ICML 2022.
    """
    try:
        from scipy.sparse import coo_matrix
        from scipy.sparse.linalg import spsolve
    except ImportError:  # pragma: no cover - scipy ships with the [vis]/[tests] extras
        raise ImportError("ROAD's noisy linear imputation needs scipy: pip install scipy "
                          "(or keras-priors[vis]).") from None
    noise = check_non_negative("noise", noise, owner="noisy_linear_imputation")
    image = np.asarray(image, np.float64)
    removed = np.asarray(removed, bool)
    if image.ndim != 3 or removed.shape != image.shape[:2]:
        raise ValueError(f"noisy_linear_imputation: Expected `image` (H, W, C) and `removed` (H, W). "
                         f"Received: image with shape {image.shape}, removed with shape {removed.shape}.")
    H, W, C = image.shape
    out = image.copy()
    n = int(removed.sum())
    if n == 0:
        return out.astype(np.float32)
    if n == H * W:
        raise ValueError("noisy_linear_imputation: Expected at least one kept pixel (`removed` False somewhere). "
                         "Received: every pixel removed, so the imputation has no values to start from.")
    ys, xs = np.nonzero(removed)
    var_of = -np.ones((H, W), np.int64)
    var_of[ys, xs] = np.arange(n)
    diag = np.zeros(n)
    rhs = np.zeros((n, C))
    rows, cols, vals = [], [], []
    for (dy, dx), w in ROAD_NEIGHBOUR_WEIGHTS:
        ny, nx = ys + dy, xs + dx
        inside = (ny >= 0) & (ny < H) & (nx >= 0) & (nx < W)
        idx = np.nonzero(inside)[0]
        ny, nx = ny[inside], nx[inside]
        diag[idx] += w
        unknown = removed[ny, nx]
        rows.append(idx[unknown])
        cols.append(var_of[ny[unknown], nx[unknown]])
        vals.append(np.full(int(unknown.sum()), -w))
        rhs[idx[~unknown]] += w * image[ny[~unknown], nx[~unknown]]
    rows.append(np.arange(n)); cols.append(np.arange(n)); vals.append(diag)
    A = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(n, n)).tocsc()
    solution = np.asarray(spsolve(A, rhs)).reshape(n, C)
    if noise > 0:
        rng = np.random.default_rng(0) if rng is None else rng
        solution = solution + noise * rng.standard_normal(solution.shape)
    out[ys, xs] = solution
    return out.astype(np.float32)


def removed_count(fraction: float, num_pixels: int) -> int:
    """``floor(fraction * num_pixels)``, the pixels ROAD removes (``int(w * h * th_p)`` in their code), float-robust."""
    return min(num_pixels, math.floor(round(fraction * num_pixels, 6)))


#: Removed fractions of ``road`` by default (pytorch-grad-cam's ``ROADCombined`` percentiles).
ROAD_FRACTIONS = (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


@explainer_docstring
def road(
    model,
    images,
    maps,
    targets=None,
    fractions=ROAD_FRACTIONS,
    noise: float = 0.01,
    seed: int = 0,
    from_logits: bool | None = None,
    batch_size: int = 32,
) -> dict:
    """ROAD, remove and debias (Rong et al. 2022): MoRF and LeRF curves with noisy linear imputation.

    For each removed fraction ``p``, ``floor(p * H * W)`` pixels are removed,
    the most relevant first (MoRF) or the least relevant first (LeRF), and
    filled by :func:`noisy_linear_imputation` (which, unlike zeros or a blur,
    leaks no class information through the shape of the removed region);
    the target class's probability on the imputed image is recorded.
    Pixels are ranked by the map, ties broken by position (row-major, first
    ranked first); the authors' code breaks ties with a 1e-4 Gaussian jitter
    on the map rescaled to [0, 1] instead. Their LeRF at ``th_p`` keeps the
    top ``th_p`` and plots it flipped; here LeRF at ``p`` removes the lowest
    ``p`` directly (the same up to one pixel of rounding).

    Scores (probabilities, in [0, 1]): ``morf`` is the mean of the MoRF curve
    (lower is better: removing what the map calls relevant should hurt),
    ``lerf`` the mean of the LeRF curve (higher is better) and ``combined =
    (lerf - morf) / 2`` (higher is better), as pytorch-grad-cam's
    ``ROADCombined``, which averages the same fractions of score changes
    (the full-image score cancels).

    Args:
        model: a Keras classifier.
        images: (B, H, W, C) array.
        maps: (B, H, W) saliency maps.
        targets: None (predicted class), an int or one int per image.
        fractions: removed fractions, each in [0, 1) (default 0.1 .. 0.9).
        noise: standard deviation of the imputation noise, in image units
            (the authors' 0.01, on their normalised images).
        seed: seed of the noise.
        from_logits: True for logits, False for probabilities, None to detect
            a softmax output as the explainers do.
        batch_size: images per forward pass.

    Returns:
        dict: ``fractions`` (n,), ``morf_curve``/``lerf_curve`` (B, n) target
        probabilities, ``full`` (B,) the probability on the full image,
        ``morf``/``lerf``/``combined`` (B,) per-image scores.

    Example:
        {example_model}
        >>> maps = np.random.default_rng(1).random((2, 16, 16)).astype("float32")
        >>> r = road(model, images, maps, fractions=(0.25, 0.5))
        >>> r["fractions"].tolist(), r["morf_curve"].shape, r["combined"].shape
        ([0.25, 0.5], (2, 2), (2,))

    Reference:
        Rong, Leemann, Borisov, Kasneci, Kasneci, "A Consistent and Efficient
        Evaluation Strategy for Attribution Methods", ICML 2022;
        tleemann/road_evaluation and pytorch-grad-cam ``metrics/road.py``.
    """
    fractions = [check_fraction("fractions", f, owner="road") for f in np.atleast_1d(fractions).tolist()]
    if not fractions or any(f >= 1.0 for f in fractions):
        raise ValueError(f"road: Expected `fractions` in [0, 1) (removing every pixel leaves nothing to impute "
                         f"from). Received: fractions={fractions}")
    noise = check_non_negative("noise", noise, owner="road")
    from_logits = _resolve_from_logits(model, from_logits)
    images, maps, targets, full = _prepare(model, images, maps, targets, batch_size, from_logits)
    B, H, W, C = images.shape
    order = np.argsort(-maps.reshape(B, -1), axis=1, kind="stable")  # most relevant first
    rng = np.random.default_rng(seed)
    S = len(fractions)
    curves = {}
    per_chunk = max(1, batch_size // S)  # images whose S imputed copies go through the model together
    for mode in ("morf", "lerf"):
        curves[mode] = np.empty((B, S), np.float32)
        for start in range(0, B, per_chunk):
            stop = min(B, start + per_chunk)
            imputed = np.empty((stop - start, S, H, W, C), np.float32)
            for b in range(start, stop):
                ranked = order[b] if mode == "morf" else order[b, ::-1]
                for s, f in enumerate(fractions):
                    removed = np.zeros(H * W, bool)
                    removed[ranked[: removed_count(f, H * W)]] = True
                    imputed[b - start, s] = noisy_linear_imputation(images[b], removed.reshape(H, W), noise, rng)
            probs = _target_probs(model, imputed.reshape(-1, H, W, C), np.repeat(targets[start:stop], S),
                                  batch_size, from_logits)
            curves[mode][start:stop] = probs.reshape(stop - start, S)
    morf, lerf = curves["morf"].mean(axis=1), curves["lerf"].mean(axis=1)
    return {
        "fractions": np.asarray(fractions, np.float32),
        "morf_curve": curves["morf"],
        "lerf_curve": curves["lerf"],
        "full": full.astype(np.float32),
        "morf": morf,
        "lerf": lerf,
        "combined": ((lerf - morf) / 2).astype(np.float32),
    }


# === Legends: what each number measures, its unit and which way is better ===

#: One line per metric family: (what it measures, unit, better). Keys are the metric names before ``@``.
METRIC_LEGENDS = {
    "average_drop": ("relative drop of the target probability when only the map's top p % is kept "
                     "(image * map)", "% of the full-image probability, 0-100", "lower"),
    "increase_in_confidence": ("images whose target probability rises when only the map's top p % is kept",
                               "% of images, 0-100", "higher"),
    "deletion_auc": ("area under the target probability as the map's top pixels are deleted",
                     "probability x fraction removed, 0-1", "lower"),
    "insertion_auc": ("area under the target probability as the map's top pixels are inserted",
                      "probability x fraction inserted, 0-1", "higher"),
    "road_morf": ("ROAD: mean target probability with the most relevant 10-90 % of pixels removed "
                  "(noisy linear imputation)", "probability, 0-1", "lower"),
    "road_lerf": ("ROAD: mean target probability with the least relevant 10-90 % of pixels removed",
                  "probability, 0-1", "higher"),
    "road_combined": ("ROAD: (LeRF - MoRF) / 2", "probability difference, -0.5 to 0.5", "higher"),
    "pointing_game": ("images whose map maximum falls on the object (strict, 0 px tolerance)",
                      "% of images, 0-100", "higher"),
    "pointing_game_15px": ("images whose map maximum falls within 15 px of the object at 224x224 (Zhang et "
                           "al.; scaled with the image size)",
                           "% of images, 0-100", "higher"),
    "energy_pointing_game": ("share of the map's sum inside the object box or mask (Score-CAM)", "fraction, 0-1",
                             "higher"),
    "relevance_mass_accuracy": ("share of the positive relevance inside the object mask (CLEVR-XAI)",
                                "fraction, 0-1", "higher"),
    "energy_in_mask": ("share of the map's sum inside the mask", "fraction, 0-1", "higher"),
}


def metric_legend(name: str) -> str:
    """One line for metric ``name`` (``"average_drop@15"`` too): what it measures, its unit, which way is better.

    Example:
        >>> metric_legend("average_drop@15")  # doctest: +NORMALIZE_WHITESPACE
        "average_drop@15: relative drop of the target probability when only the map's top p % is kept (image * map);
        unit: % of the full-image probability, 0-100; lower is better"
    """
    key = name.split("@", 1)[0]
    if key not in METRIC_LEGENDS:
        raise ValueError(f"Expected a metric among {sorted(METRIC_LEGENDS)}. Received: name={name!r}")
    what, unit, better = METRIC_LEGENDS[key]
    return f"{name}: {what}; unit: {unit}; {better} is better"
