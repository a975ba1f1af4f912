import numpy as np

from keras_priors import priors

from harness import half_masks, prior_batch, run_prior_test


def test_cam_suppression_share_of_relative_evidence_outside_the_object():
    # a 2x2 CAM, two classes; class 0's relative evidence relu(cam_0 - mean(cam_0, cam_1)) = relu((cam_0 - cam_1) / 2).
    # sample 0, object on the left column: cam_0 - cam_1 = ((2, 0), (0, 2)) -> evidence ((1, 0), (0, 1)):
    # 1 inside, 1 outside, share 0.5. sample 1, object on the top row, a CAM with no evidence: share 1 (wiping
    # the CAM is the worst answer). Mean 0.75, times weight 0.5
    cam = np.zeros((2, 2, 2, 2), "float32")
    cam[0, :, :, 0] = [[3.0, 1.0], [1.0, 1.0]]
    cam[0, :, :, 1] = [[1.0, 1.0], [1.0, -1.0]]
    batch = prior_batch([0, 1], object_mask=half_masks("left", "top"))
    run_prior_test(priors.CAMSuppression, {"classes": [0], "weight": 0.5}, batch,
                   outputs={"cam": cam, "logits": np.zeros((2, 2), "float32")},
                   expected_loss={"cam_suppression": 0.375})
