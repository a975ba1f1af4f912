"""
Title: Mask decoder: the model reproduces the prior
Author: keras-priors contributors
Date created: 2026/11/23
Last modified: 2026/12/02
Description: A part-mask decoder trained alongside the classifier and dropped at export.
Accelerator: None
"""

"""
## Introduction

In the synthetic *kakapo* data the class is carried by the bird's **head**,
while the training split also offers a background shortcut. We have a mask of
the head for every training image (`part_mask`). Instead of feeding it to the
network, we ask the network to **reproduce** it: `kp.priors.MaskDecoder` adds
a light FPN-style decoder on the backbone's feature pyramid that predicts the
head mask, trained with Dice + binary cross-entropy together with the
classifier. To predict the head, the shared backbone features must localise
the head, which is what the classifier needs at test time.

The decoder is a **training-only** output: `model.export(...)` and
`model.inference_model()` drop it, so it costs nothing at inference.

Run it with `python tutorials/mask_decoder.py`; set
`KERAS_PRIORS_TUTORIAL_FAST=1` for a seconds-long smoke run (too small to
draw conclusions from).

## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib.image
import numpy as np

import keras_priors as kp

FAST = os.environ.get("KERAS_PRIORS_TUTORIAL_FAST") == "1"
OUT = os.path.join(os.environ.get("KERAS_PRIORS_TUTORIAL_OUT", "tutorials_out"), "mask_decoder")
os.makedirs(OUT, exist_ok=True)

IMAGE_SIZE = 32 if FAST else 64
NUM_TRAIN, NUM_TEST = (160, 96) if FAST else (2000, 1000)
EPOCHS = 1 if FAST else 8
print(f"backend={keras.backend.backend()} fast={FAST} image_size={IMAGE_SIZE} "
      f"train={NUM_TRAIN} test={NUM_TEST} epochs={EPOCHS}")

train, test = kp.data.kakapo(
    split=("train", "test"), image_size=IMAGE_SIZE,
    num_samples={"train": NUM_TRAIN, "test": NUM_TEST}, batch_size=32, seed=0,
)

"""
## Train without and with the decoder

`levels=2` lets the decoder read the two coarsest pyramid maps (`P2`, `P3`);
`weight=0.5` scales its loss against the classification loss. Both runs use
the same seed, data order, optimizer and epochs.
"""

configs = {
    "plain": [],
    "mask_decoder": [kp.priors.MaskDecoder(target="part_mask", weight=0.5, levels=2, filters=16)],
}
records = kp.experiment.run(configs, train, test, num_classes=2, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                            epochs=EPOCHS, learning_rate=2e-3, verbose=2)
results = {r["config"]: r for r in records}
models = {name: records.model(name) for name in configs}

"""
## How well does the decoder reproduce the head?

The network returns the decoder's logits under the output name `part_mask`.
We threshold the probabilities at 0.5, resize to the image and compute the
Dice overlap with the true head mask on the test split.
"""


def predicted_masks(model, batch):
    logits = model(batch, training=False)["part_mask"]
    probs = keras.ops.sigmoid(kp.explain.resize_cam(logits, (IMAGE_SIZE, IMAGE_SIZE)))
    return np.asarray(keras.ops.convert_to_numpy(probs))


dices = []
for batch in test:
    pred = predicted_masks(models["mask_decoder"], batch) > 0.5
    true = np.asarray(batch["part_mask"]) > 0.5
    inter = (pred & true).sum(axis=(1, 2, 3))
    dices.append(2 * inter / np.maximum(pred.sum(axis=(1, 2, 3)) + true.sum(axis=(1, 2, 3)), 1))
head_dice = float(np.concatenate(dices).mean())
print(f"test Dice of the predicted head mask: {head_dice:.3f}")

batch = {k: np.asarray(v)[:8] for k, v in next(iter(test)).items()}
probs = predicted_masks(models["mask_decoder"], batch)
rows = [np.concatenate([img, np.repeat(true, 3, -1), np.repeat(p, 3, -1)], axis=1)
        for img, true, p in zip(batch["image"], batch["part_mask"], probs)]
mask_path = os.path.join(OUT, "head_masks_true_vs_predicted.png")
matplotlib.image.imsave(mask_path, np.clip(np.concatenate(rows, axis=0), 0, 1))
print("Wrote", mask_path, "(columns: image | true head mask | predicted head mask)")

"""
## Results
"""

print("\n" + kp.experiment.format_table(records, metrics=("accuracy", "worst_group_accuracy", "cam_energy_in_mask")))

changes = kp.experiment.compare(records, metrics=("accuracy", "worst_group_accuracy"))
print(kp.experiment.format_comparison(changes))

"""
Compare the two rows printed above, and the Dice of the decoder. The decoder
helps the classifier only once it has learned to find the head (a Dice well
above zero): before that its gradient is mostly noise for the backbone. In
the fast mode (one epoch, a few images) it usually has not, so do not expect
the prior to help there.

## The decoder is gone at inference

`inference_model()` (what `export` writes) keeps the classifier path only.
"""

inference = models["mask_decoder"].inference_model()
print("training outputs: ", sorted(models["mask_decoder"].network.output))
print("inference outputs:", sorted(inference.output))
print(f"parameters: training network {models['mask_decoder'].network.count_params()}, "
      f"inference model {inference.count_params()}")

"""
## Why it helps, and when it does not

A mask is a much denser signal than one label per image: every pixel of the
head tells the backbone "this matters". Sharing the backbone between the two
tasks (multi-task learning) biases its features towards the head, which
carries the class, and away from the background, which does not. It helps
less when the mask shows something that does not carry the label, when the
decoder's weight drowns the classification loss, or when there is enough
unbiased data for the classifier to find the head on its own.
"""
