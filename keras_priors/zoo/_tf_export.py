"""Export from a backend that cannot write a format itself, through a TensorFlow child process.

Keras writes a SavedModel from TensorFlow or JAX, and LiteRT from TensorFlow
only; from torch it would need torch_xla (SavedModel) or litert-torch
(LiteRT), and LiteRT from JAX goes through TensorFlow anyway. The weights and
architecture of a Keras 3 model do not depend on the backend (a ``.keras``
archive written on torch loads on TensorFlow), so :func:`export_through_tensorflow`
saves the model to a ``.keras`` archive in a private folder beside the
destination, loads it in a child Python process with ``KERAS_BACKEND=tensorflow``
(``safe_mode=True``, on the CPU: the parent may hold the accelerator) and exports
it there with the same ``PriorModel.export``. The parent
then moves the finished export into place with the same file rules as a native
export (never a user's file deleted, never a half-written export left).

Run as ``python -m keras_priors.zoo._tf_export MODEL.keras OUT FORMAT MODULES_JSON``
(what the parent does): the modules are imported first, so that the classes
of the user's own priors and layers are registered before the model loads.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile

def _modules_of(model) -> dict[str, str | None]:
    """``{module: its file or None}`` for every registered class the model's config names outside Keras.

    Importing them registers the classes (keras_priors', keras_hub's, a user's
    priors and layers) before the child deserializes the model.

    The file lets the child load a module that is not importable by name
    (pytest's ``importlib`` import mode imports test modules that way).
    """
    import keras

    found = set()

    def walk(node):
        if isinstance(node, dict):
            module = node.get("module")
            if isinstance(module, str) and node.get("registered_name") and module.split(".")[0] != "keras":
                found.add(module)
            for value in node.values():
                walk(value)
        elif isinstance(node, (list, tuple)):
            for value in node:
                walk(value)

    walk(keras.saving.serialize_keras_object(model))
    found.add(type(model).__module__)
    return {name: getattr(sys.modules.get(name), "__file__", None) for name in sorted(found)}


def check_can_export(model, format: str, backend: str, needs) -> dict[str, str | None]:
    """The modules the child must import; raise before any work if the child could not load or write the model.

    ``needs``: the packages the child imports to write ``format`` on TensorFlow.
    """
    missing = [m for m in needs if importlib.util.find_spec(m) is None]
    if missing:
        raise ImportError(
            f"Exporting format={format!r} from the {backend} backend writes it in a TensorFlow process, which "
            f"needs the package(s) {', '.join(missing)}: pip install \"keras-priors[export]\"")
    modules = _modules_of(model)
    if "__main__" in modules:
        raise ValueError(
            f"Expected the model's priors and layers to be defined in importable modules to export "
            f"format={format!r} from the {backend} backend (it is written by a TensorFlow process that loads "
            f"the model). Received: classes defined in __main__; move them into a module and import them "
            f"from there.")
    return modules


def export_through_tensorflow(model, workdir: str, format: str, modules: dict, backend: str, verbose: bool) -> str:
    """Write ``model`` in ``format`` to ``workdir/export`` from a TensorFlow child process; return that path."""
    keras_path = os.path.join(workdir, "model.keras")
    model.save(keras_path)
    out = os.path.join(workdir, "export" + {"onnx": ".onnx", "litert": ".tflite"}.get(format, ""))
    env = dict(os.environ, KERAS_BACKEND="tensorflow", TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="")
    # The parent's import path, so that the child finds the same modules (the user's, keras_priors itself).
    path = [p for p in sys.path if p and os.path.isdir(p)]
    env["PYTHONPATH"] = os.pathsep.join(path + [env["PYTHONPATH"]] if env.get("PYTHONPATH") else path)
    if verbose:
        print(f"Writing format={format!r} in a TensorFlow process (the {backend} backend cannot write it "
              f"itself)...", flush=True)
    result = subprocess.run([sys.executable, "-m", __name__, keras_path, out, format, json.dumps(modules)],
                            env=env, capture_output=True, text=True)
    if result.returncode != 0 or not os.path.lexists(out):
        tail = "\n".join((result.stderr or result.stdout or "").strip().splitlines()[-15:])
        raise RuntimeError(f"Exporting format={format!r} through TensorFlow failed (exit status "
                           f"{result.returncode}); nothing was written. The TensorFlow process said:\n{tail}")
    return out


def main(argv) -> int:
    keras_path, out, format, modules = argv[0], argv[1], argv[2], json.loads(argv[3])
    for name, file in modules.items():
        _import(name, file)
    import keras

    import keras_priors.zoo  # noqa: F401  (registers PriorModel and the priors)

    if keras.backend.backend() != "tensorflow":
        raise RuntimeError(f"Expected KERAS_BACKEND=tensorflow in the export process. Received: "
                           f"{keras.backend.backend()!r}")
    model = keras.saving.load_model(keras_path, safe_mode=True)
    model.export(out, format=format, verbose=False)  # TensorFlow writes every format in process
    return 0


def _import(name: str, file: str | None) -> None:
    """Import module ``name``; if it is not importable by name, load it from ``file`` under that name."""
    try:
        importlib.import_module(name)
        return
    except ModuleNotFoundError:
        if not file:
            raise
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)


def make_workdir(filepath: str) -> str:
    """A private folder beside ``filepath`` (same file system: the final rename is atomic)."""
    parent = os.path.dirname(filepath)
    os.makedirs(parent, exist_ok=True)
    return tempfile.mkdtemp(prefix=".export-", dir=parent)


def remove_workdir(workdir: str) -> None:
    shutil.rmtree(workdir, ignore_errors=True)  # our own private folder only


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
