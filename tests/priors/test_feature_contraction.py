import numpy as np

from keras_priors import priors

from harness import prior_batch, run_prior_test


def test_feature_contraction_is_the_weighted_mean_squared_norm():
    # ||(1, 2)||^2 = 5, ||(0, 3)||^2 = 9: mean 7, times 1e-3
    run_prior_test(priors.FeatureContraction, {"weight": 1e-3}, prior_batch([0, 1]),
                   outputs={"features": np.array([[1.0, 2.0], [0.0, 3.0]], "float32")},
                   expected_loss={"feature_contraction": 0.007}, expected_training_only=["features"])
