"""EigenCAM: the feature map projected on its first principal component, no gradients, no class."""

from __future__ import annotations

from keras import ops

from keras_priors.explain.base_cam import BaseCAM


class EigenCAM(BaseCAM):
    """EigenCAM: ``relu((A - mean A) v_1)``, ``v_1`` the first right singular vector of the centred map.

    Each image's feature map, as an ``(h w, K)`` matrix of cells by channels,
    is centred (each channel's spatial mean subtracted, as pytorch-grad-cam's
    ``get_2d_projection`` does: without it the first component is mostly the
    mean) and projected on its first principal direction ``v_1`` (first row of
    ``V^T`` in its SVD). No gradients and no class: the map is the same for
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
        run_eagerly: run op by op instead of one compiled function (see :class:`BaseCAM`).
        jit_compile: TensorFlow only: compile with XLA.

    Example:
        >>> import keras, numpy as np
        >>> model = keras.Sequential([
        ...     keras.Input((16, 16, 3)),
        ...     keras.layers.Conv2D(8, 3, padding="same", activation="relu", name="conv3"),
        ...     keras.layers.GlobalAveragePooling2D(),
        ...     keras.layers.Dense(2),
        ... ])
        >>> images = np.random.default_rng(0).random((2, 16, 16, 3)).astype("float32")
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
        shape = ops.shape(acts)
        h, w, k = shape[1], shape[2], shape[3]
        flat = ops.reshape(acts, (-1, h * w, k))
        flat = flat - ops.mean(flat, axis=1, keepdims=True)
        _, _, vh = ops.svd(flat, full_matrices=False)
        proj = ops.einsum("bnk,bk->bn", flat, vh[:, 0, :])  # (B, h w)
        peak = ops.take_along_axis(proj, ops.expand_dims(ops.argmax(ops.abs(proj), axis=1), -1), axis=1)
        proj = proj * ops.where(peak < 0, -1.0, 1.0)
        return ops.reshape(proj, (-1, h, w))
