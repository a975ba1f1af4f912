"""The graph runner evaluates only what an explainer asks for, also inside a nested model on the path."""
import keras
import numpy as np
import pytest

from keras_priors.explain import GradCAM
from keras_priors.explain._graph import GraphRunner


class _Counted(keras.layers.Layer):
    """Identity that counts its eager calls."""

    calls = 0

    def call(self, x):
        type(self).calls += 1
        return x


def _nested_model():
    # A backbone with two outputs, as the zoo's pyramids have: its stem's output and the late feature map;
    # the head reads only the late one.
    inp = keras.Input((8, 8, 3))
    stem = _Counted(name="stem")(keras.layers.Conv2D(4, 3, padding="same", name="stem_conv")(inp))
    late = keras.layers.Conv2D(6, 3, padding="same", activation="relu", name="late")(stem)
    backbone = keras.Model(inp, [stem, late], name="backbone")
    x = keras.Input((8, 8, 3))
    _, feats = backbone(x)
    logits = keras.layers.Dense(3, name="logits")(keras.layers.GlobalAveragePooling2D()(feats))
    return keras.Model(x, logits)


@pytest.mark.parity
def test_logits_from_given_features_compute_nothing_upstream_in_a_nested_model():
    model = _nested_model()
    runner = GraphRunner(model, ["backbone", "late"])
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 3)).astype("float32")
    feats = runner.features(x)
    _Counted.calls = 0
    logits = runner.logits_from_features(x, feats)
    assert _Counted.calls == 0  # the backbone's other output (its stem) was not recomputed
    np.testing.assert_allclose(keras.ops.convert_to_numpy(logits), keras.ops.convert_to_numpy(model(x)), atol=1e-5)
    _Counted.calls = 0
    runner.logits(x)  # the whole way from the image: the stem once
    assert _Counted.calls == 1


@pytest.mark.parity
def test_eager_grad_cam_on_a_nested_model_runs_the_stem_once():
    model = _nested_model()
    x = np.random.default_rng(1).uniform(size=(2, 8, 8, 3)).astype("float32")
    explainer = GradCAM(model, layer="backbone/late", run_eagerly=True)
    _Counted.calls = 0
    maps = explainer(x, targets=[0, 2])
    assert _Counted.calls == 1 and maps.shape == (2, 8, 8)
