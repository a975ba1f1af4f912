"""EigenCAM: the feature map projected on its first principal component, no gradients, no class."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.explain.base_cam import BaseCAM, explainer_docstring


@explainer_docstring
class EigenCAM(BaseCAM):
    """EigenCAM: ``relu((A - mean A) v_1)``, ``v_1`` the first right singular vector of the centred map.

    Each image's feature map, as an ``(h w, K)`` matrix of cells by channels,
    is centred (each channel's spatial mean subtracted, as pytorch-grad-cam's
    ``get_2d_projection`` does: without it the first component is mostly the
    mean) and projected on its first principal direction ``v_1`` (first row of
    ``V^T`` in its SVD, computed as the top eigenvector of the smaller Gram
    matrix: on JAX by :func:`top_eigenpair`, elsewhere by ``eigh``). No gradients and no class: the map is the same for
    every target (``targets`` are accepted and ignored).

    The sign of a singular vector is arbitrary (pytorch-grad-cam keeps
    whatever LAPACK returns, so the same activations can give the inverted
    map, whose relu keeps the background). Here it is fixed as scikit-learn's
    PCA fixes it (``svd_flip``): the projection's value of largest magnitude
    is positive, i.e. the cell furthest from the mean along ``v_1`` is the
    peak of the map. This makes the map the same on every backend.

    Args:
        model: a functional/Sequential Keras classifier.
        layer: None (last 4D layer), a name, an ``"outer/inner"`` path, or a Layer.
        output: which model output (index or name); None = "logits" or the
            first (used only to pick the default layer).
        {compile_args}

    Example:
        {example_model}
        >>> maps = EigenCAM(model)(images)
        >>> bool(np.allclose(maps, EigenCAM(model)(images, targets=1)))   # class-agnostic
        True

    Reference:
        Muhammad & Yeasin, "Eigen-CAM: Class Activation Map using Principal
        Components", IJCNN 2020.
    """

    def __init__(self, model, layer=None, output=None, run_eagerly: bool = False, jit_compile: bool = False):
        super().__init__(model, layer=layer, output=output, use_logits=True, run_eagerly=run_eagerly,
                         jit_compile=jit_compile)

    def cache_config(self):
        """Nothing besides the model, layer and output changes the compiled functions."""
        return ()

    def get_cam_image(self, images, targets, activations, grads):
        acts = ops.cast(ops.convert_to_tensor(activations), "float32")
        h, w, k = (int(d) for d in acts.shape[1:])
        flat = ops.reshape(acts, (-1, h * w, k))
        flat = flat - ops.mean(flat, axis=1, keepdims=True)
        # The first right singular vector of X is the top eigenvector of X^T X (K x K); when there are fewer
        # cells than channels, X v_1 = s_1 u_1 comes from X X^T (hw x hw) instead.
        top = top_eigenpair if keras.backend.backend() == "jax" else _top_eigenpair_by_eigh
        if k <= h * w:
            _, vec = top(ops.einsum("bnk,bnm->bkm", flat, flat))
            proj = ops.einsum("bnk,bk->bn", flat, vec)  # (B, h w)
        else:
            value, vec = top(ops.einsum("bnk,bmk->bnm", flat, flat))
            proj = vec * ops.sqrt(ops.maximum(value, 0.0))[:, None]
        peak = ops.take_along_axis(proj, ops.expand_dims(ops.argmax(ops.abs(proj), axis=1), -1), axis=1)
        proj = proj * ops.where(peak < 0, -1.0, 1.0)
        return ops.reshape(proj, (-1, h, w))


def _top_eigenpair_by_eigh(gram):
    """``(lambda_1, v_1)`` from one batched ``eigh``: faster than :func:`top_eigenpair` where every op is
    dispatched apart (TF graphs without XLA, torch eager; ``explain_speed.py``, TF, 2 CPU cores: EigenCAM /
    Grad-CAM 1.32 with it, 1.52 with the power iteration)."""
    values, vectors = ops.eigh(gram)
    return values[:, -1], vectors[:, :, -1]


#: Squarings in :func:`top_eigenpair`: ``M = G^8``.
_SQUARINGS = 3
#: Power steps ``v <- M v`` after taking ``M``'s largest column.
_STEPS = 6


def top_eigenpair(gram):
    """``(lambda_1 (B,), v_1 (B, n))`` of a batch of symmetric PSD matrices ``(B, n, n)``, the sign of ``v_1`` free.

    Power iteration, certified per image, with ``eigh`` as the fallback; what
    EigenCAM uses on JAX, where XLA fuses its few matmuls (on TF and torch,
    whose ops run one by one, one batched ``eigh`` is faster).
    ``M = (G / trace G)^8`` by three squarings; ``v`` is ``M``'s largest
    column, then ``v <- M v`` six times. ``v`` is kept when, for every image of
    the batch, (1) ``trace(M) - v^T M v <= 0.5 v^T M v``: the other eigenvalues'
    ``sum (lambda_i / lambda_1)^8 <= 0.5``, so ``lambda_2 <= 0.917 lambda_1``
    and the gap is at least ``0.083 lambda_1``; and (2) the residual
    ``|G v - rho v| <= 8e-6 rho`` (``rho = v^T G v``), so the angle to the true
    ``v_1`` is at most ``8e-6 rho / gap <= 1e-4`` (Davis-Kahan). Otherwise (a
    near-degenerate top eigenvalue, as for random activations) the whole batch
    takes ``eigh``. Under ``jax.jit`` on CPU it costs a fraction of a batched
    ``eigh`` (2 shared cores, ``(16, 64, 64)``: 1.4 ms against 7.1 ms).

    >>> import numpy as np
    >>> g = np.diag(np.array([[1.0, 4.0, 2.0]], "float32")[0])[None]
    >>> value, vec = top_eigenpair(g)
    >>> round(float(value[0]), 4), np.round(np.abs(np.asarray(vec[0])), 4).tolist()
    (4.0, [0.0, 1.0, 0.0])
    """
    gram = ops.cast(ops.convert_to_tensor(gram), "float32")
    gram = (gram + ops.transpose(gram, (0, 2, 1))) * 0.5
    tiny = 1e-30
    # Scaled by the trace (>= lambda_1): the eigenvalues of M lie in [0, 1], and lambda_1 / trace >= 1 / n keeps
    # lambda_1(M) >= n^-8, far from float32's underflow for any n up to thousands.
    m = gram / ops.maximum(ops.trace(gram, axis1=1, axis2=2), tiny)[:, None, None]
    for _ in range(_SQUARINGS):
        m = ops.matmul(m, m)
    column = ops.argmax(ops.sum(m * m, axis=1), axis=1)
    vec = ops.take_along_axis(m, column[:, None, None], axis=2)[:, :, 0]
    for _ in range(_STEPS):
        vec = ops.einsum("bij,bj->bi", m, vec)
        vec = vec / ops.maximum(ops.norm(vec, axis=1, keepdims=True), tiny)
    mu = ops.einsum("bi,bij,bj->b", vec, m, vec)
    others = ops.trace(m, axis1=1, axis2=2) - mu
    gv = ops.einsum("bij,bj->bi", gram, vec)
    rho = ops.sum(vec * gv, axis=1)
    residual = ops.norm(gv - rho[:, None] * vec, axis=1)
    certified = ops.all((others <= 0.5 * mu) & (residual <= 8e-6 * rho) & (rho > 0))

    def power():
        return rho, vec

    def exact():
        values, vectors = ops.eigh(gram)
        return values[:, -1], vectors[:, :, -1]

    return ops.cond(certified, power, exact)
