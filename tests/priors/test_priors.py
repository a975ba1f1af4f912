import numpy as np
import pytest

from keras_priors import priors
from keras_priors.priors._common import masked_mean, resize_mask_to
from keras_priors.priors.prior import _snake


@pytest.mark.parity
def test_resize_mask_to_gives_object_fraction_per_cell():
    mask = np.zeros((1, 4, 4, 1), "float32")
    mask[0, :2, :1] = 1  # 2 pixels in the top-left 2x2 cell
    cells = np.asarray(resize_mask_to(mask, np.zeros((1, 2, 2, 3))))
    np.testing.assert_allclose(cells[0, :, :, 0], [[0.5, 0.0], [0.0, 0.0]], atol=1e-6)


@pytest.mark.parity
def test_masked_mean_ignores_zero_weights_and_empty():
    np.testing.assert_allclose(float(masked_mean(np.array([1.0, 3.0, 100.0]), np.array([1, 1, 0]))), 2.0)
    assert float(masked_mean(np.array([1.0]), np.array([0]))) == 0.0


def test_term_names_and_config_round_trip():
    assert _snake("CAMSuppression") == "cam_suppression" and _snake("DualInput") == "dual_input"
    for prior in [priors.CAMSuppression(classes="true", evidence="relative"), priors.MaskDecoder(levels=2),
                  priors.Auxiliary(num_classes=3, exclude_classes=[0]), priors.ConfidencePenalty(0.2, threshold=0.5),
                  priors.LabelSmoothing(0.05), priors.FeatureContraction(1e-2), priors.SpatialAttention(),
                  priors.DualInput(fusion="gated"), priors.Pretrained("w.weights.h5", freeze_epochs=2)]:
        clone = type(prior).from_config(prior.get_config())
        assert clone.get_config() == prior.get_config()
    assert priors.LabelSmoothing().term_names() == []
    assert priors.SpatialAttention(target=None).term_names() == []
    assert priors.MaskDecoder().term_names() == ["mask_decoder"]
