"""One decorator that both exports a public symbol and registers it with Keras.

In the spirit of keras-hub's ``keras_hub_export``: every public layer, loss and
metric is decorated with ``@keras_priors_export("keras_priors.layers.Name")``
so that a saved ``.keras`` file reloads without ``custom_objects``.
"""

from __future__ import annotations

import keras

PACKAGE = "keras_priors"
#: Priors register under their own package: several share a class name with a loss or layer
#: (``keras_priors>CAMSuppression`` is the loss).
PRIORS_PACKAGE = "keras_priors.priors"

#: Every symbol exported so far, by its public path.
REGISTRY: dict[str, object] = {}


def keras_priors_export(path: str):
    """Register ``symbol`` for Keras serialization under ``keras_priors>Name``.

    Priors (``keras_priors.priors.*``) register under ``keras_priors.priors>Name``.

    Args:
        path: the public dotted path, e.g. ``"keras_priors.layers.ClassActivationMap"``.
    """
    package = PRIORS_PACKAGE if path.startswith(PRIORS_PACKAGE + ".") else PACKAGE

    def decorator(symbol):
        REGISTRY[path] = symbol
        if isinstance(symbol, type):
            keras.saving.register_keras_serializable(package=package)(symbol)
        return symbol

    return decorator
