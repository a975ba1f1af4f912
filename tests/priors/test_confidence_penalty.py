import numpy as np

from keras_priors import priors

from harness import prior_batch, run_prior_test

# logits (0, 0): p = (1/2, 1/2), entropy ln 2 = 0.693147; logits (0, ln 3): p = (1/4, 3/4),
# entropy ln 4 - 0.75 ln 3 = 0.562335
LOGITS = np.array([[0.0, 0.0], [0.0, np.log(3.0)]], "float32")


def test_confidence_penalty_is_minus_beta_times_the_entropy():
    # -0.1 * mean(0.693147, 0.562335) = -0.1 * 0.627741
    run_prior_test(priors.ConfidencePenalty, {"beta": 0.1}, prior_batch([0, 1]), outputs={"logits": LOGITS},
                   expected_loss={"confidence_penalty": -0.0627741})


def test_confidence_penalty_hinge():
    # threshold 0.65 nats: relu(0.65 - 0.693147) = 0, relu(0.65 - 0.562335) = 0.087665; 0.1 * mean = 0.00438325
    run_prior_test(priors.ConfidencePenalty, {"beta": 0.1, "threshold": 0.65, "name": "hinge"}, prior_batch([0, 1]),
                   outputs={"logits": LOGITS}, expected_loss={"hinge": 0.00438325},
                   run_export_check=False, run_saving_check=False)
