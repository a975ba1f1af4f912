"""
Title: Pretrained weights without a download: transfer a locally trained backbone
Author: keras-priors contributors
Date created: 2026/11/23
Last modified: 2026/12/02
Description: Pretrain a backbone, then fine-tune it on a small task: freeze, then unfreeze.
Accelerator: None
"""

"""
## Introduction

The oldest prior is a good starting point: weights learned on a related task.
Online, `kp.zoo.build("resnet50", ..., weights="imagenet")` (or
`priors=[kp.priors.Pretrained("imagenet", freeze_epochs=2)]`) starts from
keras.applications' ImageNet weights, which Keras downloads on first use.
This tutorial runs offline, so it shows the same path with a backbone we
train and save ourselves:

1. **Source task**: tell apart the four "other bird" species of the synthetic
   *kakapo* data (no kakapo images), with plenty of images.
2. Save the backbone's weights to a local `.weights.h5` file.
3. **Target task**: kakapo versus other bird with only a few labelled
   images, once from scratch and once with
   `kp.priors.Pretrained(path, freeze_epochs=...)`: the new head is trained
   on the frozen backbone first, then everything is fine-tuned with a fresh
   optimizer at a smaller learning rate.

The two tasks share what matters (heads, beaks, head colours) but not their
labels: the source task never sees a kakapo.

Run it with `python tutorials/pretrained_weights.py`; set
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
OUT = os.path.join(os.environ.get("KERAS_PRIORS_TUTORIAL_OUT", "tutorials_out"), "pretrained_weights")
os.makedirs(OUT, exist_ok=True)

IMAGE_SIZE = 32 if FAST else 64
NUM_SOURCE, NUM_TARGET, NUM_TEST = (192, 64, 96) if FAST else (4000, 200, 1000)
SOURCE_EPOCHS, TARGET_EPOCHS, FREEZE_EPOCHS = (1, 2, 1) if FAST else (8, 10, 3)
print(f"backend={keras.backend.backend()} fast={FAST} image_size={IMAGE_SIZE} source={NUM_SOURCE} "
      f"target={NUM_TARGET} test={NUM_TEST}")

"""
## 1. Source task: other-bird species

`as_numpy=True` gives the arrays; we keep the other birds (label 1) and use
their species (`aux_label` 1..4, shifted to 0..3) as labels.
"""

source = kp.data.kakapo("train", image_size=IMAGE_SIZE, num_samples=2 * NUM_SOURCE, seed=1,
                        background_bias=0.0, as_numpy=True)
others = source["label"] == 1
source_ds = kp.data.make_pipeline(
    {"image": source["image"][others], "label": source["aux_label"][others] - 1}, batch_size=32)
print(f"source task: {int(others.sum())} images of 4 species")

keras.utils.set_random_seed(0)
source_model = kp.zoo.build("resnet_tiny", num_classes=4, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
source_model.compile(optimizer=keras.optimizers.Adam(2e-3))
source_model.fit(source_ds, epochs=SOURCE_EPOCHS, verbose=2)

"""
## 2. Save the backbone

Every zoo model exposes its backbone (`model.backbone`); its weights file is
what `Pretrained` (or `kp.zoo.build(..., weights=path)`) loads. A whole
`.keras` zoo model file works too: its backbone is used.
"""

weights_path = os.path.join(OUT, "species_backbone.weights.h5")
source_model.backbone.save_weights(weights_path)
print("Wrote", weights_path)

"""
## 3. Target task with few labels: scratch versus pretrained
"""

target_train, test = kp.data.kakapo(
    split=("train", "test"), image_size=IMAGE_SIZE,
    num_samples={"train": NUM_TARGET, "test": NUM_TEST}, batch_size=32, seed=0,
)
configs = {
    "scratch": [],
    "pretrained": [kp.priors.Pretrained(weights_path, freeze_epochs=FREEZE_EPOCHS,
                                        unfreeze_learning_rate_factor=0.1)],
}
records = kp.experiment.run(configs, target_train, test, num_classes=2, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                            epochs=TARGET_EPOCHS, learning_rate=2e-3, verbose=2)
results = {r["config"]: r for r in records}
models = {name: records.model(name) for name in configs}

"""
## Results
"""

print("\n" + kp.experiment.format_table(records, metrics=("accuracy", "worst_group_accuracy", "cam_energy_in_mask"),
                                        name="target model"))

changes = kp.experiment.compare(records, base="scratch", metrics=("accuracy", "worst_group_accuracy"))
print(kp.experiment.format_comparison(changes))

"""
Compare the two rows printed above. With few target images a network trained
from scratch has little to go on besides the training split's background
shortcut; a backbone that already separates heads and beaks gives the new
head useful features from the first step. In the fast mode the source model
itself trains for one epoch on a few images, so its features are barely
better than random and the comparison says nothing.

## CAM overlays of the two target models

Rows: image, CAM of the true class, CAM of the predicted class (bird outline
in cyan). Left: scratch; right: pretrained.
"""

batch = {k: np.asarray(v)[:8] for k, v in next(iter(test)).items()}
grids = []
for name in configs:
    cam_true, cam_pred, _ = kp.callbacks.class_maps(models[name], batch)
    grids.append(kp.callbacks.cam_overlay_grid(batch["image"], cam_true, cam_pred, batch["object_mask"][..., 0]))
overlay_path = os.path.join(OUT, "cam_overlays_scratch_vs_pretrained.png")
matplotlib.image.imsave(overlay_path, np.clip(np.concatenate(
    [grids[0], np.ones((grids[0].shape[0], 4, 3), "float32"), grids[1]], axis=1), 0, 1))
print("Wrote", overlay_path)

"""
## Why freeze first

The new classifier head starts random. Fine-tuning everything at once sends
its large, random gradients into the pretrained backbone and can wash out
what it learned. `freeze_epochs` trains the head on fixed features first
(BatchNorm statistics stay fixed too, Keras' `trainable=False` semantics),
then unfreezes with the learning rate scaled by
`unfreeze_learning_rate_factor`. Pretraining helps less when the source task
shares little with the target, when the target has plenty of unbiased data,
or, as in the fast mode here, when the source model is undertrained.

With internet access, use ImageNet weights for the keras.applications
entries of the zoo (inputs of 224 px; preprocessing is set per entry):

```python
model = kp.zoo.build("resnet50", num_classes=200, input_shape=(224, 224, 3),
                     priors=[kp.priors.Pretrained("imagenet", freeze_epochs=2)])
```
"""
