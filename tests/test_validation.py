"""Argument checks: NaN, Inf and non-integer class indices are refused with the argument named."""

import math

import numpy as np
import pytest

from keras_priors import losses, priors, zoo
from keras_priors.validation import (
    check_class_indices,
    check_classes_below,
    check_fraction,
    check_non_negative,
)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, np.float32("nan"), np.float64("inf")])
def test_check_non_negative_rejects_nan_and_inf(bad):
    with pytest.raises(ValueError, match=r"Expected `weight` to be a finite number >= 0\. Received: weight="):
        check_non_negative("weight", bad)


def test_check_non_negative_accepts_finite_and_rejects_negative():
    assert check_non_negative("weight", 0) == 0.0
    assert check_non_negative("weight", np.float32(2.5)) == 2.5
    with pytest.raises(ValueError, match=r"Expected `weight` >= 0\. Received: weight=-1"):
        check_non_negative("weight", -1)


def test_check_fraction_rejects_nan():
    with pytest.raises(ValueError, match="Expected `keep` in"):
        check_fraction("keep", math.nan)


@pytest.mark.parametrize("make, arg", [
    (lambda: priors.CAMSuppression(weight=math.nan), "weight"),
    (lambda: priors.MaskDecoder(weight=math.inf), "weight"),
    (lambda: priors.ConfidencePenalty(beta=math.nan), "beta"),
    (lambda: priors.Auxiliary(num_classes=3, weight=-math.inf), "weight"),
    (lambda: losses.ConfidencePenalty(beta=math.nan), "beta"),
    (lambda: losses.MaskLoss(dice_weight=math.inf), "dice_weight"),
])
def test_priors_and_losses_reject_nan_and_inf(make, arg):
    with pytest.raises(ValueError, match=rf"Expected `{arg}` to be a finite number >= 0\. "
                                         rf"Received: {arg}=(nan|inf|-inf)"):
        make()


@pytest.mark.parametrize("bad", [[0.9], 0.9, [1.0], [True], [-1], [0, "a"]])
def test_check_class_indices_refuses_what_it_would_truncate(bad):
    with pytest.raises(ValueError,
                       match=r"Expected `classes` to hold class indices \(integers >= 0\)\. Received: classes="):
        check_class_indices("classes", bad)


def test_check_class_indices_accepts_ints():
    assert check_class_indices("classes", 1) == [1]
    assert check_class_indices("classes", (0, np.int64(2))) == [0, 2]
    assert check_class_indices("classes", []) == []
    with pytest.raises(TypeError, match="Received: classes=None"):
        check_class_indices("classes", None)


def test_check_classes_below():
    check_classes_below("classes", [0, 1], 1)  # a single-logit head has classes 0 and 1
    with pytest.raises(ValueError, match=r"Expected `classes` in \[0, 1\] for num_classes=2\. Received: classes=\[7\]"):
        check_classes_below("classes", [7], 2)


def test_cam_suppression_refuses_a_float_class():
    with pytest.raises(ValueError, match=r"CAMSuppression: Expected `classes` .* Received: classes=\[0\.9\]"):
        priors.CAMSuppression(classes=[0.9])
    assert priors.CAMSuppression(classes=1).classes == [1]
    assert priors.CAMSuppression(classes="true").classes == "true"


def test_auxiliary_refuses_excluded_classes_the_model_does_not_have():
    with pytest.raises(ValueError, match=r"Auxiliary: Expected `exclude_classes` in \[0, 1\] for num_classes=2\. "
                                         r"Received: exclude_classes=\[7\]"):
        zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
                  priors=[priors.Auxiliary(num_classes=3, exclude_classes=[7])])
    with pytest.raises(ValueError, match="exclude_classes"):
        priors.Auxiliary(num_classes=3, exclude_classes=[0.5])
    zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3),
              priors=[priors.Auxiliary(num_classes=3, exclude_classes=[1])])


def test_mask_decoder_refuses_more_levels_than_the_backbone_has():
    with pytest.raises(ValueError, match=r"MaskDecoder: Expected `levels` <= 3, .* Received: levels=99"):
        zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.MaskDecoder(levels=99)])
