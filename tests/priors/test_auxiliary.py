import numpy as np

from keras_priors import priors

from harness import prior_batch, run_prior_test


def test_auxiliary_cross_entropy_ignores_excluded_and_negative_targets():
    # logits (0, ln 2, 0): p = (1/4, 1/2, 1/4). sample 0 has primary class 0 (excluded) and sample 3 target -1:
    # both ignored. sample 1, target 0: ln 4 = 1.386294; sample 2, target 1: ln 2 = 0.693147.
    # Mean 1.039721, times weight 0.3
    logits = np.tile(np.array([[0.0, np.log(2.0), 0.0]], "float32"), (4, 1))
    batch = prior_batch([0, 1, 1, 1], aux_label=np.array([2, 0, 1, -1]))
    run_prior_test(priors.Auxiliary, {"num_classes": 3, "exclude_classes": [0], "weight": 0.3}, batch,
                   outputs={"aux_logits": logits}, expected_loss={"auxiliary": 0.311916},
                   expected_training_only=["aux_logits"])
