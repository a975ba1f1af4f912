"""keras-priors: put what you already know about images into Keras 3 classifiers.

Sub-packages: ``data``, ``layers``, ``losses``, ``metrics``, ``priors``, ``zoo``,
``callbacks``, ``explain``, ``receptive_field``, ``maxl``, and ``experiment``
(plain vs priors on the same budget: ``kp.experiment.run``).

``import keras_priors`` is cheap: it imports neither Keras nor TensorFlow. A
sub-package is imported on first use (``keras_priors.zoo.build``,
``from keras_priors import priors``). Our Keras classes register themselves for
``.keras`` deserialization when their modules are imported; so that
``keras.saving.load_model`` finds them after a plain ``import keras_priors``,
every sub-package is imported as soon as Keras is (Keras' import pays for
TensorFlow or JAX anyway).
"""

from __future__ import annotations

import importlib
import sys

__version__ = "0.1.0.dev0"

_SUBPACKAGES = ("callbacks", "data", "experiment", "explain", "layers", "losses", "maxl", "metrics", "priors",
                "receptive_field", "zoo")

__all__ = ["__version__", *_SUBPACKAGES]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"{__name__}.{name}")  # the import also sets it as an attribute
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_SUBPACKAGES))


def register_keras_objects() -> None:
    """Import every sub-package, which registers all our Keras classes for deserialization."""
    for name in _SUBPACKAGES:
        importlib.import_module(f"{__name__}.{name}")


# === Registration once Keras is imported ===
# A finder wraps the loaders of ``keras`` and of our own modules. When ``keras``
# has executed we register, unless one of our modules is still executing (it
# imported Keras): then we register when the outermost of them is done, so that
# no module is imported while another is half-initialised.
_depth = 0
_pending = False


def _register_now_or_later():
    global _pending
    if _depth > 0:
        _pending = True
        return
    _pending = False
    _remove_hook()
    register_keras_objects()


class _WrappedLoader:
    def __init__(self, loader, is_keras):
        self._loader = loader
        self._is_keras = is_keras

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        global _depth
        if self._is_keras:
            self._loader.exec_module(module)
            _register_now_or_later()
            return
        _depth += 1
        try:
            self._loader.exec_module(module)
        finally:
            _depth -= 1
        if _depth == 0 and _pending:
            _register_now_or_later()

    def __getattr__(self, name):  # is_package, get_resource_reader, ... of the real loader
        return getattr(self._loader, name)


class _RegisterWhenKerasIsImported:
    """A ``sys.meta_path`` finder for ``keras`` and ``keras_priors.*``; removed once we have registered."""

    def find_spec(self, fullname, path=None, target=None):
        is_keras = fullname == "keras"
        if not is_keras and not fullname.startswith(__name__ + "."):
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _WrappedLoader(spec.loader, is_keras)
                return spec
        return None


def _remove_hook():
    sys.meta_path[:] = [f for f in sys.meta_path if not isinstance(f, _RegisterWhenKerasIsImported)]


if "keras" in sys.modules:
    register_keras_objects()
elif not any(isinstance(f, _RegisterWhenKerasIsImported) for f in sys.meta_path):
    sys.meta_path.insert(0, _RegisterWhenKerasIsImported())
