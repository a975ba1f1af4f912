"""Data checks before the first training step: every bad value is an error naming the key."""

import numpy as np
import pytest

from keras_priors import priors, zoo

from harness import dict_dataset


def _model(num_classes=2, prior_list=()):
    model = zoo.build("resnet_tiny", num_classes=num_classes, input_shape=(32, 32, 3), priors=list(prior_list))
    model.compile(optimizer="adam")
    return model


def _data(kakapo32, n=8, **changes):
    d = {k: np.array(v[:n]) for k, v in kakapo32.items()}
    for key, fn in changes.items():
        d[key] = fn(d[key])
    return d


def _nan_at_first(x):
    x = x.astype("float32")
    x.reshape(-1)[0] = np.nan
    return x


def _inf_at_first(x):
    x = x.astype("float32")
    x.reshape(-1)[5] = np.inf
    return x


CASES = {
    "nan_pixel": (dict(image=_nan_at_first), r"Expected finite values in the data's 'image'\. Received: 1 NaN/Inf"),
    "inf_pixel": (dict(image=_inf_at_first), r"Expected finite values in the data's 'image'"),
    "uint8_image": (dict(image=lambda x: (x * 255).astype("uint8")),
                    r"Expected the data's 'image' as floats in \[0, 1\]\. Received: dtype uint8"),
    "image_0_255": (dict(image=lambda x: x * 255), r"'image' in \[0, 1\]\. Received: min 0, max 255 .*0-255"),
    "negative_image": (dict(image=lambda x: x - 0.5), r"'image' in \[0, 1\]\. Received: min -0\.5"),
    "float_label": (dict(label=lambda y: np.where(y == 1, 0.7, 0.0).astype("float32")),
                    r"class indices \(whole numbers\) in the data's 'label'\. Received: label=0\.7"),
    "label_5": (dict(label=lambda y: np.where(np.arange(len(y)) == 3, 5, y)),
                r"'label' in \[0, 1\] for num_classes=2\. Received: label=5"),
    "label_-1": (dict(label=lambda y: np.where(np.arange(len(y)) == 3, -1, y)), r"Received: label=-1"),
    "mask_32x16": (dict(object_mask=lambda m: m[:, :, :16]),
                   r"'object_mask' of shape \(batch,\) \+ \(32, 32\) \+ \(1,\).*Received: \(8, 32, 16, 1\)"),
    "mask_x255": (dict(object_mask=lambda m: m * 255), r"'object_mask' in \[0, 1\]\. Received: min 0, max 255"),
    "negative_mask": (dict(part_mask=lambda m: m - 1), r"'part_mask' in \[0, 1\]\. Received: min -1"),
    "nan_mask": (dict(object_mask=_nan_at_first), r"finite values in the data's 'object_mask'"),
    "inverted_box": (dict(part_box=lambda b: b[:, [2, 3, 0, 1]]),
                     r"'part_box' as \[y1, x1, y2, x2\] with y1 <= y2 and x1 <= x2\. "
                     r"Received: part_box=\[.*\] \(inverted\) at row 0"),
    "box_outside": (dict(part_box=lambda b: b * 64), r"'part_box' in \[0, 1\] \(coordinates relative to the image\)"),
}


@pytest.mark.parametrize("form", ["dataset", "arrays"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_first_batch_fails_before_the_first_step(kakapo32, case, form):
    changes, match = CASES[case]
    d = _data(kakapo32, **changes)
    model = _model(prior_list=[priors.CAMSuppression(), priors.MaskDecoder(levels=2, filters=8)])
    before = [np.array(w) for w in model.get_weights()]
    with pytest.raises(ValueError, match=match):
        model.fit(dict_dataset(d, batch_size=8) if form == "dataset" else d, epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 0
    assert all(np.array_equal(a, b) for a, b in zip(before, model.get_weights()))


def test_single_logit_head_refuses_label_2(kakapo32):
    d = _data(kakapo32, label=lambda y: np.where(np.arange(len(y)) == 0, 2, y))
    with pytest.raises(ValueError, match=r"'label' in \[0, 1\] for num_classes=1\. Received: label=2"):
        _model(num_classes=1).fit(dict_dataset(d), epochs=1, verbose=0)


def test_empty_dataset_is_an_error(kakapo32):
    d = _data(kakapo32)
    with pytest.raises(ValueError, match="Expected at least one batch of data. Received: an empty dataset"):
        _model().fit(dict_dataset(d).take(0), epochs=1, verbose=0)


def test_whole_float_labels_and_a_good_batch_train(kakapo32):
    """Documented acceptance: labels stored as floats with whole values (1.0) are class indices."""
    d = _data(kakapo32, label=lambda y: y.astype("float32"))
    model = _model(prior_list=[priors.CAMSuppression()])
    model.fit(dict_dataset(d, batch_size=8), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 1
