import numpy as np

from keras_priors import priors

from harness import half_masks, prior_batch, run_prior_test


def test_spatial_attention_bce_against_the_mask_per_cell():
    # attention 0.8 on a 2x2 grid. sample 0, top half: 2 cells on the object, -ln 0.8 = 0.223144, and 2 off it,
    # -ln 0.2 = 1.609438: mean 0.916291. sample 1, empty mask: 1.609438. Mean 1.262864, times weight 0.5
    batch = prior_batch([0, 1], part_mask=half_masks("top", "empty"))
    run_prior_test(priors.SpatialAttention, {"target": "part_mask", "weight": 0.5}, batch,
                   outputs={"attention": np.full((2, 2, 2, 1), 0.8, "float32")},
                   expected_loss={"spatial_attention": 0.631432}, expected_training_only=["attention"])
