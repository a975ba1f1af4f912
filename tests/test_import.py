"""``import keras_priors`` is lazy (no TensorFlow) and still lets Keras reload our saved models."""

import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_python(code, **extra_env):
    env = {**os.environ, "PYTHONPATH": REPO, "KERAS_BACKEND": "tensorflow", **extra_env}
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_import_keras_priors_does_not_import_tensorflow_or_keras():
    out = run_python("import sys, keras_priors; print(keras_priors.__file__); "
                     "print(sorted(m for m in ('tensorflow', 'keras', 'jax') if m in sys.modules))")
    path, loaded = out.splitlines()
    assert path == os.path.join(REPO, "keras_priors", "__init__.py")  # this checkout, not an installed copy
    assert loaded == "[]"


def test_subpackages_load_on_first_use():
    import keras_priors as kp

    assert kp.priors.CAMSuppression.__name__ == "CAMSuppression"
    assert callable(kp.zoo.build)
    assert {"zoo", "priors", "layers", "explain"} <= set(dir(kp))
    with pytest.raises(AttributeError, match="has no attribute 'nosuch'"):
        kp.nosuch


@pytest.mark.parametrize("first", ["import keras_priors; import keras",
                                   "import keras; import keras_priors",
                                   "import keras_priors; import keras_priors.data; import keras"])
def test_keras_file_reloads_after_a_plain_import(tmp_path, first):
    """Our classes register when Keras is imported, whichever comes first: no custom_objects needed."""
    from keras_priors import priors, zoo

    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                      priors=[priors.CAMSuppression(), priors.MaskDecoder(levels=2, filters=8)])
    path = str(tmp_path / "m.keras")
    model.save(path)
    out = run_python(f"{first}\nm = keras.saving.load_model({path!r})\n"
                     "print(type(m).__name__, [type(p).__name__ for p in m.priors])")
    assert out.splitlines()[-1] == "PriorModel ['CAMSuppression', 'MaskDecoder']"
