"""
Title: Right for the right reasons: constrain what the network uses
Author: keras-priors contributors
Date created: 2026/12/01
Last modified: 2026/12/02
Description: Penalise input gradients (RRR), Grad-CAM (RRR-G) or energy outside the object mask.
Accelerator: None
"""

"""
## Introduction

`CAMSuppression` constrains where the last layer *reports* evidence. Each CAM
cell sees most of the image through its receptive field, so a network can
still *read* the background and report the result on the bird. Explanation
priors constrain what the network **uses**:

- `kp.priors.InputGradient` (RRR, Ross et al. 2017): the gradient of the
  log-probabilities with respect to the input pixels must be small outside
  the object mask: `weight * mean_n sum(((1 - mask) * d sum_c log p_c / dx) ** 2)`.
- `kp.priors.GradCAMPenalty` (RRR-G): the same penalty on a differentiable
  Grad-CAM map at a feature level (`level="P2"`).
- `kp.priors.Energy` (Rao et al. 2023): `1 - (positive attribution on the
  object) / (total positive attribution)`, on the CAM or on Grad-CAM.

The gradients are computed inside the train step from the same forward pass
as the logits, and the training gradient differentiates through them (double
backprop), on TensorFlow and JAX, with plain `model.fit`. Nothing changes at
inference: the exported model takes only the image.

In the synthetic *kakapo* data the class is carried by the bird's head, and
in the training split the background is a shortcut (kakapos mostly on the
ground). The test split breaks the shortcut; worst-group accuracy (the
accuracy of the worst label x background group) shows whether a model
relied on it.

Run it with `python tutorials/input_gradient.py`; set
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
OUT = os.path.join(os.environ.get("KERAS_PRIORS_TUTORIAL_OUT", "tutorials_out"), "input_gradient")
os.makedirs(OUT, exist_ok=True)

IMAGE_SIZE = 32 if FAST else 64
NUM_TRAIN, NUM_TEST = (96, 64) if FAST else (2000, 1000)
EPOCHS = 1 if FAST else 8
print(f"backend={keras.backend.backend()} fast={FAST} image_size={IMAGE_SIZE} "
      f"train={NUM_TRAIN} test={NUM_TEST} epochs={EPOCHS}")

train, test = kp.data.kakapo(
    split=("train", "test"), image_size=IMAGE_SIZE,
    num_samples={"train": NUM_TRAIN, "test": NUM_TEST}, batch_size=32, seed=0,
)

"""
## Train without and with each prior

All runs share the seed, data order, optimizer and epochs. The weights were
set so that each term starts at the order of the cross-entropy on this data;
`InputGradient(normalize="rrr")` sums over pixels, so its `weight` is RRR's
`lambda` (their Decoy-MNIST runs use 1000 on MNIST-sized inputs). The logs
show each term as `<name>_loss`.
"""

configs = {
    "plain": [],
    "input_gradient": [kp.priors.InputGradient(mask="object_mask", weight=1.0)],
    "grad_cam_penalty": [kp.priors.GradCAMPenalty(mask="object_mask", level="P2", weight=10.0)],
    "energy": [kp.priors.Energy(mask="object_mask", attribution="cam", weight=1.0)],
}
records = kp.experiment.run(configs, train, test, num_classes=2, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                            epochs=EPOCHS, learning_rate=2e-3, verbose=2)
results = {r["config"]: r for r in records}
models = {name: records.model(name) for name in configs}
seconds = {r["config"]: r["train_seconds"] for r in records}

"""
## What the networks use

To compare what the four networks use, we measure the same thing on each:
the share of the squared input gradient (of the predicted class's
log-probability) that lies outside the bird, on test images. Any network can
be explained this way: wrapping its `network` in a `PriorModel` with an
`InputGradient` prior makes the gradient an output (the weights are shared,
nothing is trained).
"""


def saliency(model, batch):
    """(B, H, W) squared input gradient of the predicted class, summed over channels."""
    probe = kp.priors.InputGradient(classes="predicted", name="saliency")
    explainer = kp.zoo.PriorModel(model.network, priors=[probe], num_classes=model.num_classes)
    gradient = keras.ops.convert_to_numpy(explainer(batch, training=False)["saliency/gradient"])
    return (gradient ** 2).sum(-1)


test_batches = [{k: np.asarray(v) for k, v in b.items()} for b in test]
outside_share = {}
for name, model in models.items():
    inside = outside = 0.0
    for batch in test_batches:
        s = saliency(model, batch)
        m = batch["object_mask"][..., 0]
        inside += float((s * m).sum())
        outside += float((s * (1 - m)).sum())
    outside_share[name] = outside / max(inside + outside, 1e-12)

"""
## Results

Measured on the test split, where the background says nothing about the
label. `gradient outside` is the share of the squared input gradient outside
the bird (lower: the prediction depends less on the background);
`cam_energy_in_mask` the share of the predicted class's CAM energy on the bird.
"""

for r in records:
    r["gradient outside"] = outside_share[r["config"]]
print("\n" + kp.experiment.format_table(
    records, metrics=("accuracy", "worst_group_accuracy", "gradient outside", "cam_energy_in_mask", "train_seconds")))
changes = kp.experiment.compare(records, metrics=("accuracy", "worst_group_accuracy", "gradient outside"),
                                lower_is_better=("gradient outside",))
print(kp.experiment.format_comparison(changes))
for name in list(configs)[1:]:
    print(f"{name}: training time x{seconds[name] / seconds['plain']:.2f} of plain's")

"""
Read the rows printed above, not a story: in fast mode one epoch on a few
dozen images shows only that the code runs. The input-gradient prior acts on
the gradient column first; accuracy follows only if the network finds the
head in the time it is given. Double backprop makes a step about two to three
times as expensive as a plain one (the `train s` column; see
`benchmarks/prior_overhead.py`), except Grad-CAM at the classifier's own level,
whose gradient is a constant of the head.

## See what each model uses

Each row: the image, then the squared input gradient for the plain model and
for the input-gradient model (bird outline in cyan).
"""

batch = {k: v[:8] for k, v in test_batches[0].items()}
grid = kp.callbacks.cam_overlay_grid(batch["image"], saliency(models["plain"], batch),
                                     saliency(models["input_gradient"], batch), batch["object_mask"][..., 0])
path = os.path.join(OUT, "input_gradients_plain_vs_rrr.png")
matplotlib.image.imsave(path, np.clip(grid, 0, 1))
print("Wrote", path)

"""
## When to use which

- `InputGradient` constrains every pixel, so the network cannot read the
  background at any depth; it is the most expensive (double backprop through
  the whole network) and its penalty is in units of squared gradients, so the
  weight needs tuning (RRR chose it so that both terms have the same order of
  magnitude).
- `GradCAMPenalty` constrains a feature level: cheaper, coarser, and at the
  classifier's own level it is (up to a factor) a squared CAM penalty.
- `Energy` is a share in [0, 1], scale-free, and with `attribution="cam"`
  costs no double backprop at all.

A small per-pixel gradient can still add up to a dense dependence on a large
background; counterexamples that swap the background remove the shortcut at
the data instead.
"""
