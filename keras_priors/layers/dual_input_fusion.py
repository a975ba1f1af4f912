"""DualInputFusion: late fusion of two feature vectors or maps (concat, sum or gated)."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.layers._utils import check_list_of_two
from keras_priors.validation import check_one_of, check_positive_int, renamed_arguments

FUSIONS = ("concat", "sum", "gated")


@keras_priors_export("keras_priors.layers.DualInputFusion")
class DualInputFusion(keras.layers.Layer):
    """Fuse two feature tensors late, e.g. the whole-image and the part-crop streams.

    Fusions (on the last axis; leading axes must match):

    - ``"concat"``: ``concat([a, b])``.
    - ``"sum"``: ``a + b``.
    - ``"gated"``: ``g * a + (1 - g) * b`` with a learned per-feature gate
      ``g = sigmoid(Dense(concat([a, b])))``.

    ``sum`` and ``gated`` need ``a`` and ``b`` of the same width; otherwise set
    ``projection_dim`` and both are first projected (a ``Dense`` each) to that
    width. With ``projection_dim`` set, ``concat`` also projects first.

    Args:
        fusion: ``"concat"``, ``"sum"`` or ``"gated"``, as ``DualInput(fusion=)``
            and ``DualStream(fusion=)`` call it. (``mode`` before 0.2: still
            accepted, with a ``DeprecationWarning``; saved configs with it load.)
        projection_dim: ``None`` or the width both inputs are projected to.
        kernel_initializer: initializer of the projection and gate kernels.
        **kwargs: base layer arguments.

    Call arguments:
        inputs: ``[a, b]``, two tensors ``(B, Da)`` and ``(B, Db)`` (or maps
            ``(B, h, w, Da)`` and ``(B, h, w, Db)``).

    Returns:
        ``(..., Da + Db)`` for concat, ``(..., D)`` otherwise.

    Example:

    >>> import numpy as np
    >>> fusion = DualInputFusion(fusion="gated")
    >>> tuple(fusion([np.ones((2, 8), "float32"), np.zeros((2, 8), "float32")]).shape)
    (2, 8)
    """

    @renamed_arguments(mode="fusion")
    def __init__(
        self,
        fusion: str = "concat",
        projection_dim: int | None = None,
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.fusion = check_one_of("fusion", fusion, FUSIONS, "DualInputFusion")
        self.projection_dim = (
            None if projection_dim is None else check_positive_int("projection_dim", projection_dim, "DualInputFusion")
        )
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.projection_a = None
        self.projection_b = None
        self.gate = None

    def _dense(self, units, name, activation=None):
        return keras.layers.Dense(
            units,
            activation=activation,
            kernel_initializer=keras.initializers.get(keras.initializers.serialize(self.kernel_initializer)),
            dtype=self.dtype_policy,
            name=name,
        )

    def build(self, input_shape):
        check_list_of_two("inputs", input_shape, "DualInputFusion")
        shape_a, shape_b = (tuple(s) for s in input_shape)
        if len(shape_a) != len(shape_b) or len(shape_a) < 2:
            raise ValueError(
                "DualInputFusion: Expected both inputs to have the same rank >= 2. "
                f"Received: shapes {shape_a} and {shape_b}"
            )
        for i, (x, y) in enumerate(zip(shape_a[1:-1], shape_b[1:-1])):
            if x is not None and y is not None and x != y:
                raise ValueError(
                    "DualInputFusion: Expected both inputs to match on every axis but the last. "
                    f"Received: shapes {shape_a} and {shape_b}"
                )
        da, db = shape_a[-1], shape_b[-1]
        if self.projection_dim is not None:
            self.projection_a = self._dense(self.projection_dim, "projection_a")
            self.projection_a.build(shape_a)
            self.projection_b = self._dense(self.projection_dim, "projection_b")
            self.projection_b.build(shape_b)
            da = db = self.projection_dim
        elif self.fusion != "concat" and da != db:
            raise ValueError(
                f"DualInputFusion: fusion={self.fusion!r} needs inputs of equal width, or set `projection_dim`. "
                f"Received: widths {da} and {db} (shapes {shape_a} and {shape_b})"
            )
        if self.fusion == "gated":
            self.gate = self._dense(da, "gate", activation="sigmoid")
            self.gate.build(shape_a[:-1] + (da + db,))

    def call(self, inputs):
        a, b = inputs
        if self.projection_a is not None:
            a = self.projection_a(a)
            b = self.projection_b(b)
        if self.fusion == "concat":
            return ops.concatenate([a, b], axis=-1)
        if self.fusion == "sum":
            return a + b
        g = self.gate(ops.concatenate([a, b], axis=-1))
        return g * a + (1.0 - g) * b

    def compute_output_shape(self, input_shape):
        shape_a, shape_b = (tuple(s) for s in input_shape)
        if self.projection_dim is not None:
            da = db = self.projection_dim
        else:
            da, db = shape_a[-1], shape_b[-1]
        if self.fusion == "concat":
            width = None if da is None or db is None else da + db
        else:
            width = da
        return shape_a[:-1] + (width,)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "fusion": self.fusion,
                "projection_dim": self.projection_dim,
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config
