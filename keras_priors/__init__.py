"""keras-priors: put what you already know about images into Keras 3 classifiers."""

__version__ = "0.1.0.dev0"

from keras_priors import data  # noqa: F401
