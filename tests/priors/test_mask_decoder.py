import numpy as np

from keras_priors import priors

from harness import half_masks, prior_batch, run_prior_test


def test_mask_decoder_dice_plus_bce():
    # logits 0 on a 2x2 grid: p = 0.5 in every cell; the 32 px masks area-resize to the cells.
    # sample 0, top half -> cells (1, 1, 0, 0): Dice 1 - (2 * 1 + 1) / (2 + 2 + 1) = 0.4, BCE ln 2 = 0.693147;
    # sample 1, empty: Dice 1 - (0 + 1) / (2 + 0 + 1) = 0.666667, BCE ln 2. Mean 1.226481, times weight 0.5
    batch = prior_batch([0, 1], part_mask=half_masks("top", "empty"))
    run_prior_test(priors.MaskDecoder, {"target": "part_mask", "weight": 0.5, "levels": 2, "filters": 8}, batch,
                   outputs={"part_mask": np.zeros((2, 2, 2, 1), "float32")},
                   expected_loss={"mask_decoder": 0.613240}, expected_training_only=["part_mask"])
