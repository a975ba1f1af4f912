"""AuxiliaryHead: an extra classification head on shared features, plus label exclusion."""

from __future__ import annotations

import keras
from keras import ops

from keras_priors.api_export import keras_priors_export
from keras_priors.layers._utils import check_rank
from keras_priors.validation import check_fraction, check_positive_int


@keras_priors_export("keras_priors.layers.AuxiliaryHead")
class AuxiliaryHead(keras.layers.Layer):
    """An auxiliary classification head (e.g. fine-grained labels) on shared features.

    Global average pooling when the features are a ``(B, h, w, C)`` map, an
    optional hidden ``Dense`` + dropout, then a ``Dense`` to ``num_classes``
    logits. Pair it with ``exclude_from_auxiliary`` and
    ``keras.losses.SparseCategoricalCrossentropy(from_logits=True, ignore_class=-1)``
    to remove the primary class from the auxiliary task.

    Args:
        num_classes: number of auxiliary classes.
        hidden_units: ``None`` or the width of a hidden ``Dense`` layer.
        dropout: dropout rate before the output layer (training only).
        activation: activation of the hidden layer.
        kernel_initializer: initializer of the dense kernels.
        **kwargs: base layer arguments.

    Call arguments:
        features: ``(B, C)`` vectors or ``(B, h, w, C)`` maps.
        training: whether dropout is active.

    Returns:
        ``(B, num_classes)`` logits.

    Example:

    >>> import numpy as np
    >>> head = AuxiliaryHead(num_classes=5, hidden_units=16)
    >>> tuple(head(np.ones((2, 4, 4, 8), "float32")).shape)
    (2, 5)

    Reference:
        Liebel and Korner, "Auxiliary Tasks in Multi-task Learning", 2018;
        Liu et al., "Self-Supervised Generalisation with Meta Auxiliary
        Learning" (MAXL), NeurIPS 2019.
    """

    def __init__(
        self,
        num_classes: int,
        hidden_units: int | None = None,
        dropout: float = 0.0,
        activation="relu",
        kernel_initializer="glorot_uniform",
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.num_classes = check_positive_int("num_classes", num_classes, "AuxiliaryHead")
        self.hidden_units = (
            None if hidden_units is None else check_positive_int("hidden_units", hidden_units, "AuxiliaryHead")
        )
        self.dropout = check_fraction("dropout", dropout, "AuxiliaryHead")
        if self.dropout >= 1.0:
            raise ValueError(f"AuxiliaryHead: Expected `dropout` in [0, 1). Received: dropout={dropout!r}")
        self.activation = keras.activations.get(activation)
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        # === Layers ===
        init = lambda: keras.initializers.get(keras.initializers.serialize(self.kernel_initializer))  # noqa: E731
        self.hidden = (
            keras.layers.Dense(
                self.hidden_units, activation=self.activation, kernel_initializer=init(),
                dtype=self.dtype_policy, name="hidden",
            )
            if self.hidden_units is not None
            else None
        )
        self.dropout_layer = keras.layers.Dropout(self.dropout) if self.dropout > 0 else None
        self.classifier = keras.layers.Dense(
            self.num_classes, kernel_initializer=init(), dtype=self.dtype_policy, name="aux_logits"
        )

    def build(self, input_shape):
        check_rank("features", input_shape, (2, 4), "AuxiliaryHead")
        shape = (input_shape[0], input_shape[-1])
        if self.hidden is not None:
            self.hidden.build(shape)
            shape = (input_shape[0], self.hidden_units)
        self.classifier.build(shape)

    def call(self, features, training=None):
        x = features
        if len(x.shape) == 4:
            x = ops.mean(x, axis=(1, 2))
        if self.hidden is not None:
            x = self.hidden(x)
        if self.dropout_layer is not None:
            x = self.dropout_layer(x, training=training)
        return self.classifier(x)

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "num_classes": self.num_classes,
                "hidden_units": self.hidden_units,
                "dropout": self.dropout,
                "activation": keras.activations.serialize(self.activation),
                "kernel_initializer": keras.initializers.serialize(self.kernel_initializer),
            }
        )
        return config


@keras_priors_export("keras_priors.layers.exclude_from_auxiliary")
def exclude_from_auxiliary(aux_labels, primary_labels, exclude_classes, ignore_value: int = -1):
    """Relabel the samples of excluded primary classes to ``ignore_value``.

    With ``keras.losses.SparseCategoricalCrossentropy(from_logits=True,
    ignore_class=ignore_value)`` those samples then contribute no loss and no
    gradient to the auxiliary head: e.g. kakapo images take no part in the
    "which other bird species" task.

    Args:
        aux_labels: ``(B,)`` integer auxiliary labels.
        primary_labels: ``(B,)`` integer primary labels.
        exclude_classes: primary classes whose samples leave the auxiliary task.
        ignore_value: label given to those samples.

    Returns:
        ``(B,)`` auxiliary labels, ``ignore_value`` where excluded (int32).

    Example:

    >>> import numpy as np
    >>> labels = exclude_from_auxiliary(np.array([0, 3, 2]), np.array([0, 1, 1]), [0])
    >>> np.asarray(labels).tolist()
    [-1, 3, 2]
    """
    if isinstance(exclude_classes, int):
        exclude_classes = [exclude_classes]
    exclude_classes = list(exclude_classes)
    aux = ops.cast(aux_labels, "int32")
    primary = ops.cast(primary_labels, "int32")
    if not exclude_classes:
        return aux
    # Broadcast comparison rather than ops.isin, which fails inside a tf.function.
    classes = ops.convert_to_tensor(exclude_classes, "int32")
    excluded = ops.any(ops.equal(ops.expand_dims(primary, -1), classes), axis=-1)
    return ops.where(excluded, ops.cast(ignore_value, "int32"), aux)
