"""Effective receptive fields (Luo et al. 2016): input gradients of one unit.

The effective receptive field (ERF) of an output unit is the map of
``|d unit / d input|`` averaged over images: it shows which pixels really move
the unit, and is usually a Gaussian-like blob much smaller than the
theoretical receptive field. One batched gradient call computes it for the
whole batch: samples are independent, so the gradient of the unit *summed over
the batch* gives every sample's own gradient at once.

Backend dispatch: TensorFlow (``tf.GradientTape``) and JAX (``jax.grad`` over
``model.stateless_call``); PyTorch via autograd.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import keras
import numpy as np

from keras_priors.receptive_field.theoretical import ReceptiveField, compute_receptive_fields

__all__ = ["ERFResult", "effective_receptive_field", "plot_erf", "feature_submodel", "high_contribution_area_ratio",
           "HIGH_CONTRIBUTION_THRESHOLDS", "erf_summary_for", "format_area_ratios"]


@dataclasses.dataclass
class ERFResult:
    """An effective receptive field map and its summary numbers.

    Attributes:
        map: ``(H, W)`` float array, the gradient magnitude (or signed gradient)
            averaged over samples and summed over input channels.
        layer: the layer name whose unit was probed.
        unit: the probed output unit index ``(i, j)``.
        center: input coordinates ``(y, x)`` of the unit's theoretical centre.
        receptive_field: the theoretical `ReceptiveField` of ``layer``.
        radius_50: smallest normalised radius holding 50 % of the gradient mass,
            as a fraction of the theoretical RF half-size (Chebyshev box around
            ``center``; 1.0 = the whole theoretical field).
        radius_90: same for 90 % of the mass.
        radius_50_px: 50 % radius in input pixels (Chebyshev half-size).
        radius_90_px: 90 % radius in input pixels.
        mean: gradient-mass centroid ``(y, x)`` (Gaussian fit by moments).
        std: gradient-mass standard deviation ``(y, x)``.
        mass_inside_rf: share of the gradient mass inside the theoretical box.
        num_samples: how many inputs were averaged.
        absolute: True if ``|grad|`` was averaged, False for the signed gradient.
    """

    map: np.ndarray
    layer: str
    unit: tuple
    center: tuple
    receptive_field: ReceptiveField
    radius_50: float
    radius_90: float
    radius_50_px: float
    radius_90_px: float
    mean: tuple
    std: tuple
    mass_inside_rf: float
    num_samples: int
    absolute: bool = True


def _find_layer_path(model, name: str):
    """Return the list of layers from the outer model down to ``name`` ("a/b" for nested)."""
    parts = name.split("/")
    path = []
    current = model
    for depth, part in enumerate(parts):
        try:
            layer = current.get_layer(part)
        except ValueError:
            layer = None
        if layer is None:
            known = [lyr.name for lyr in current.layers]
            import difflib

            close = difflib.get_close_matches(part, known, n=5)
            raise ValueError(
                f"No layer named {part!r} in model {current.name!r}"
                + (f" (while resolving {name!r})" if len(parts) > 1 else "")
                + f". Closest names: {close or known[-5:]}."
            )
        path.append(layer)
        if depth < len(parts) - 1:
            if not isinstance(layer, keras.Model):
                raise ValueError(f"{part!r} in {name!r} is not a nested model.")
            current = layer
    return path


def feature_submodel(model: keras.Model, layer: str) -> keras.Model:
    """A model from ``model``'s inputs to the output of ``layer`` (nested names allowed)."""
    path = _find_layer_path(model, layer)

    def build(outer, chain, inputs):
        head = chain[0]
        if len(chain) == 1:
            sub = keras.Model(outer.inputs, head.output)
            return sub(inputs)
        # head is a nested model: reach its input tensor in ``outer``'s graph, then descend.
        graph = outer._functional if isinstance(outer, keras.Sequential) else outer
        nodes = [nd for nds in graph._nodes_by_depth.values() for nd in nds if nd.operation is head]
        if not nodes:
            raise ValueError(f"Nested model {head.name!r} is not called in {outer.name!r}.")
        head_in = nodes[0].input_tensors
        pre = keras.Model(outer.inputs, head_in if len(head_in) > 1 else head_in[0])
        inner_in = pre(inputs)
        return build(head, chain[1:], inner_in)

    fresh = [keras.Input(batch_shape=tuple(t.shape), dtype=t.dtype) for t in model.inputs]
    arg = fresh if len(fresh) > 1 else fresh[0]
    out = build(model, path, arg)
    return keras.Model(arg, out, name=f"{model.name}_to_{layer.replace('/', '_')}")


def _unit_objective(y, unit):
    """Sum of channels of unit ``unit`` over the batch (channels_last feature map)."""
    idx = (slice(None),) + tuple(int(u) for u in unit) + (Ellipsis,)
    return keras.ops.sum(y[idx])


def input_gradients(submodel: keras.Model, x: np.ndarray, unit: Sequence[int]) -> np.ndarray:
    """Gradient of the unit (summed over channels and batch) w.r.t. ``x``, one batched call."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        xt = tf.convert_to_tensor(x)
        # Eager tape: one-shot calls are faster than tracing a tf.function first.
        with tf.GradientTape() as tape:
            tape.watch(xt)
            y = submodel(xt, training=False)
            obj = _unit_objective(y, unit)
        return np.asarray(tape.gradient(obj, xt))
    if backend == "jax":
        import jax

        trainable = [v.value for v in submodel.trainable_variables]
        non_trainable = [v.value for v in submodel.non_trainable_variables]
        # One jitted gradient per (sub-model, unit), weights passed as arguments so the
        # cached function stays right while the model trains (ERFImages).
        cache = submodel.__dict__.setdefault("_kp_erf_jax_grads", {})
        key = tuple(int(u) for u in unit)
        if key not in cache:

            def f(xx, tv, ntv):
                y, _ = submodel.stateless_call(tv, ntv, xx, training=False)
                return _unit_objective(y, key)

            cache[key] = jax.jit(jax.grad(f))
        return np.asarray(cache[key](jax.numpy.asarray(x), trainable, non_trainable))
    if backend == "torch":
        import torch

        xt = torch.tensor(x, requires_grad=True)
        obj = _unit_objective(submodel(xt, training=False), unit)
        obj.backward()
        return xt.grad.detach().cpu().numpy()
    raise NotImplementedError(
        f"effective_receptive_field supports the tensorflow, jax and torch backends. "
        f"Received backend: {backend!r}"
    )


def _mass_radius(weights, dy, dx, half_y, half_x, frac):
    """Smallest normalised Chebyshev radius t with mass(d <= t) >= frac."""
    d = np.maximum(np.abs(dy) / half_y, np.abs(dx) / half_x).ravel()
    w = weights.ravel()
    order = np.argsort(d, kind="stable")
    cum = np.cumsum(w[order])
    k = int(np.searchsorted(cum, frac * cum[-1] - 1e-12))
    return float(d[order][min(k, len(d) - 1)])


def effective_receptive_field(
    model: keras.Model,
    layer: str | None = None,
    inputs: Any = None,
    num_samples: int = 16,
    input_shape: Sequence[int] | None = None,
    unit: Sequence[int] | None = None,
    absolute: bool = True,
    seed: int = 0,
) -> ERFResult:
    """Effective receptive field of one unit of ``layer`` (Luo et al. 2016).

    Args:
        model: a functional Keras model with one image input (channels_last).
        layer: layer name (``"backbone/conv5_block3_out"`` for nested models);
            default: the last layer with a spatial output.
        inputs: ``(N, H, W, C)`` images (array or a dataset of dicts with an
            ``image`` key / of ``(x, y)`` tuples). Default: uniform noise in [0, 1].
        num_samples: how many samples to average (the first ``num_samples`` of
            ``inputs``, or this many random inputs).
        input_shape: ``(H, W, C)`` when the model's input has unknown sizes and
            random inputs are used.
        unit: the output unit ``(i, j)``; default: the centre unit.
        absolute: average ``|grad|`` (default) or the signed gradient.
        seed: seed of the random inputs.

    Returns:
        An `ERFResult` with the map and its summary numbers.

    Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((16, 16, 1))]
    ...                          + [keras.layers.Conv2D(2, 3, name=f"conv{i}") for i in (1, 2, 3)])
    >>> res = effective_receptive_field(model, "conv3", num_samples=8)
    >>> res.map.shape, res.unit, res.receptive_field.size   # three 3x3 convs: a 7x7 theoretical RF
    ((16, 16), (5, 5), (7, 7))
    >>> round(res.mass_inside_rf, 6)   # no gradient reaches outside it
    1.0

    Reference:
        Luo, Li, Urtasun, Zemel, "Understanding the Effective Receptive Field in
        Deep Convolutional Neural Networks", NeurIPS 2016.
    """
    from keras_priors.validation import check_positive_int

    num_samples = check_positive_int("num_samples", num_samples, owner="effective_receptive_field")
    if keras.config.image_data_format() != "channels_last":
        raise ValueError("effective_receptive_field expects channels_last images.")
    x = _prepare_inputs(model, inputs, num_samples, input_shape, seed)
    rfs = compute_receptive_fields(model, input_shape=x.shape[1:])
    if layer is None:
        spatial = [n for n, r in rfs.items() if not r.is_global]
        layer = spatial[-1]
    if layer not in rfs:
        _find_layer_path(model, layer)  # raises a clear "no layer named" error when missing
        raise ValueError(
            f"Layer {layer!r} has no spatial receptive field (it is global or not on the path "
            f"from the image input). Spatial layers: {[n for n, r in rfs.items() if not r.is_global][-5:]}"
        )
    rf = rfs[layer]
    if rf.is_global:
        raise ValueError(f"Layer {layer!r} is global (its units see the whole input); pick a spatial layer.")
    sub = feature_submodel(model, layer)
    out_shape = tuple(sub.output.shape[1:-1]) if sub.output.shape[1:-1] else ()
    out_size = rf.output_size if all(v is not None for v in rf.output_size) else out_shape
    if unit is None:
        unit = tuple(int(n) // 2 for n in out_size)
    unit = tuple(int(u) for u in unit)
    if len(unit) != len(out_size) or any(not 0 <= u < n for u, n in zip(unit, out_size)):
        raise ValueError(
            f"Expected unit inside the output of {layer!r} of spatial size {tuple(out_size)}. "
            f"Received: unit={unit}"
        )
    grads = input_gradients(sub, x.astype("float32"), unit)
    g = np.abs(grads) if absolute else grads
    erf_map = g.mean(axis=0).sum(axis=-1)  # average over samples, sum over channels
    return _summarise(erf_map, layer, unit, rf, num_samples=x.shape[0], absolute=absolute)


def _summarise(erf_map, layer, unit, rf, num_samples, absolute) -> ERFResult:
    h, w = erf_map.shape[:2]
    yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
    weights = np.abs(erf_map).astype("float64")
    total = weights.sum()
    centre = rf.center(*unit)
    half_y, half_x = max(rf.size[0] / 2, 0.5), max(rf.size[1] / 2, 0.5)
    dy, dx = yy - centre[0], xx - centre[1]
    if total <= 0:
        nan = float("nan")
        return ERFResult(erf_map, layer, unit, centre, rf, nan, nan, nan, nan,
                         (nan, nan), (nan, nan), nan, num_samples, absolute)
    r50 = _mass_radius(weights, dy, dx, half_y, half_x, 0.5)
    r90 = _mass_radius(weights, dy, dx, half_y, half_x, 0.9)
    r50_px = _mass_radius(weights, dy, dx, 1.0, 1.0, 0.5)
    r90_px = _mass_radius(weights, dy, dx, 1.0, 1.0, 0.9)
    p = weights / total
    my, mx = float((p * yy).sum()), float((p * xx).sum())
    sy = float(np.sqrt((p * (yy - my) ** 2).sum()))
    sx = float(np.sqrt((p * (xx - mx) ** 2).sum()))
    y0, x0, y1, x1 = rf.box(*unit)
    inside = (yy >= y0) & (yy <= y1) & (xx >= x0) & (xx <= x1)
    return ERFResult(
        erf_map, layer, unit, centre, rf, r50, r90, r50_px, r90_px,
        (my, mx), (sy, sx), float(p[inside].sum()), num_samples, absolute,
    )


#: RepLKNet's thresholds ``t`` for the high-contribution area ratio (``erf/analyze_erf.py``).
HIGH_CONTRIBUTION_THRESHOLDS = (0.2, 0.3, 0.5, 0.99)


def high_contribution_area_ratio(erf_map, thresholds=HIGH_CONTRIBUTION_THRESHOLDS) -> dict:
    """RepLKNet's high-contribution area ratio of an ERF map (Ding et al. 2022, ``erf/analyze_erf.py``).

    As their script: the map becomes ``log10(map + 1)``, divided by its
    maximum; then for each threshold ``t`` the smallest square centred on
    pixel ``(H // 2, W // 2)``, of side ``2 i + 1`` for ``i = 1 .. H // 2 - 1``,
    whose sum is *more than* ``t`` of the total gives ``(side, side / H *
    side / W)``: the side in pixels and the share of the image area. A
    smaller ratio at a given ``t`` means the contribution is more
    concentrated at the centre (their Table 4 compares models with it). The
    squares are centred on the image centre, as in their code, not on the
    probed unit's centre (they differ by a few pixels for even sizes). As
    in their code, a 1x1 square is never tried, and ``None`` is returned for
    a threshold no such square reaches (their script would then fail).

    The ``log10(x + 1)`` step makes the numbers depend on the map's scale:
    RepLKNet's maps are ``relu(grad)`` summed over channels of the summed
    (ReLU'd) centre channels, averaged over 50 images, while
    :func:`effective_receptive_field` averages ``|grad|``; compare ratios of
    maps built the same way.

    Args:
        erf_map: (H, W) non-negative contribution map (``ERFResult.map``).
        thresholds: fractions ``t`` in (0, 1).

    Returns:
        ``{t: (side_px, area_ratio) or None}``.

    Example:
        >>> import numpy as np
        >>> m = np.zeros((9, 9)); m[3:6, 3:6] = 9.0   # all contribution in the central 3x3
        >>> high_contribution_area_ratio(m, thresholds=(0.5, 0.99))
        {0.5: (3, 0.1111111111111111), 0.99: (3, 0.1111111111111111)}

    Reference:
        Ding, Zhang, Han, Ding, "Scaling Up Your Kernels to 31x31: Revisiting
        Large Kernel Design in CNNs", CVPR 2022 (Sec. 5.2).
    """
    data = np.asarray(erf_map, np.float64)
    if data.ndim != 2:
        raise ValueError(f"Expected `erf_map` of shape (H, W). Received: erf_map with shape {data.shape}")
    if not np.isfinite(data).all() or data.min() < 0:
        raise ValueError(f"Expected `erf_map` finite and >= 0 (a contribution map). Received: minimum {data.min()}")
    thresholds = [float(t) for t in np.atleast_1d(thresholds)]
    if any(not 0.0 < t < 1.0 for t in thresholds):
        raise ValueError(f"Expected every threshold in (0, 1). Received: thresholds={thresholds}")
    if data.max() <= 0:
        raise ValueError("Expected an `erf_map` with some contribution. Received: an all-zero map")
    data = np.log10(data + 1.0)
    data = data / data.max()
    h, w = data.shape
    total = data.sum()
    out = {}
    for t in thresholds:
        out[t] = None
        for i in range(1, h // 2):
            inside = data[h // 2 - i : h // 2 + 1 + i, w // 2 - i : w // 2 + 1 + i].sum()
            if inside / total > t:
                side = 2 * i + 1
                out[t] = (side, side / h * side / w)
                break
    return out


def format_area_ratios(ratios: dict, shape) -> str:
    """A Markdown table of :func:`high_contribution_area_ratio`'s output for a map of ``shape`` (H, W)."""
    lines = ["| t | side (px) | area ratio (share of the image) |", "|---|---|---|"]
    for t, value in ratios.items():
        if value is None:
            lines.append(f"| {t:g} | - | - (no centred square up to {2 * (shape[0] // 2 - 1) + 1} px holds > t) |")
        else:
            lines.append(f"| {t:g} | {value[0]} | {value[1]:.4f} |")
    return "\n".join(lines)


def erf_summary_for(model_or_path_or_name, layer: str | None = None, num_samples: int = 16,
                    input_shape: Sequence[int] | None = None, thresholds=HIGH_CONTRIBUTION_THRESHOLDS,
                    seed: int = 0) -> str:
    """The ``keras-priors rf --erf`` text: ERF of the centre unit on random images, and RepLKNet's area ratios.

    Args:
        model_or_path_or_name: as :func:`~keras_priors.receptive_field.rf_table_for`.
        layer: the probed layer (default: the last spatial layer).
        num_samples: random images in [0, 1] averaged.
        input_shape: ``(H, W, C)`` (default: the model's own).
        thresholds: RepLKNet's ``t`` values.
        seed: seed of the random images.

    Example:
    >>> import keras
    >>> model = keras.Sequential([keras.Input((16, 16, 1))]
    ...                          + [keras.layers.Conv2D(2, 3, name=f"conv{i}") for i in (1, 2, 3)], name="tiny")
    >>> print(erf_summary_for(model, num_samples=4).splitlines()[0])  # doctest: +NORMALIZE_WHITESPACE
    Effective receptive field of tiny/conv3, unit (5, 5), 4 random images in [0, 1], 16x16 input
    (mean |d unit / d input|):
    """
    from keras_priors.receptive_field.theoretical import load_model_for_rf

    model = load_model_for_rf(model_or_path_or_name, input_shape)
    res = effective_receptive_field(model, layer, num_samples=num_samples, input_shape=input_shape, seed=seed)
    h, w = res.map.shape
    ratios = high_contribution_area_ratio(res.map, thresholds)
    return "\n".join([
        f"Effective receptive field of {model.name}/{res.layer}, unit {res.unit}, {res.num_samples} random images "
        f"in [0, 1], {h}x{w} input (mean |d unit / d input|):",
        f"- theoretical RF {res.receptive_field.size[0]} px; 50 % / 90 % of the gradient mass within "
        f"{res.radius_50_px:.1f} / {res.radius_90_px:.1f} px of the centre",
        "- high-contribution area ratio (RepLKNet, erf/analyze_erf.py): log10(map + 1) / max, smallest centred "
        "square holding > t of the total; lower = contribution more concentrated",
        "",
        format_area_ratios(ratios, (h, w)),
    ])


def _prepare_inputs(model, inputs, num_samples, input_shape, seed) -> np.ndarray:
    if inputs is None:
        shape = tuple(model.inputs[0].shape[1:])
        if input_shape is not None:
            shape = tuple(input_shape)
        if any(s is None for s in shape):
            raise ValueError(
                f"Model input has unknown sizes {shape}; pass input_shape=(H, W, C) or inputs=."
            )
        rng = np.random.default_rng(seed)
        return rng.uniform(0.0, 1.0, size=(num_samples,) + shape).astype("float32")
    if hasattr(inputs, "as_numpy_iterator") or (
        not isinstance(inputs, np.ndarray) and hasattr(inputs, "__iter__") and not hasattr(inputs, "shape")
    ):
        batches, n = [], 0
        for item in inputs:
            if isinstance(item, dict):
                item = item["image"]
            elif isinstance(item, (tuple, list)):
                item = item[0]
                if isinstance(item, dict):
                    item = item["image"]
            arr = np.asarray(item)
            if arr.ndim == len(model.inputs[0].shape) - 1:
                arr = arr[None]
            batches.append(arr)
            n += arr.shape[0]
            if n >= num_samples:
                break
        x = np.concatenate(batches, axis=0)
    else:
        x = np.asarray(keras.ops.convert_to_numpy(inputs))
    if x.ndim != len(model.inputs[0].shape):
        raise ValueError(
            f"Expected inputs of rank {len(model.inputs[0].shape)} (batch, H, W, C). "
            f"Received: inputs with shape {x.shape}"
        )
    return x[:num_samples].astype("float32")


def plot_erf(result: ERFResult, path: str, title: str | None = None) -> str:
    """Save a PNG of the ERF map with the theoretical receptive field box.

    Args:
        result: an `ERFResult`.
        path: where to write the PNG.
        title: optional title (default: layer, unit and radii).

    Returns:
        ``path``.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.patches import Rectangle
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plot_erf needs matplotlib: pip install matplotlib (or keras-priors[vis])."
        ) from e
    fig, ax = plt.subplots(figsize=(4, 4), dpi=100)
    ax.imshow(result.map, cmap="inferno", interpolation="nearest")
    y0, x0, y1, x1 = result.receptive_field.box(*result.unit)
    ax.add_patch(Rectangle((x0 - 0.5, y0 - 0.5), x1 - x0 + 1, y1 - y0 + 1, fill=False,
                           edgecolor="cyan", linewidth=1.5, label="theoretical RF"))
    ax.plot([result.center[1]], [result.center[0]], "c+")
    h, w = result.map.shape
    ax.set_xlim(-0.5, w - 0.5)
    ax.set_ylim(h - 0.5, -0.5)
    ax.set_title(title or f"ERF {result.layer} unit {result.unit}\n"
                 f"r50={result.radius_50:.2f}, r90={result.radius_90:.2f} of RF", fontsize=8)
    ax.legend(loc="lower right", fontsize=6)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return path
