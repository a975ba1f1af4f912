"""Theoretical receptive fields of Keras 3 functional models.

Walks the functional graph (nested models included) forward from one image
input and, for every layer output, computes per spatial axis the receptive
field size, the effective stride, the effective padding and the input
coordinate of the centre of output unit 0, following Araujo et al. 2019
("Computing receptive fields of convolutional neural networks", Distill) and
google-research/receptive_field:

    r_out = r_in + (k_eff - 1) * j_in          k_eff = (k - 1) * dilation + 1
    j_out = j_in * stride
    P_out = P_in + pad_left * j_in
    centre(i) = -P + i * j + (r - 1) / 2

Branches that meet at a merge layer must be *aligned* (same effective stride
and same centre); when they are, the merged receptive field is the largest of
the branches. Misaligned branches raise `ReceptiveFieldAlignmentError` (or are
flagged with ``on_misaligned="flag"``), never silently averaged.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from typing import Any, Sequence

import keras

from keras_priors._functional import functional_graph

__all__ = [
    "ReceptiveField",
    "ReceptiveFieldAlignmentError",
    "UnsupportedLayerError",
    "compute_receptive_fields",
    "format_table",
    "rf_table_for",
]


class ReceptiveFieldAlignmentError(ValueError):
    """Branches merged by a layer do not have the same effective stride or centre."""


class UnsupportedLayerError(ValueError):
    """A layer whose effect on the receptive field is not known."""


def _clean(v):
    """Ints stay ints; floats that are whole numbers become ints."""
    if v is None:
        return None
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


@dataclasses.dataclass(frozen=True)
class ReceptiveField:
    """Receptive field of one layer output, per spatial axis (H, W[, D] order).

    Attributes:
        name: layer name; nested models give ``"outer/inner"`` names.
        layer_type: class name of the layer.
        size: receptive field size in input pixels per axis (the whole input for
            global layers; ``None`` where the input size is unknown).
        stride: effective stride (input pixels between neighbouring units).
        padding: effective padding (how far unit 0's field starts before pixel 0);
            ``None`` when it depends on an input size that was not given.
        center_offset: input coordinate of the centre of unit (0, 0);
            ``None`` when the padding is unknown.
        output_size: spatial size of the layer output, ``None`` entries if unknown.
        is_global: True after global pooling / Flatten / Dense: every unit sees
            the whole input.
        exact: False when the numbers are a tight bound rather than exact
            (transposed convolutions and upsampling: fractional strides).
        aligned: False when branches merged into this output were misaligned
            (only with ``on_misaligned="flag"``).
        notes: human-readable caveats.
    """

    name: str
    layer_type: str
    size: tuple | None
    stride: tuple | None
    padding: tuple | None
    center_offset: tuple | None
    output_size: tuple | None = None
    is_global: bool = False
    exact: bool = True
    aligned: bool = True
    notes: tuple[str, ...] = ()

    @property
    def ndim(self) -> int:
        ref = self.size if self.size is not None else self.output_size
        return len(ref) if ref is not None else 0

    def center(self, *index: int) -> tuple:
        """Input coordinates of the centre of output unit ``index`` (e.g. ``center(i, j)``)."""
        if self.is_global:
            raise ValueError(f"Layer {self.name!r} is global: its units see the whole input.")
        if self.center_offset is None or any(c is None for c in self.center_offset):
            raise ValueError(
                f"The centre of layer {self.name!r} depends on the input size (TF 'same' "
                "padding with stride > 1); pass `input_shape=` to compute_receptive_fields."
            )
        if len(index) != len(self.stride):
            raise ValueError(
                f"Expected {len(self.stride)} indices for layer {self.name!r}. Received: index={index}"
            )
        return tuple(_clean(c + i * s) for c, i, s in zip(self.center_offset, index, self.stride))

    def box(self, *index: int) -> tuple:
        """Inclusive input box ``(start_0, .., end_0, ..)`` seen by unit ``index`` (may exceed the image)."""
        c = self.center(*index)
        starts = tuple(_clean(ci - (r - 1) / 2) for ci, r in zip(c, self.size))
        ends = tuple(_clean(ci + (r - 1) / 2) for ci, r in zip(c, self.size))
        return starts + ends


# --------------------------------------------------------------------------
# Internal per-tensor state
# --------------------------------------------------------------------------


@dataclasses.dataclass
class _State:
    r: list  # size per axis
    j: list  # effective stride per axis
    p: list  # effective padding per axis (None if unknown)
    n: list  # spatial size of this tensor per axis (None if unknown)
    in_size: list  # size of the model input per axis (None if unknown)
    is_global: bool = False
    exact: bool = True
    aligned: bool = True
    notes: tuple = ()

    def copy(self, **kw):
        d = dict(
            r=list(self.r), j=list(self.j), p=list(self.p), n=list(self.n),
            in_size=list(self.in_size), is_global=self.is_global, exact=self.exact,
            aligned=self.aligned, notes=tuple(self.notes),
        )
        d.update(kw)
        return _State(**d)

    def centre(self):
        return [None if p is None else (r - 1) / 2 - p for r, p in zip(self.r, self.p)]


_POINTWISE = {
    # normalisation / activation / regularisation / dtype: one output unit <- one input unit
    "InputLayer", "BatchNormalization", "LayerNormalization", "GroupNormalization",
    "UnitNormalization", "RMSNormalization", "Normalization", "Rescaling", "Activation",
    "ReLU", "LeakyReLU", "PReLU", "ELU", "Softmax", "Dropout", "SpatialDropout1D",
    "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise", "GaussianDropout",
    "AlphaDropout", "ActivityRegularization", "Identity", "Masking",
    # elementwise keras.ops used directly in a functional graph
    "Relu", "Relu6", "Sigmoid", "Tanh", "Gelu", "Silu", "Swish", "Softplus", "Elu", "Selu",
    "HardSigmoid", "HardSilu", "LeakyRelu", "Exp", "Log", "Sqrt", "Square", "Abs",
    "Negative", "Cast", "Clip", "Absolute",
}
_MERGE = {
    "Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum", "Concatenate",
    "Divide", "TrueDivide",
}
_GLOBAL = {
    "GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
    "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D", "Flatten",
}
_CONV = {
    "Conv1D", "Conv2D", "Conv3D", "DepthwiseConv1D", "DepthwiseConv2D",
    "SeparableConv1D", "SeparableConv2D",
}
_POOL = {
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D",
    "AveragePooling1D", "AveragePooling2D", "AveragePooling3D",
}
_CONV_T = {"Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"}


def _tuple(v, nd):
    if isinstance(v, int):
        return (v,) * nd
    return tuple(v)


def _spatial_axes(shape_len: int, data_format: str | None) -> list[int]:
    nd = shape_len - 2
    if data_format == "channels_first":
        return list(range(2, 2 + nd))
    return list(range(1, 1 + nd))


def _same_left_pad(n, k_eff, s):
    """Left padding of TF / XLA 'same' (None when it depends on an unknown n)."""
    if n is None:
        if s == 1 or k_eff == 1:
            return (k_eff - 1) // 2 if s == 1 else 0
        if s == 2 and k_eff % 2 == 0:
            return (k_eff - 2) // 2
        return None
    total = max((math.ceil(n / s) - 1) * s + k_eff - n, 0)
    return total // 2


def _layer_data_format(layer):
    return getattr(layer, "data_format", None) or keras.config.image_data_format()


def _shape_of(kt):
    return tuple(kt.shape)


def _apply_window(state: _State, ks, ss, pads, ns_out) -> _State:
    r, j, p = [], [], []
    for a in range(len(state.r)):
        r.append(state.r[a] + (ks[a] - 1) * state.j[a])
        j.append(state.j[a] * ss[a])
        p.append(None if (state.p[a] is None or pads[a] is None) else state.p[a] + pads[a] * state.j[a])
    return state.copy(r=r, j=j, p=p, n=list(ns_out))


def _apply_fractional(state: _State, ks, ss, pads, ns_out, note) -> _State:
    """Transposed conv (and upsampling as one): a tight bound with stride j/s."""
    r, j, p = [], [], []
    for a in range(len(state.r)):
        r.append(state.r[a] + state.j[a] * (ks[a] - 1) / ss[a])
        j.append(state.j[a] / ss[a])
        p.append(
            None if (state.p[a] is None or pads[a] is None)
            else state.p[a] + state.j[a] * (ks[a] - 1 - pads[a]) / ss[a]
        )
    notes = state.notes if note in state.notes else state.notes + (note,)
    return state.copy(r=r, j=j, p=p, n=list(ns_out), exact=False, notes=notes)


def _out_spatial(layer, in_kt_shape, state: _State, axes, out_kt):
    """Output spatial size: from the layer's compute_output_shape on the tracked input size."""
    full = list(in_kt_shape)
    for a, ax in enumerate(axes):
        full[ax] = state.n[a]
    try:
        out = layer.compute_output_shape(tuple(full))
        return [out[ax] for ax in axes]
    except Exception:  # noqa: BLE001 - fall back to the static graph shape
        shp = _shape_of(out_kt)
        return [shp[ax] for ax in axes]


def _global_state(state: _State) -> _State:
    return state.copy(r=list(state.in_size), j=[None] * len(state.r), p=[None] * len(state.r),
                      n=[1] * len(state.r), is_global=True)


def _merge(name, cls, states: list[_State], on_misaligned: str) -> _State:
    states = [s for s in states if s is not None]
    if len(states) == 1:
        return states[0].copy()
    if any(s.is_global for s in states):
        return _global_state(next(s for s in states if s.is_global))
    nd = len(states[0].r)
    best = states[0].copy()
    notes = list(best.notes)
    for s in states[1:]:
        for a in range(nd):
            problem = None
            if s.j[a] != best.j[a]:
                problem = f"effective strides {best.j[a]} vs {s.j[a]}"
            else:
                c0, c1 = best.centre()[a], s.centre()[a]
                if c0 is None or c1 is None:
                    note = f"{name}: alignment not checked (padding depends on the input size)"
                    if note not in notes:
                        notes.append(note)
                elif c0 != c1:
                    problem = f"centres of unit 0 at {_clean(c0)} vs {_clean(c1)}"
            if problem is not None:
                msg = (f"Layer {name!r} ({cls}) merges branches that are not aligned on spatial "
                       f"axis {a}: {problem}. Its receptive field is not a single box.")
                if on_misaligned == "raise":
                    raise ReceptiveFieldAlignmentError(msg)
                best.aligned = False
                if msg not in notes:
                    notes.append(msg)
            if s.r[a] > best.r[a]:
                best.r[a], best.j[a], best.p[a] = s.r[a], s.j[a], s.p[a]
        best.exact = best.exact and s.exact
        for nt in s.notes:
            if nt not in notes:
                notes.append(nt)
    best.notes = tuple(notes)
    return best


def _transfer(layer, node, in_states, name, on_misaligned):
    """RF state of a non-model layer's output, or raise UnsupportedLayerError."""
    cls = type(layer).__name__
    in_kts = node.input_tensors
    states = [in_states.get(id(t)) for t in in_kts]
    known = [s for s in states if s is not None]
    if not known:
        return None
    if cls in _MERGE:
        if cls == "Concatenate":
            rank = len(in_kts[0].shape)
            axis = layer.axis % rank
            spatial = _spatial_axes(rank, keras.config.image_data_format())
            if axis in spatial and not all(s is None or s.is_global for s in states):
                raise UnsupportedLayerError(
                    f"Layer {name!r} (Concatenate) joins feature maps along spatial axis {axis}; "
                    "units on either side of the seam see different places, so no single "
                    "receptive field describes the output."
                )
        return _merge(name, cls, states, on_misaligned)
    if len(known) != 1 or states[0] is None:
        raise UnsupportedLayerError(
            f"Layer {name!r} of type {cls} takes several inputs and is not a known merge "
            f"layer ({', '.join(sorted(_MERGE))}); its receptive field cannot be computed."
        )
    state = states[0]
    out_kt = node.output_tensors[0]
    if state.is_global:
        return state.copy()
    if cls in _POINTWISE:
        return state.copy()
    if cls in _GLOBAL:
        return _global_state(state)
    if cls == "Reshape":
        in_shape_r, out_shape_r = _shape_of(in_kts[0]), _shape_of(out_kt)
        sp = _spatial_axes(len(in_shape_r), keras.config.image_data_format())
        if len(out_shape_r) >= len(in_shape_r) and all(
            in_shape_r[ax] == out_shape_r[ax] for ax in sp
        ) and keras.config.image_data_format() == "channels_last":
            return state.copy()  # only the channel axis is reshaped
        raise UnsupportedLayerError(
            f"Layer {name!r} (Reshape) rearranges spatial positions {in_shape_r} -> "
            f"{out_shape_r}; its receptive field cannot be computed (use Flatten or global "
            "pooling to end the spatial chain)."
        )
    if cls == "Dense" or cls == "EinsumDense":
        if len(in_kts[0].shape) <= 2:
            return _global_state(state)
        if cls == "Dense":
            return state.copy()  # Dense on a feature map acts on channels only
    in_shape = _shape_of(in_kts[0])
    nd = len(state.r)
    fmt = _layer_data_format(layer)
    axes = _spatial_axes(len(in_shape), fmt)
    if len(axes) != nd:
        raise UnsupportedLayerError(
            f"Layer {name!r} of type {cls} changes the tensor rank ({nd} spatial axes "
            f"in, rank {len(in_shape)} tensor); its receptive field cannot be computed."
        )
    ns_out = _out_spatial(layer, in_shape, state, axes, out_kt)
    if cls in _CONV or cls in _POOL:
        if cls in _CONV:
            k = _tuple(layer.kernel_size, nd)
            d = _tuple(getattr(layer, "dilation_rate", 1), nd)
        else:
            k = _tuple(layer.pool_size, nd)
            d = (1,) * nd
        s = _tuple(layer.strides, nd)
        k_eff = [(ki - 1) * di + 1 for ki, di in zip(k, d)]
        padding = layer.padding.lower()
        if padding == "valid":
            pads = [0] * nd
        elif padding == "same":
            pads = [_same_left_pad(state.n[a], k_eff[a], s[a]) for a in range(nd)]
        elif padding == "causal":
            pads = [k_eff[a] - 1 for a in range(nd)]
        else:
            raise UnsupportedLayerError(f"Layer {name!r}: unknown padding {padding!r}.")
        new = _apply_window(state, k_eff, s, pads, ns_out)
        if any(pd is None for pd in pads):
            note = ("padding depends on the input size ('same' with stride > 1): pass "
                    "input_shape= for exact padding and centres")
            if note not in new.notes:
                new.notes = new.notes + (note,)
        return new
    if cls.startswith("ZeroPadding"):
        pad = layer.padding
        if nd == 1:
            pad = (tuple(pad),)
        lefts = [int(pp[0]) for pp in pad]
        return _apply_window(state, [1] * nd, [1] * nd, lefts, ns_out)
    if cls.startswith("Cropping"):
        crop = layer.cropping
        if nd == 1:
            crop = (tuple(crop),)
        lefts = [-int(cc[0]) for cc in crop]
        return _apply_window(state, [1] * nd, [1] * nd, lefts, ns_out)
    if cls.startswith("UpSampling"):
        u = _tuple(layer.size, nd)
        interp = getattr(layer, "interpolation", "nearest")
        if interp == "nearest":
            return _apply_fractional(state, u, u, [0] * nd, ns_out,
                                     "upsampling: stride < 1, size/centre are a tight bound")
        if interp == "bilinear":
            # output o samples input x=(o+0.5)/u-0.5 from floor(x) and floor(x)+1 -> [x-1, x+1]
            new = state.copy(n=list(ns_out), exact=False)
            new.r = [state.r[a] + 2 * state.j[a] for a in range(nd)]
            new.j = [state.j[a] / u[a] for a in range(nd)]
            new.p = [None if state.p[a] is None else state.p[a] + state.j[a] * (1.5 - 0.5 / u[a])
                     for a in range(nd)]
            note = "bilinear upsampling: size/centre are a bound"
            if note not in new.notes:
                new.notes = new.notes + (note,)
            return new
        raise UnsupportedLayerError(
            f"Layer {name!r} ({cls}) uses interpolation={interp!r}; only 'nearest' and "
            "'bilinear' are supported."
        )
    if cls in _CONV_T:
        k = _tuple(layer.kernel_size, nd)
        d = _tuple(getattr(layer, "dilation_rate", 1), nd)
        s = _tuple(layer.strides, nd)
        k_eff = [(ki - 1) * di + 1 for ki, di in zip(k, d)]
        if layer.padding.lower() == "same":
            pads = [max(k_eff[a] - s[a], 0) // 2 for a in range(nd)]
        else:
            pads = [0] * nd
        return _apply_fractional(state, k_eff, s, pads, ns_out,
                                 "transposed conv: stride < 1, size/centre are a tight bound")
    raise UnsupportedLayerError(
        f"Layer {name!r} of type {cls} is not supported by the receptive field computation "
        "(its effect on the spatial layout is unknown). Supported: convolutions, pooling, "
        "padding/cropping, upsampling, transposed convolutions, merges, pointwise layers, "
        "global pooling/Flatten/Dense, nested models."
    )


def _graph_of(model):
    graph = functional_graph(model)
    if graph is None:
        raise ValueError(
            f"Expected a functional or Sequential Keras model. Received: {type(model).__name__} "
            "(subclassed models have no graph to walk)."
        )
    return graph


def _walk(model, in_states: dict, prefix: str, out: dict, on_misaligned: str):
    """Propagate states through ``model``'s graph; fill ``out``; return states by tensor id."""
    graph = _graph_of(model)
    states = dict(in_states)
    seen_names: dict[str, int] = {}
    for depth in sorted(graph._nodes_by_depth.keys(), reverse=True):
        for node in graph._nodes_by_depth[depth]:
            layer = node.operation
            if node.is_input or type(layer).__name__ == "InputLayer":
                continue
            base = prefix + layer.name
            count = seen_names.get(base, 0)
            seen_names[base] = count + 1
            name = base if count == 0 else f"{base}@{count}"
            if isinstance(layer, keras.Model):
                inner = _graph_of(layer)
                inner_in = {}
                for outer_t, inner_t in zip(node.input_tensors, inner.inputs):
                    if id(outer_t) in states:
                        inner_in[id(inner_t)] = states[id(outer_t)]
                if not inner_in:
                    continue
                inner_states = _walk(layer, inner_in, name + "/", out, on_misaligned)
                for outer_t, inner_t in zip(node.output_tensors, keras.tree.flatten(inner.outputs)):
                    st = inner_states.get(id(inner_t))
                    if st is not None:
                        states[id(outer_t)] = st
                continue
            new = _transfer(layer, node, states, name, on_misaligned)
            if new is None:
                continue
            for t in node.output_tensors:
                states[id(t)] = new
            out[name] = _to_rf(name, type(layer).__name__, new)
    return states


def _to_rf(name, cls, st: _State) -> ReceptiveField:
    if st.is_global:
        size = None if any(v is None for v in st.in_size) else tuple(st.in_size)
        return ReceptiveField(name, cls, size, None, None, None, tuple(st.n), True,
                              st.exact, st.aligned, st.notes)
    pad = tuple(_clean(p) for p in st.p)
    centre = tuple(_clean(c) for c in st.centre())
    return ReceptiveField(
        name, cls, tuple(_clean(r) for r in st.r), tuple(_clean(j) for j in st.j),
        pad, centre, tuple(st.n), False, st.exact, st.aligned, st.notes,
    )


def compute_receptive_fields(
    model: keras.Model,
    input_shape: Sequence[int | None] | None = None,
    input_name: str | None = None,
    on_misaligned: str = "raise",
) -> dict[str, ReceptiveField]:
    """Theoretical receptive field of every layer output of a functional model.

    Args:
        model: a functional or Sequential Keras 3 model; nested models (e.g. a
            ``keras.applications`` backbone inside a classifier) are walked too
            and their layers are reported as ``"backbone/conv1"``.
        input_shape: spatial size of the input, ``(H, W)`` or ``(H, W, C)``
            (without batch). Needed for exact padding and centres where TF
            'same' padding with stride > 1 depends on the input size; defaults to
            the model's static input shape.
        input_name: which model input is the image (default: the first input
            with spatial axes).
        on_misaligned: ``"raise"`` (default) raises
            `ReceptiveFieldAlignmentError` when a merge combines branches with
            different strides or centres; ``"flag"`` keeps the largest branch
            and marks the result ``aligned=False``.

    Returns:
        ``dict`` from layer name to `ReceptiveField`, in graph order.

    Example:
    >>> import keras
    >>> x = keras.Input((32, 32, 3))
    >>> y = keras.layers.Conv2D(4, 3, strides=2)(x)
    >>> rfs = compute_receptive_fields(keras.Model(x, y))
    >>> rfs[list(rfs)[-1]].size
    (3, 3)

    Reference:
        Araujo, Norris, Sim, "Computing Receptive Fields of Convolutional
        Neural Networks", Distill 2019.
    """
    from keras_priors.validation import check_one_of

    check_one_of("on_misaligned", on_misaligned, {"raise", "flag"}, owner="compute_receptive_fields")
    graph = _graph_of(model)
    inputs = list(graph.inputs)
    if input_name is not None:
        names = [getattr(t, "name", "") for t in inputs]
        matches = [t for t, n in zip(inputs, names) if n == input_name or n.split(":")[0] == input_name]
        if not matches:
            raise ValueError(f"Expected input_name to be one of {names}. Received: input_name={input_name!r}")
        image_input = matches[0]
    else:
        spatial = [t for t in inputs if len(t.shape) >= 3]
        if not spatial:
            raise ValueError(
                f"Model {model.name!r} has no input with spatial axes (input shapes: "
                f"{[tuple(t.shape) for t in inputs]}); receptive fields need an image-like input."
            )
        image_input = spatial[0]
    shape = tuple(image_input.shape)
    fmt = keras.config.image_data_format()
    axes = _spatial_axes(len(shape), fmt)
    nd = len(axes)
    if input_shape is not None:
        input_shape = tuple(input_shape)
        if len(input_shape) == nd:
            n = list(input_shape)
        elif len(input_shape) == nd + 1:
            n = [input_shape[ax - 1] for ax in axes]
        else:
            raise ValueError(
                f"Expected input_shape with {nd} spatial sizes (optionally plus channels). "
                f"Received: input_shape={input_shape}"
            )
        static = [shape[ax] for ax in axes]
        for a, (given, st) in enumerate(zip(n, static)):
            if st is not None and given is not None and given != st:
                raise ValueError(
                    f"input_shape disagrees with the model's input on spatial axis {a}: "
                    f"model has {st}. Received: input_shape={input_shape}"
                )
    else:
        n = [shape[ax] for ax in axes]
    state0 = _State(r=[1] * nd, j=[1] * nd, p=[0] * nd, n=list(n), in_size=list(n))
    out: dict[str, ReceptiveField] = {}
    _walk(model, {id(image_input): state0}, "", out, on_misaligned)
    if not any(not rf.is_global for rf in out.values()):
        raise ValueError(
            f"Model {model.name!r} has no spatial layer on the path from its input "
            f"{getattr(image_input, 'name', '')!r}: no receptive field to report."
        )
    return out


def _fmt(v) -> str:
    if v is None:
        return "?"
    vals = [_clean(x) for x in v]
    vals = ["?" if x is None else (f"{x:g}" if isinstance(x, float) else str(x)) for x in vals]
    if len(set(vals)) == 1:
        return vals[0]
    return "x".join(vals)


def format_table(rfs: dict[str, ReceptiveField], spatial_only: bool = False) -> str:
    """Readable Markdown table of receptive fields (one row per layer output).

    Args:
        rfs: the result of `compute_receptive_fields`.
        spatial_only: skip rows whose receptive field did not change from the
            previous row (pointwise layers) to keep long tables short.

    Returns:
        The table as a string.
    """
    header = "| layer | type | output | RF size | stride | padding | centre of unit 0 | notes |"
    lines = [header, "|---|---|---|---|---|---|---|---|"]
    prev = None
    for name, rf in rfs.items():
        key = (rf.size, rf.stride, rf.padding, rf.is_global)
        if spatial_only and key == prev:
            continue
        prev = key
        flags = []
        if rf.is_global:
            flags.append("global (whole input)")
        if not rf.exact:
            flags.append("bound")
        if not rf.aligned:
            flags.append("MISALIGNED")
        if rf.padding is not None and any(p is None for p in rf.padding):
            flags.append("needs input size")
        if rf.is_global:
            stride = padding = centre = "-"
        else:
            stride, padding, centre = _fmt(rf.stride), _fmt(rf.padding), _fmt(rf.center_offset)
        lines.append(
            f"| {name} | {rf.layer_type} | {_fmt(rf.output_size)} | {_fmt(rf.size)} | "
            f"{stride} | {padding} | {centre} | {', '.join(flags)} |"
        )
    return "\n".join(lines)


def _application_names() -> dict[str, Any]:
    apps = {}
    for attr in dir(keras.applications):
        obj = getattr(keras.applications, attr)
        if callable(obj) and attr[:1].isupper():
            apps[attr.lower()] = obj
    return apps


def load_model_for_rf(model_or_path_or_name, input_shape=None) -> keras.Model:
    """A model from a model, a ``.keras``/``.h5`` path, a zoo name or a ``keras.applications`` name.

    Zoo entries give their backbone; applications are built offline with
    ``weights=None, include_top=False``.
    """
    obj = model_or_path_or_name
    if isinstance(obj, keras.Model):
        return obj
    if not isinstance(obj, str):
        raise TypeError(
            "Expected a keras.Model, a path to a .keras/.h5 file or a keras.applications "
            f"name. Received: {type(obj).__name__}"
        )
    if obj.endswith((".keras", ".h5", ".hdf5")):
        return keras.saving.load_model(obj, compile=False)
    zoo_names: list = []
    try:  # a keras_priors.zoo entry: its backbone, built without weights
        from keras_priors.zoo import get_spec, list_models

        zoo_names = list_models()
        if obj in zoo_names:
            spec = get_spec(obj)
            shape = tuple(input_shape) if input_shape is not None else tuple(spec.default_input_shape)
            if len(shape) == 2:
                shape = shape + (3,)
            return spec.builder(shape, weights=None, name=obj)
    except ImportError:  # pragma: no cover - zoo is optional here
        pass
    apps = _application_names()
    key = obj.lower().replace("keras.applications.", "")
    if key not in apps:
        close = difflib.get_close_matches(key, list(apps), n=5, cutoff=0.5)
        close += difflib.get_close_matches(obj, zoo_names, n=3, cutoff=0.5)
        raise ValueError(
            f"Unknown model {obj!r}. Expected a zoo name ({', '.join(zoo_names)}), a keras.applications "
            f"name (e.g. ResNet50) or a .keras/.h5 file. Closest names: "
            f"{[apps[c].__name__ if c in apps else c for c in close] or 'none'}."
        )
    kwargs: dict[str, Any] = {"weights": None, "include_top": False}
    if input_shape is not None:
        shape = tuple(input_shape)
        if len(shape) == 2:
            shape = shape + (3,)
        kwargs["input_shape"] = shape
    return apps[key](**kwargs)


def rf_table_for(model_or_path_or_name, input_shape: Sequence[int] | None = None,
                 spatial_only: bool = True, on_misaligned: str = "flag") -> str:
    """Receptive field table for a model, a saved model path or a keras.applications name.

    Args:
        model_or_path_or_name: a ``keras.Model``, a ``.keras`` path, a
            ``keras_priors.zoo`` name (its backbone, e.g. ``"resnet_tiny"``) or a
            keras.applications name like ``"ResNet50"`` (built offline with
            ``weights=None``).
        input_shape: optional input size ``(H, W)`` or ``(H, W, C)``.
        spatial_only: drop rows of layers that do not change the receptive field.
        on_misaligned: ``"flag"`` (default: misaligned merges are marked
            MISALIGNED in the table) or ``"raise"``.

    Returns:
        A Markdown table (see `format_table`) headed by the model name.

    Example:
    ``rf_table_for("VGG16", input_shape=(224, 224, 3))`` builds VGG16 (no
    download) and tables its layers; the same for three 3x3 convolutions:

    >>> import keras
    >>> model = keras.Sequential([keras.Input((16, 16, 1))]
    ...                          + [keras.layers.Conv2D(2, 3, name=f"conv{i}") for i in (1, 2, 3)], name="tiny")
    >>> print(rf_table_for(model))
    Receptive fields of tiny
    <BLANKLINE>
    | layer | type | output | RF size | stride | padding | centre of unit 0 | notes |
    |---|---|---|---|---|---|---|---|
    | conv1 | Conv2D | 14 | 3 | 1 | 0 | 1 |  |
    | conv2 | Conv2D | 12 | 5 | 1 | 0 | 2 |  |
    | conv3 | Conv2D | 10 | 7 | 1 | 0 | 3 |  |
    """
    model = load_model_for_rf(model_or_path_or_name, input_shape)
    rfs = compute_receptive_fields(model, input_shape=input_shape, on_misaligned=on_misaligned)
    return f"Receptive fields of {model.name}\n\n" + format_table(rfs, spatial_only=spatial_only)
