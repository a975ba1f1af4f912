"""``kp.zoo.logits_classifier``: the image-to-logits model inside a PriorModel, for explainers."""

import keras
import numpy as np
import pytest

from keras_priors import priors, zoo

from harness import to_numpy


def test_the_classifier_gives_the_models_logits_with_shared_weights():
    keras.utils.set_random_seed(0)
    model = zoo.build("resnet_tiny", num_classes=3, input_shape=(32, 32, 3),
                      priors=[priors.MaskDecoder(target="part_mask")])
    x = np.random.default_rng(0).uniform(size=(4, 32, 32, 3)).astype("float32")
    classifier = zoo.logits_classifier(model)
    assert classifier.name == "classifier" and len(classifier.inputs) == 1
    np.testing.assert_allclose(to_numpy(classifier(x)), to_numpy(model({"image": x})["logits"]), atol=1e-6)
    # The layers are shared: a change to the zoo model's weights shows in the classifier.
    kernel = model.network.get_layer("classifier").weights[0]
    kernel.assign(kernel + 1.0)
    np.testing.assert_allclose(to_numpy(classifier(x)), to_numpy(model({"image": x})["logits"]), atol=1e-5)
    assert zoo.logits_classifier(classifier) is classifier


def test_a_model_that_needs_the_part_box_at_inference_is_refused():
    model = zoo.build("resnet_tiny", num_classes=2, input_shape=(32, 32, 3), priors=[priors.DualInput(box="part_box")])
    with pytest.raises(ValueError, match=r"Expected a `model` whose inference takes only the image.*part_box"):
        zoo.logits_classifier(model)
