import keras
import numpy as np
import pytest
from explain._models import flat_model, images, nested_model, np_cam, np_logits

from keras_priors.explain import CAM, GradCAM


@pytest.mark.parity
@pytest.mark.parametrize("builder,layer", [(flat_model, None), (nested_model, None), (nested_model, "backbone/pool")])
def test_gradcam_on_gap_dense_equals_cam(builder, layer):
    # With GAP + Dense the Grad-CAM weights are W[:, c] / (h * w): same map as CAM after min-max.
    model = builder()
    x = images()
    targets = np.array([2, 0, 1])
    maps = GradCAM(model, layer=layer)(x, targets=targets)
    np.testing.assert_allclose(maps, np_cam(model, x, targets), atol=1e-5)


@pytest.mark.parity
def test_gradcam_weights_are_kernel_over_area():
    model = flat_model()
    x = images(2)
    explainer = GradCAM(model)
    acts, grads, t = explainer.activations_and_grads(x, np.array([1, 2]))
    wd = model.get_layer("logits").get_weights()[0]
    np.testing.assert_allclose(explainer.get_cam_weights(x, t, acts, grads), wd[:, [1, 2]].T / 16.0, atol=1e-6)


@pytest.mark.parity
def test_gradcam_default_target_and_softmax_model_uses_logits():
    model = flat_model(softmax=True)
    x = images(4)
    pred = np_logits(model, x).argmax(-1)
    # Pre-softmax logit score: the identity with CAM holds only without the softmax.
    np.testing.assert_allclose(GradCAM(model)(x), np_cam(model, x, pred), atol=1e-5)


def test_gradcam_on_inner_conv_layer_of_nested_model():
    model = nested_model()
    maps = GradCAM(model, layer="backbone/feat")(images(), targets=0)
    assert maps.shape == (3, 8, 8)
    assert maps.min() >= 0 and maps.max() <= 1


def test_gradcam_on_sequential_model():
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(3, 3, padding="same", activation="relu", name="c"),
         keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(2)]
    )
    assert GradCAM(model)(images(2), targets=[0, 1]).shape == (2, 8, 8)
    np.testing.assert_allclose(GradCAM(model)(images(2), targets=1), CAM(model)(images(2), targets=1), atol=1e-5)


# === Bad input ===
def test_target_out_of_range():
    with pytest.raises(ValueError, match=r"Expected `targets` in \[0, 3\).*Received: targets=\[0, 3, 0\]"):
        GradCAM(flat_model())(images(), targets=[0, 3, 0])


def test_targets_wrong_length():
    with pytest.raises(ValueError, match="one per image"):
        GradCAM(flat_model())(images(), targets=[0, 1])


def test_images_wrong_rank():
    with pytest.raises(ValueError, match=r"Expected `images`.*Received: images with shape \(8, 8, 3\)"):
        GradCAM(flat_model())(images()[0])


def test_images_wrong_size():
    with pytest.raises(ValueError, match=r"Received: images with shape \(3, 16, 16, 3\)"):
        GradCAM(flat_model())(images(size=16))


def test_unknown_layer_name():
    with pytest.raises(ValueError, match="'nope' is not a layer"):
        GradCAM(flat_model(), layer="nope")
    with pytest.raises(ValueError, match="'nope' is not a layer of 'backbone'"):
        GradCAM(nested_model(), layer="backbone/nope")


def test_layer_without_spatial_output():
    with pytest.raises(ValueError, match=r"4D.*Received: layer='gap'"):
        GradCAM(flat_model(), layer="gap")


def test_layer_with_no_path_to_output():
    inp = keras.Input((8, 8, 3))
    side = keras.layers.Conv2D(2, 1, name="side")(inp)
    x = keras.layers.Conv2D(2, 1, name="main")(inp)
    out = keras.layers.Dense(2, name="logits")(keras.layers.GlobalAveragePooling2D()(x))
    model = keras.Model(inp, [out, side])
    assert GradCAM(model).path == ["main"]  # the default skips 4D layers that do not feed the logits
    with pytest.raises(ValueError, match="differentiable path.*'side'"):
        GradCAM(model, layer="side")


def test_subclassed_model_is_a_clear_error():
    class Net(keras.Model):
        def __init__(self):
            super().__init__()
            self.c = keras.layers.Conv2D(2, 1)
            self.d = keras.layers.Dense(2)

        def call(self, x):
            return self.d(keras.ops.mean(self.c(x), axis=(1, 2)))

    net = Net()
    net(images(1))
    with pytest.raises(ValueError, match="functional or Sequential"):
        GradCAM(net)
