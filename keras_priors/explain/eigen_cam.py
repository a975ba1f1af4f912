"""EigenCAM: the feature map projected on its first principal component, no gradients, no class."""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_priors.explain import _compile
from keras_priors.explain._compile import fused
from keras_priors.explain.base_cam import BaseCAM, explainer_docstring


@explainer_docstring
class EigenCAM(BaseCAM):
    """EigenCAM: ``relu((A - mean A) v_1)``, ``v_1`` the first right singular vector of the centred map.

    Each image's feature map, as an ``(h w, K)`` matrix of cells by channels,
    is centred (each channel's spatial mean subtracted, as pytorch-grad-cam's
    ``get_2d_projection`` does: without it the first component is mostly the
    mean) and projected on its first principal direction ``v_1`` (first row of
    ``V^T`` in its SVD, computed as the top eigenvector of the smaller Gram
    matrix by :func:`top_eigenpair`). No gradients and no class: the map is
    the same for every target (``targets`` are accepted and ignored).

    The sign of a singular vector is arbitrary (pytorch-grad-cam keeps
    whatever LAPACK returns, so the same activations can give the inverted
    map, whose relu keeps the background). Here it is fixed as scikit-learn's
    PCA fixes it (``svd_flip``): the projection's value of largest magnitude
    is positive (at an exact tie, the positive one), i.e. the cell furthest
    from the mean along ``v_1`` is the peak of the map. This makes the map
    the same on every backend.

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
        return self.projection(activations)[0]

    def projection(self, activations, power_only: bool = False):
        """``(map (B, h, w) before the relu, certified)`` from a feature map ``(B, h, w, K)``, with ``keras.ops``.

        By default the eigenvector comes from :func:`top_eigenpair` and
        ``certified`` is True. With ``power_only``, from its certified power
        iteration alone, without the ``eigh`` fallback, and ``certified`` says
        whether the power iteration was certified for the whole batch; where
        it is not, the map must be computed again by default.

        >>> import keras, numpy as np
        >>> inp = keras.Input((2, 2, 1))
        >>> feat = keras.layers.Activation("linear", name="feat")(inp)
        >>> model = keras.Model(inp, keras.layers.Dense(2)(keras.layers.Flatten()(feat)))
        >>> cells = np.array([[[[0.0], [1.0]], [[2.0], [5.0]]]], "float32")  # one channel: v_1 = [1]
        >>> cam, certified = EigenCAM(model, layer="feat").projection(cells, power_only=True)
        >>> keras.ops.convert_to_numpy(cam).tolist(), bool(certified)   # the centred cells, peak positive
        ([[[-2.0, -1.0], [0.0, 3.0]]], True)
        """
        acts = ops.cast(ops.convert_to_tensor(activations), "float32")
        h, w, k = (int(d) for d in acts.shape[1:])
        flat = ops.reshape(acts, (-1, h * w, k))
        flat = flat - ops.mean(flat, axis=1, keepdims=True)
        # The first right singular vector of X is the top eigenvector of X^T X (K x K); when there are fewer
        # cells than channels, X v_1 = s_1 u_1 comes from X X^T (hw x hw) instead.
        small = k <= h * w
        gram = ops.einsum("bnk,bnm->bkm", flat, flat) if small else ops.einsum("bnk,bmk->bnm", flat, flat)
        if power_only:  # the power iteration reads G as it is (symmetric up to rounding): no eigh here
            value, vec, certified = fused(_certified_power_iteration)(gram)
        else:
            (value, vec), certified = top_eigenpair(gram), True
        if small:
            proj = ops.einsum("bnk,bk->bn", flat, vec)  # (B, h w)
        else:
            proj = vec * ops.sqrt(ops.maximum(value, 0.0))[:, None]
        # Largest magnitude negative: flip (two reductions; an argmax and a gather cost twice as much on JAX).
        proj = proj * ops.where(-ops.min(proj, axis=1) > ops.max(proj, axis=1), -1.0, 1.0)[:, None]
        return ops.reshape(proj, (-1, h, w)), certified

    # The conditional before eigh costs, inside a compiled function, a third of the power iteration it guards (on
    # XLA CPU, JAX, 16 images of 64 channels: 0.12 ms against 0.3 ms), though eigh almost never runs. So the
    # compiled map runs the power iteration alone and returns the feature map with it; a batch the power iteration
    # does not certify is mapped again from those features, by the whole top_eigenpair. No forward pass is repeated.
    def compiled_maps(self, images, targets) -> np.ndarray:
        fn = self.compiled_function("maps", images.shape[1:3], self._build_maps_fn, self.images_signature(images))
        maps, certified, feats = fn(ops.convert_to_tensor(images))
        if not bool(ops.convert_to_numpy(certified)):
            exact = self.compiled_function("maps_from_features", images.shape[1:3], self._build_exact_fn,
                                           [((None,) + tuple(feats.shape[1:]), "float32")])
            maps = exact(feats)
        return np.asarray(ops.convert_to_numpy(maps), np.float32)

    def _build_maps_fn(self, size):
        def maps_fn(x):  # no targets: the map is class-agnostic
            feats = ops.cast(self.runner.features(x), "float32")
            cam, certified = self.projection(feats, power_only=True)
            return self.maps_tensor(cam, size), certified, feats

        return maps_fn

    def _build_exact_fn(self, size):
        def exact_fn(feats):
            return self.maps_tensor(self.projection(feats)[0], size)

        return exact_fn


#: Power steps ``v <- M v`` in each stage of :func:`top_eigenpair`, after taking ``M``'s largest column.
_STEPS = 12
#: Largest angle (radians) between the returned vector and the true ``v_1`` that the power iteration may answer with.
_ANGLE = 1e-4
_TINY = 1e-30


def top_eigenpair(gram):
    """``(lambda_1 (B,), v_1 (B, n))`` of a batch of symmetric PSD matrices ``(B, n, n)``, the sign of ``v_1`` free.

    Power iteration, certified per image, in two stages, with ``eigh`` as
    the last resort. The first stage takes ``M = (G / trace G)^2``, its
    largest column as ``v``, then ``v <- M v`` twelve times (``G^26`` in
    all); where that is not certified for the whole batch, the second
    squares ``M`` twice more (``M = (G / trace G)^8``) and starts again
    (``G^104``). ``v`` is kept when, for every image of the batch, the angle
    to the true ``v_1`` is provably at most 1e-4 (in exact arithmetic). With
    ``M = G^(p/2) / c`` rescaled to trace 1:

    * ``trace(M^2) = |M|_F^2`` and ``mu = |M v|^2 <= lambda_1(M)^2``, so
      ``(lambda_2 / lambda_1)^p <= (trace(M^2) - mu) / mu``: a bound ``q`` on
      ``lambda_2 / lambda_1`` at the cost of ``n^2``, sharper with each
      squaring when many eigenvalues follow the first two;
    * ``lambda_1^p <= trace(G^p) = c^2 trace(M^2)``, with ``log c`` carried
      through the rescalings;
    * with ``rho = v^T G v`` and the residual ``r = |G v - rho v|``, Davis-Kahan
      gives ``sin(angle) <= r / (rho - lambda_2) <= r / (rho - q lambda_1)``,
      which must be at most 1e-4.

    The first stage (``p = 4``) certifies spectra with ``lambda_2`` up to
    about ``0.7 lambda_1`` (the benchmark's conv nets at random
    initialisation: resnet_tiny 0.29 to 0.43, the 3-conv model 0.57 to 0.64
    on JAX); the second (``p = 16``) up to about 0.9 (the 3-conv model on
    TensorFlow, 0.85 to 0.87; 0.89 with 62 more eigenvalues up to
    ``0.7 lambda_1``). Otherwise (a near-degenerate top eigenvalue, or an
    all-zero matrix) the whole batch takes ``eigh``. Run op by op (torch),
    the first stage costs nearly what the second does, so the iteration
    starts at the second. For 16 ``64 x 64`` matrices on 2 shared CPU cores,
    ``lambda_2 = 0.6`` / ``0.89 lambda_1``, power iteration against
    ``eigh``: JAX (``jax.jit``) 0.36 / 0.60 ms against 2.1 ms; TensorFlow
    0.62 / 1.09 ms against 1.8 ms, the iteration as one XLA cluster
    (:func:`keras_priors.explain._compile.fused`; every op dispatched apart,
    it costs as much as ``eigh``); torch 1.3 ms against 2.2 ms.

    >>> import numpy as np
    >>> g = np.diag(np.array([[1.0, 4.0, 2.0]], "float32")[0])[None]
    >>> value, vec = top_eigenpair(g)
    >>> round(float(value[0]), 4), np.round(np.abs(np.asarray(vec[0])), 4).tolist()
    (4.0, [0.0, 1.0, 0.0])
    """
    gram = ops.cast(ops.convert_to_tensor(gram), "float32")
    gram = (gram + ops.transpose(gram, (0, 2, 1))) * 0.5
    rho, vec, certified = fused(_certified_power_iteration)(gram)

    def exact():
        values, vectors = ops.eigh(gram)
        return values[:, -1], vectors[:, :, -1]

    return ops.cond(certified, lambda: (rho, vec), exact)


def _certified_power_iteration(gram):
    """``(rho, v, certified)``: both stages, see :func:`top_eigenpair`."""
    m, log_c = _first_power(gram)

    def second():
        # G^8 = c^4 M^4 = c^4 trace(M^4) M', with M' of trace 1.
        m4, log_trace4 = _squared(m, 2)
        return _power_stage(gram, m4, 4.0 * log_c + log_trace4, 16)

    if not _compile.can_compile():
        # Run op by op (torch), the first stage costs nearly what the second does (1.2 against 1.3 ms), so a
        # spectrum the first does not certify would pay for both: go to the second directly.
        return second()
    first = _power_stage(gram, m, log_c, 4)
    return ops.cond(first[2], lambda: first, second)


def _first_power(gram):
    """``(M, log c)`` with ``G^2 = c M`` and ``trace M = 1``: ``c = s^2 trace((G / s)^2)``, ``s = trace G``.

    ``M``'s eigenvalues lie in ``[0, 1]`` and its largest is at least ``1/n``, so neither the certificate's squares
    nor the second stage's two squarings (largest eigenvalue at least ``n^-4`` before it is rescaled to trace 1)
    underflow float32 for any ``n`` that fits in memory.
    """
    scale = ops.maximum(_trace(gram), _TINY)
    m, log_trace = _squared(gram / scale[:, None, None], 1)
    return m, 2.0 * ops.log(scale) + log_trace


def _trace(m):
    """Batched trace. ``ops.trace`` on JAX costs as much as a 64 x 64 matrix product (0.13 ms for 16 of them on 2 CPU
    cores, against 0.02 ms for the diagonal's sum)."""
    return ops.sum(ops.diagonal(m, axis1=1, axis2=2), axis=1)


def _squared(m, times):
    """``(m^(2^times) / t, log t)``, ``t`` its trace: rescaled so that its eigenvalues stay within float32's range."""
    for _ in range(times):
        m = ops.matmul(m, m)
    t = ops.maximum(_trace(m), _TINY)
    return m / t[:, None, None], ops.log(t)


def _power_stage(gram, m, log_c, power):
    """Power iteration on ``M = G^(power / 2) / c`` (trace 1) and its certificate: ``(rho, v, certified)``."""
    squares = ops.sum(m * m, axis=1)  # columns' squared norms
    vec = ops.take_along_axis(m, ops.argmax(squares, axis=1)[:, None, None], axis=2)[:, :, 0]
    for _ in range(_STEPS):
        vec = ops.einsum("bij,bj->bi", m, vec)
        vec = vec / ops.maximum(ops.norm(vec, axis=1, keepdims=True), _TINY)
    mv = ops.einsum("bij,bj->bi", m, vec)
    mu = ops.sum(mv * mv, axis=1)  # v^T M^2 v <= lambda_1(M)^2
    total = ops.maximum(ops.sum(squares, axis=1), _TINY)  # trace(M^2) = sum_i lambda_i(M)^2
    ratio = ops.maximum(total - mu, 0.0) / ops.maximum(mu, _TINY)  # >= sum_{i >= 2} (lambda_i / lambda_1)^power
    q = ops.exp(ops.log(ops.maximum(ratio, _TINY)) / power)  # >= lambda_2 / lambda_1 (ops.power is slower on JAX)
    upper = ops.exp((2.0 * log_c + ops.log(total)) / power)  # lambda_1^power <= trace(G^power) = c^2 trace(M^2)
    gv = ops.einsum("bij,bj->bi", gram, vec)
    rho = ops.sum(vec * gv, axis=1)
    residual = ops.norm(gv - rho[:, None] * vec, axis=1)
    gap = rho - q * upper  # <= rho - lambda_2
    certified = ops.all((gap > 0) & (residual <= _ANGLE * gap))
    return rho, vec, certified
