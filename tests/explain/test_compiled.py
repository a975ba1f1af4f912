"""The compiled explainers (tf.function / jax.jit) give the eager results, to 1e-5."""

import keras
import numpy as np
import pytest
from explain._models import flat_model, images, nested_model

from keras_priors.explain import CAM, EXPLAINERS, LCAM, GradCAM, GradCAMPlusPlus, ScoreCAM, get_explainer
from keras_priors.explain._compile import can_compile

# On torch explainers run eagerly (no compiled function to cache or share).
COMPILED_ONLY = pytest.mark.skipif(not can_compile(), reason="explainers are not compiled on this backend")


def both(make, x, targets):
    compiled = make(run_eagerly=False)(x, targets)
    eager = make(run_eagerly=True)(x, targets)
    assert compiled.shape == eager.shape == x.shape[:3] and compiled.dtype == np.float32
    return compiled, eager


#: The inner feature layer of either test model, for a case's ``layer=INNER``.
INNER = "the inner feature layer"

#: Case -> (explainer name in ``EXPLAINERS``, its arguments). L-CAM, trained first, has its own test below.
MAKERS = {
    "cam": ("cam", {}),
    "gradcam": ("gradcam", {}),
    "gradcam_inner": ("gradcam", {"layer": INNER}),
    "gradcam++": ("gradcam++", {}),
    "gradcam++_inner": ("gradcam++", {"layer": INNER}),
    "scorecam": ("scorecam", {"batch_size": 3}),
    "scorecam_max_n": ("scorecam", {"batch_size": 4, "max_n": 2}),
    "layercam_inner": ("layercam", {"layer": INNER}),
    "hirescam_inner": ("hirescam", {"layer": INNER}),
    "xgradcam": ("xgradcam", {}),
    "eigencam": ("eigencam", {}),
    "ablationcam": ("ablationcam", {"batch_size": 5}),
    "ablationcam_inner": ("ablationcam", {"layer": INNER, "batch_size": 5}),
}


def make_case(case, model, **kwargs):
    name, args = MAKERS[case]
    if args.get("layer") == INNER:
        args = {**args, "layer": "backbone/feat" if model.name == "nested" else "feat"}
    return get_explainer(name)(model, **args, **kwargs)


def test_every_registered_explainer_has_a_case():
    assert {name for name, _ in MAKERS.values()} == set(EXPLAINERS) - {"lcam"}


# The nested model's inner layer is the "Graph disconnected" case of tf-keras-vis; on JAX (parity) a
# subset runs, every method once, to keep the JAX run short (each case compiles its own functions).
PARITY = {("nested", "cam"), ("nested", "gradcam_inner"), ("nested", "gradcam++_inner"), ("flat", "gradcam"),
          ("nested", "scorecam_max_n"), ("flat", "scorecam"), ("nested", "layercam_inner"),
          ("nested", "hirescam_inner"), ("flat", "xgradcam"), ("nested", "eigencam"), ("nested", "ablationcam_inner")}
CASES = [
    pytest.param(builder, name, marks=[pytest.mark.parity] if (tag, name) in PARITY else [], id=f"{tag}-{name}")
    for tag, builder in (("flat", flat_model), ("nested", nested_model))
    for name in MAKERS
]


@pytest.mark.parametrize("builder,name", CASES)
def test_compiled_equals_eager(builder, name):
    model = builder()
    x = images(4)
    for targets in (None, [2, 0, 1, 1]):
        compiled, eager = both(lambda **kw: make_case(name, model, **kw), x, targets)
        np.testing.assert_allclose(compiled, eager, atol=1e-5)


def test_compiled_softmax_model_scores_logits():
    model = flat_model(softmax=True)
    x = images(3)
    for make in (CAM, GradCAM, GradCAMPlusPlus):
        compiled, eager = both(lambda **kw: make(model, **kw), x, None)
        np.testing.assert_allclose(compiled, eager, atol=1e-5)


@pytest.mark.parity
def test_compiled_score_cam_constant_channels_scored_once():
    # Channels 0 and 2 are dead (relu of a negative constant): their masks are all zero.
    model = flat_model()
    w, b = model.get_layer("feat").get_weights()
    w[..., [0, 2]] = 0.0
    b[[0, 2]] = -1.0
    model.get_layer("feat").set_weights([w, b])
    x = images(3)
    ex = ScoreCAM(model, batch_size=2)
    acts = np.asarray(keras.ops.convert_to_numpy(ex.runner.features(x)))
    targets = np.array([0, 1, 2])
    compiled = ex.compiled_weights(x, targets, acts)
    eager = ex.get_cam_weights(x, targets, acts, None)
    np.testing.assert_allclose(compiled, eager, atol=1e-5)
    zero_probs = keras.ops.convert_to_numpy(keras.ops.softmax(model(np.zeros_like(x[:1]))))[0]
    np.testing.assert_allclose(compiled[:, 0], zero_probs[targets], atol=1e-5)


@pytest.mark.parity
def test_compiled_lcam_equals_eager_and_sees_training():
    # Inference does not depend on the variant (the attention of the feature map); one variant is enough.
    model = nested_model()
    x, y = images(4), np.array([0, 1, 2, 0])
    lcam = LCAM(model, variant="Fm", layer="backbone/pool")
    before = lcam(x, y)  # compiled before training: built on untrained attention weights
    lcam.compile(keras.optimizers.Adam(0.1))
    lcam.fit(x, y, epochs=2, batch_size=4, verbose=0)
    after, after_predicted = lcam(x, y), lcam(x)
    lcam.run_eagerly = True
    np.testing.assert_allclose(after, lcam(x, y), atol=1e-5)
    np.testing.assert_allclose(after_predicted, lcam(x), atol=1e-5)
    assert np.abs(after - before).max() > 1e-3  # the cached compiled function read the new weights


@pytest.mark.parity
@COMPILED_ONLY
def test_compiled_function_is_cached_and_follows_weight_changes():
    model = flat_model()
    ex = GradCAM(model)
    x = images(4)
    first = ex(x, targets=0)
    ex(x[:2], targets=1)  # another batch size: same cached function (no new entry)
    assert list(ex._compiled) == [("maps", (8, 8))]
    dense = model.get_layer("logits")
    kernel, bias = dense.get_weights()
    dense.set_weights([-kernel, bias])
    flipped = ex(x, targets=0)
    np.testing.assert_allclose(flipped, GradCAM(model, run_eagerly=True)(x, targets=0), atol=1e-5)
    assert np.abs(flipped - first).max() > 0.1


def test_jit_compile_equals_eager():
    # TensorFlow: XLA (jit_compile=True); JAX always compiles with XLA, so this is the default path there.
    model = nested_model()
    x = images(3)
    make = lambda **kw: GradCAMPlusPlus(model, layer="backbone/feat", **kw)  # noqa: E731
    np.testing.assert_allclose(make(jit_compile=True)(x, [0, 1, 2]), make(run_eagerly=True)(x, [0, 1, 2]), atol=1e-5)
