import numpy as np
import pytest
from explain._models import flat_model, images

from keras_priors.explain import CAM, LCAM, GradCAM, GradCAMPlusPlus, ScoreCAM, get_explainer, overlay


def test_get_explainer_names():
    assert get_explainer("cam") is CAM
    assert get_explainer("gradcam") is GradCAM
    assert get_explainer("Grad-CAM++") is GradCAMPlusPlus
    assert get_explainer("scorecam") is ScoreCAM
    assert get_explainer("lcam") is LCAM
    with pytest.raises(ValueError, match=r"Expected `name` to be one of .*Received: name='rise'"):
        get_explainer("rise")


def test_every_explainer_gives_maps_in_range():
    model, x = flat_model(), images(2)
    for name in ("cam", "gradcam", "gradcam++", "scorecam", "lcam"):
        maps = get_explainer(name)(model)(x)
        assert maps.shape == (2, 8, 8) and maps.dtype == np.float32, name
        assert maps.min() >= 0.0 and maps.max() <= 1.0, name


def test_overlay():
    img = np.zeros((5, 6, 3), "float32")
    hm = np.zeros((5, 6), "float32"); hm[0, 0] = 1.0
    out = overlay(img, hm, alpha=1.0)
    assert out.shape == (5, 6, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[0, 0], [128, 0, 0])  # jet(1) = dark red
    np.testing.assert_array_equal(out[1, 1], [0, 0, 128])  # jet(0) = dark blue
    np.testing.assert_array_equal(overlay((img + 1.0).astype("float32"), hm, alpha=0.0), 255)
    assert overlay(np.zeros((5, 6), np.uint8), hm).shape == (5, 6, 3)
    with pytest.raises(ValueError, match="heatmap"):
        overlay(img, np.zeros((4, 4)))
    with pytest.raises(ValueError, match="alpha"):
        overlay(img, hm, alpha=2)
