"""keras-priors: put what you already know about images into Keras 3 classifiers.

Sub-packages: ``data``, ``layers``, ``losses``, ``metrics``, ``priors``, ``zoo``,
``callbacks``, ``explain``, ``receptive_field``.
"""

__version__ = "0.1.0.dev0"

from keras_priors import callbacks, data, explain, layers, losses, maxl, metrics, priors, receptive_field, zoo  # noqa: F401,E402
