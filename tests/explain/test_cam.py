import keras
import numpy as np
import pytest
from explain._models import flat_model, images, nested_model, np_cam, np_logits

from keras_priors.explain import CAM, GradCAM
from keras_priors.explain import resize_cam
from keras_priors.explain._utils import normalize_maps


@pytest.mark.parity
@pytest.mark.parametrize("builder", [flat_model, nested_model])
def test_cam_equals_numpy_reference(builder):
    model = builder()
    x = images()
    maps = CAM(model)(x, targets=[0, 1, 2])
    assert maps.shape == (3, 8, 8) and maps.dtype == np.float32
    np.testing.assert_allclose(maps, np_cam(model, x, np.array([0, 1, 2])), atol=1e-5)


@pytest.mark.parity
def test_cam_default_target_is_prediction():
    model = flat_model()
    x = images(4)
    pred = np_logits(model, x).argmax(-1)
    np.testing.assert_allclose(CAM(model)(x), np_cam(model, x, pred), atol=1e-5)


def test_cam_range_and_int_target():
    model = flat_model()
    maps = CAM(model)(images(), targets=1)
    assert maps.min() >= 0.0 and maps.max() <= 1.0
    assert np.allclose(maps.max(axis=(1, 2)), 1.0)


def test_cam_finds_head_through_softmax_dense():
    model = flat_model(softmax=True)
    x = images()
    np.testing.assert_allclose(CAM(model)(x, targets=0), np_cam(model, x, np.zeros(3, int)), atol=1e-5)


def test_cam_without_gap_dense_head_is_an_error():
    inp = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(2, 1)(inp)
    out = keras.layers.Dense(2)(keras.layers.Flatten()(x))
    with pytest.raises(ValueError, match="CAM head"):
        CAM(keras.Model(inp, out))


def test_cam_layer_must_be_the_gap_input():
    with pytest.raises(ValueError, match="feeding the GAP"):
        CAM(flat_model(), layer="feat")


def test_cam_and_default_layer_on_a_zoo_classifier():
    # Zoo models end in CAMHead, fed by one output of a multi-output backbone (P1..P3): CAM reads the
    # head's kernel, and the default layer of every explainer is the layer producing that output.
    import keras_priors as kp

    inference = kp.zoo.build("resnet_tiny", num_classes=3, input_shape=(16, 16, 3)).inference_model()
    classifier = keras.Model(inference.input["image"], inference.output["logits"])
    x = images(2, size=16)
    cam = CAM(classifier)
    assert cam.path[0] == "backbone" and len(cam.path) == 2
    assert GradCAM(classifier).path == cam.path
    head_cam = keras.ops.convert_to_numpy(inference({"image": x})["cam"])[np.arange(2), :, :, [2, 0]]
    want = normalize_maps(resize_cam(np.maximum(head_cam, 0.0), (16, 16)))
    np.testing.assert_allclose(cam(x, targets=[2, 0]), want, atol=1e-5)
    np.testing.assert_allclose(GradCAM(classifier)(x, targets=[2, 0]), want, atol=1e-5)
