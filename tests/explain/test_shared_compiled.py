"""Explainers of the same model share their compiled functions, and the model can still be freed."""

import gc
import os
import weakref

import keras
import numpy as np
import pytest
from explain._models import flat_model, images, nested_model

from keras_priors.explain import EXPLAINERS, AblationCAM, GradCAM, GradCAMPlusPlus, ScoreCAM, get_explainer
from keras_priors.explain._compile import SHARED_ATTR
from keras_priors.explain._compile import can_compile

# On torch explainers run eagerly (no compiled function to cache or share).
COMPILED_ONLY = pytest.mark.skipif(not can_compile(), reason="explainers are not compiled on this backend")
#: The registered explainers that share compiled functions (L-CAM's read its own trained attention).
SHARING = {name: cls for name, cls in EXPLAINERS.items() if name != "lcam"}


@pytest.fixture
def count_traces(monkeypatch):
    """Counts calls of GradCAM.get_cam_weights: compiled, it runs only while a function is traced."""
    calls = []
    original = GradCAM.get_cam_weights

    def counting(self, *args):
        calls.append(1)
        return original(self, *args)

    monkeypatch.setattr(GradCAM, "get_cam_weights", counting)
    return calls


@pytest.mark.parity
@COMPILED_ONLY
def test_a_new_explainer_of_the_same_model_does_not_trace_again(count_traces):
    model = flat_model()
    x = images(4)
    first = GradCAM(model)(x)
    assert len(count_traces) == 1
    for _ in range(5):  # one explainer per call, as the CLI does
        np.testing.assert_allclose(get_explainer("gradcam")(model)(x), first, atol=1e-6)
    assert len(count_traces) == 1
    # Run eagerly, every call computes (the count checks that it counts).
    GradCAM(model, run_eagerly=True)(x)
    assert len(count_traces) == 2


def test_shared_only_between_equal_configurations():
    model = nested_model()
    same = [GradCAM(model)._compiled, GradCAM(model, layer=None)._compiled]
    assert same[0] is same[1]
    others = [
        GradCAM(model, layer="backbone/feat")._compiled,
        GradCAM(model, use_logits=False)._compiled,
        GradCAM(model, jit_compile=True)._compiled,
        GradCAMPlusPlus(model, alpha_normalization="none")._compiled,
        *(cls(model)._compiled for name, cls in SHARING.items() if name != "gradcam"),  # every other method
        GradCAM(nested_model())._compiled,  # another model
    ]
    ids = [id(d) for d in [same[0]] + others]
    assert len(set(ids)) == len(ids)
    assert ScoreCAM(model, batch_size=3, max_n=2)._compiled is ScoreCAM(model)._compiled  # act outside the functions
    assert AblationCAM(model, batch_size=3)._compiled is AblationCAM(model)._compiled
    for cls in SHARING.values():
        assert cls(model)._compiled is cls(model)._compiled


def test_a_subclass_that_does_not_declare_its_configuration_compiles_per_instance():
    class Scaled(GradCAM):
        def __init__(self, model, power, **kw):
            self.power = power
            super().__init__(model, **kw)

        def get_cam_weights(self, images, targets, activations, grads):
            return keras.ops.mean(grads, axis=(1, 2)) ** self.power

    model = flat_model()
    x = images(3)
    a, b = Scaled(model, 1), Scaled(model, 2)
    assert a._compiled is not b._compiled
    np.testing.assert_allclose(a(x, 0), GradCAM(model)(x, 0), atol=1e-6)  # power 1: Grad-CAM
    np.testing.assert_allclose(b(x, 0), Scaled(model, 2, run_eagerly=True)(x, 0), atol=1e-5)


@pytest.mark.parity
def test_the_model_is_freed_with_its_explainers():
    model = flat_model()
    x = images(2)
    small_batches = {"scorecam": {"batch_size": 2}, "ablationcam": {"batch_size": 3}}
    for name, cls in SHARING.items():
        cls(model, **small_batches.get(name, {}))(x)
    assert SHARED_ATTR in vars(model)
    ref = weakref.ref(model)
    del model
    gc.collect()
    assert ref() is None


@pytest.mark.skipif(keras.backend.backend() != "tensorflow", reason="exports with TensorFlow")
def test_saving_a_model_after_explaining_it_leaves_the_cache_behind(tmp_path):
    model = flat_model()
    x = images(2)
    before = keras.ops.convert_to_numpy(model(x))
    GradCAM(model)(x)
    ScoreCAM(model)(x)
    path = os.path.join(tmp_path, "m.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert SHARED_ATTR not in vars(loaded)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), before, atol=1e-6)
    model.export(os.path.join(tmp_path, "saved"))  # the compiled functions are not traced into the SavedModel
    import tensorflow as tf

    saved = tf.saved_model.load(os.path.join(tmp_path, "saved"))  # kept: serve needs its variables alive
    np.testing.assert_allclose(np.asarray(saved.serve(x)), before, atol=1e-6)


@pytest.mark.parity
@COMPILED_ONLY
def test_repeated_explainers_do_not_pile_up_device_arrays(count_traces):
    model = flat_model()
    x = images(4)
    GradCAM(model)(x)
    gc.collect()
    if keras.backend.backend() == "jax":
        import jax

        live = len(jax.live_arrays())
    for _ in range(30):
        GradCAM(model)(x)
    gc.collect()
    assert len(count_traces) == 1  # one trace, whatever the number of explainers
    if keras.backend.backend() == "jax":
        assert len(jax.live_arrays()) <= live + 2  # nothing kept per explainer
