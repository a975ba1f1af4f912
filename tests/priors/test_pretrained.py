import numpy as np

from keras_priors import priors

from harness import prior_batch, run_prior_test, tiny_zoo_model


def test_pretrained_loads_the_backbone_and_keeps_the_contract(tmp_path):
    source = tiny_zoo_model([])
    path = str(tmp_path / "backbone.weights.h5")
    source.backbone.save_weights(path)
    # no loss term; fit runs the frozen phase of its schedule (1 epoch <= freeze_epochs)
    model = run_prior_test(priors.Pretrained, {"weights": path, "freeze_epochs": 2}, prior_batch([0, 1]),
                           outputs={}, expected_loss={})
    assert not model.backbone.trainable
    for a, b in zip(source.backbone.get_weights(), model.backbone.get_weights()):
        np.testing.assert_array_equal(a, b)  # frozen: still the loaded weights after the fit
