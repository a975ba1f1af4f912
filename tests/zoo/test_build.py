import keras
import numpy as np
import pytest

import keras_priors as kp
from keras_priors import priors, zoo

from harness import to_numpy


def test_list_models_and_unknown_name():
    assert "resnet_tiny" in zoo.list_models()
    assert zoo.list_models("resnet5*") == ["resnet50", "resnet50v2"]
    with pytest.raises(ValueError, match=r"Did you mean: resnet50"):
        zoo.build("resnet5", num_classes=2)


@pytest.mark.parametrize("kwargs, match", [
    ({"num_classes": 0}, "num_classes"),
    ({"num_classes": 2, "input_shape": (8, 8, 3)}, "at least 16x16"),
    ({"num_classes": 2, "input_shape": (32, 32)}, "input_shape"),
    ({"num_classes": 2, "priors": ["cam"]}, "keras_priors.priors objects"),
    ({"num_classes": 2, "priors": [priors.CAMSuppression(classes=[5])]}, r"classes.*\[0, 1\]"),
    ({"num_classes": 2, "priors": [priors.MaskDecoder(), priors.MaskDecoder()]}, "share a name"),
    ({"num_classes": 2, "head_level": "P7"}, r"Expected `head_level` one of \['P1', 'P2', 'P3'\]"),
    ({"num_classes": 2, "head_level": "P2", "priors": [priors.DualInput()]}, r"build their own.*head_level='P2'"),
])
def test_bad_build_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        zoo.build("resnet_tiny", **{"input_shape": (32, 32, 3), **kwargs})


def test_prior_argument_errors():
    with pytest.raises(ValueError, match="beta"):
        priors.ConfidencePenalty(beta=-1)
    with pytest.raises(ValueError, match="weight"):
        priors.MaskDecoder(weight=-0.5)
    with pytest.raises(ValueError, match="fusion"):
        priors.DualInput(fusion="max")
    with pytest.raises(ValueError, match="smoothing"):
        priors.LabelSmoothing(1.0)


def test_outputs_and_training_only_heads():
    model = zoo.build("resnet_tiny", num_classes=3, input_shape=(32, 32, 3), priors=[
        priors.CAMSuppression(classes="true"), priors.MaskDecoder(), priors.Auxiliary(num_classes=4),
        priors.FeatureContraction(), priors.SpatialAttention(),
    ])
    out = model.network.output
    assert set(out) == {"logits", "cam", "part_mask", "aux_logits", "features", "attention"}
    assert set(model.training_only) == {"part_mask", "aux_logits", "features", "attention"}
    assert tuple(out["cam"].shape) == (None, 4, 4, 3)
    assert tuple(out["logits"].shape) == (None, 3)
    inf = model.inference_model()
    assert set(inf.output) == {"logits", "probabilities", "cam"}
    names = {layer.name for layer in inf.layers}
    assert "part_mask_decoder" not in names and "auxiliary_head" not in names
    assert "spatial_attention" in names  # the gate changes the features, so it stays


def test_logits_are_cam_mean_plus_bias():
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3))
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    out = model(x)
    bias = model.network.get_layer("classifier").bias
    expected = to_numpy(out["cam"]).mean(axis=(1, 2)) + to_numpy(bias)
    np.testing.assert_allclose(to_numpy(out["logits"]), expected, atol=1e-5)


def test_head_level_gives_a_finer_cam_from_an_earlier_level():
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), head_level="P2",
                      priors=[priors.CAMSuppression(classes=[0, 1])])
    assert tuple(model.network.output["cam"].shape) == (None, 8, 8, 2)
    assert model.network.get_layer("classifier").kernel.shape[0] == 32  # P2 has 32 channels
    x = np.random.default_rng(0).uniform(size=(2, 32, 32, 3)).astype("float32")
    out = model(x)
    expected = to_numpy(out["cam"]).mean(axis=(1, 2)) + to_numpy(model.network.get_layer("classifier").bias)
    np.testing.assert_allclose(to_numpy(out["logits"]), expected, atol=1e-5)


def test_keras_applications_entry_builds_offline():
    model = zoo.build("mobilenetv3small", num_classes=5, input_shape=(64, 64, 3))
    assert tuple(model.network.output["cam"].shape) == (None, 2, 2, 5)
    assert set(model.backbone.output) == {"P2", "P3", "P4", "P5"}


def test_preprocess_modes():
    x = np.full((1, 2, 2, 3), 0.5, "float32")
    np.testing.assert_allclose(zoo.Preprocess("tf")(x), 0.0)
    np.testing.assert_allclose(zoo.Preprocess("scale_255")(x), 127.5)
    caffe = np.asarray(zoo.Preprocess("caffe")(np.zeros((1, 1, 1, 3), "float32")))
    np.testing.assert_allclose(caffe.ravel(), [-103.939, -116.779, -123.68], atol=1e-4)


def test_top_level_api_example_names():
    assert kp.zoo.build is zoo.build
    assert hasattr(kp.priors, "CAMSuppression") and hasattr(kp.callbacks, "CAMImages")


@pytest.mark.parametrize("name", ["resnet_tiny", "resnet_small"])
def test_tiny_backbones_have_aligned_residual_branches(name):
    """Main and shortcut branches must see the same input centres (the RF walk raises otherwise)."""
    from keras_priors.receptive_field import compute_receptive_fields

    backbone = zoo.get_spec(name).builder((64, 64, 3))
    rfs = compute_receptive_fields(backbone, input_shape=(64, 64, 3), on_misaligned="raise")
    assert all(rf.aligned for rf in rfs.values())
    last = rfs["stage3_block1_out" if name == "resnet_tiny" else "stage3_block2_out"]
    assert last.stride == (8, 8)


def test_mlp_is_ross_et_al_perceptron_on_grey_pixels():
    """784 grey pixels -> 50 -> 30 ReLU -> 10 logits; the head reads a 1x1 map, so it is the linear layer."""
    model = zoo.build("mlp", num_classes=10, input_shape=(28, 28, 3))
    backbone = model.backbone
    assert ([tuple(layer.kernel.shape) for layer in backbone.layers if layer.name.startswith("dense")]
            == [(784, 50), (50, 30)])
    assert model.network.count_params() == 784 * 50 + 50 + 50 * 30 + 30 + 30 * 10 + 10 + 3
    x = np.random.default_rng(0).random((2, 28, 28, 1)).astype("float32")
    tiled = np.repeat(x, 3, axis=-1)
    # The grey layer is the channel mean: a tiled grey image gives the grey pixels themselves.
    grey = keras.Model(backbone.input, backbone.get_layer("grey").output)(tiled)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(grey), x, atol=1e-6)
