import numpy as np

from keras_priors import priors

from harness import prior_batch, run_prior_test


def test_label_smoothing_replaces_the_cross_entropy():
    # smoothed targets (K = 2, 0.1): 0.95 on the label, 0.05 on the other class.
    # sample 0, logits (2, 0), label 0: log-softmax (-0.126928, -2.126928) -> 0.95 * 0.126928 + 0.05 * 2.126928
    # = 0.226928; sample 1, logits (0, 1), label 1: log-softmax (-1.313262, -0.313262) -> 0.05 * 1.313262
    # + 0.95 * 0.313262 = 0.363262; mean 0.295095
    batch = prior_batch([0, 1])
    run_prior_test(priors.LabelSmoothing, {"smoothing": 0.1}, batch,
                   outputs={"logits": np.array([[2.0, 0.0], [0.0, 1.0]], "float32")},
                   expected_loss={}, expected_classification_loss=0.295095)


def test_label_smoothing_single_logit():
    # one logit z = 0 and label 1: smoothed target 0.95 (binary smoothing: y * 0.9 + 0.05): BCE ln 2 = 0.693147
    # whatever the target; z = 2, label 0 (target 0.05): 0.05 * softplus(-2) + 0.95 * softplus(2)
    # = 0.05 * 0.126928 + 0.95 * 2.126928 = 2.026928; mean 1.360038
    batch = prior_batch([1, 0])
    run_prior_test(priors.LabelSmoothing, {"smoothing": 0.1}, batch, num_classes=1,
                   outputs={"logits": np.array([[0.0], [2.0]], "float32")},
                   expected_loss={}, expected_classification_loss=1.360038,
                   run_export_check=False, run_saving_check=False)
