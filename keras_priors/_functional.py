"""The Functional graph behind a Keras model, for the code that walks it (explainers, receptive fields)."""

from __future__ import annotations

import keras


def functional_graph(model):
    """The Functional graph of ``model``: a functional model itself, a Sequential's inner one, else None.

    None means there is no graph to walk (a subclassed model, a plain layer);
    each caller says what it needed it for.

    Raises:
        ValueError: for a Sequential model that is not built yet (it has no graph).

    Example:
        >>> import keras
        >>> model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
        >>> functional_graph(model).layers[-1] is model.layers[-1], functional_graph(keras.layers.Dense(2))
        (True, None)
    """
    if isinstance(model, keras.Sequential):
        fn = getattr(model, "_functional", None)
        if fn is None:
            raise ValueError(
                f"Expected a built Sequential model (give it a keras.Input or an input_shape). "
                f"Received: model={model.name!r}, which is not built."
            )
        return fn
    if isinstance(model, keras.Model) and hasattr(model, "_nodes_by_depth") and getattr(model, "_outputs", None):
        return model
    return None
