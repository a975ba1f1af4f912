"""
Title: Dual input: whole image plus a part crop
Author: keras-priors contributors
Date created: 2026/11/23
Last modified: 2026/12/02
Description: A second stream on the class-carrying part: found by the model, or an oracle box.
Accelerator: None
"""

"""
## Introduction

When you know which **part** of the object decides the class (the head of a
bird, the logo on a product), you can give the network a second stream that
sees only that part. `kp.priors.DualInput` crops a part box
(`[y1, x1, y2, x2]`, normalised) out of the image with the differentiable
`PartCrop` layer, resizes it and runs the crop through the backbone (shared
weights by default). The two streams are fused late; with `fusion="concat"`
the image stream keeps an exact class activation map, so CAM priors and CAM
overlays still work.

Where does the box come from? At test time nobody hands you the head box, so
the mode to deploy is **`box_source="predicted"`** (locate, then zoom): a small mask
decoder on the backbone's feature maps learns the part mask from the
`part_mask` annotations of the *training* set (Dice + BCE), `MaskToBox` turns
its prediction into a box (with a margin and a minimum size), and `PartCrop`
zooms in. The model, and the SavedModel `export` writes, take only the image.

**`box_source="oracle"`** (the default, as in version 0.1) reads the true box from the
data, in training *and at test time*: it is an oracle, an upper reference for
what a perfect part detector would give, not what a deployed model reaches.

Unlike most priors, this one **costs at inference**: the second stream (and,
predicted, the mask decoder) runs on every image.

In the synthetic *kakapo* data the class is carried by the head only and the
background is a shortcut in training; `part_mask` is the head mask and
`part_box` the exact head box.

Run it with `python tutorials/dual_input.py`; set
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
OUT = os.path.join(os.environ.get("KERAS_PRIORS_TUTORIAL_OUT", "tutorials_out"), "dual_input")
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
## What the second stream sees

`kp.layers.PartCrop` is the layer the prior uses; we call it on a test batch
with the true head boxes and save image | crop pairs.
"""

batch = {k: np.asarray(v)[:8] for k, v in next(iter(test)).items()}
crops = kp.layers.PartCrop((IMAGE_SIZE, IMAGE_SIZE))([batch["image"], batch["part_box"]])
crops = np.asarray(keras.ops.convert_to_numpy(crops))
crop_path = os.path.join(OUT, "image_and_head_crop.png")
matplotlib.image.imsave(crop_path, np.clip(np.concatenate(
    [np.concatenate([img, crop], axis=1) for img, crop in zip(batch["image"], crops)], axis=0), 0, 1))
print("Wrote", crop_path, "(columns: image | part crop)")

"""
## Train without and with the part stream

Three models: no prior; the predicted box (`part_mask` is needed in training
only; `weight` is the mask loss's weight, `margin` and `min_size` grow the
predicted box, normalised units); the oracle box, named as such.
"""

configs = {
    "plain": [],
    "predicted_box": [kp.priors.DualInput(box_source="predicted", target="part_mask", weight=1.0,
                                          margin=0.05, min_size=0.15, fusion="concat")],
    "oracle_box": [kp.priors.DualInput(box_source="oracle", box="part_box", fusion="concat")],
}
records = kp.experiment.run(configs, train, test, num_classes=2, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3),
                            epochs=EPOCHS, learning_rate=2e-3, verbose=2)
results = {r["config"]: r for r in records}
models = {name: records.model(name) for name in configs}
for name in configs:
    print(f"{name}: model inputs:", list(models[name].input_keys))

"""
The predicted-box model takes only the image, and so does its inference model
(what `export` writes): the mask decoder that finds the head stays in it,
since the logits need its box; only the mask logits, used for the training
loss alone, are dropped. The oracle model needs `part_box` at test time.
"""

inference = models["predicted_box"].inference_model()
print("predicted box, inference inputs:", list(inference.input), "outputs:", sorted(inference.output))
print("oracle box, inference inputs:", list(models["oracle_box"].inference_model().input))

"""
## Where the model looked

For a few test images: the image, the crop from the predicted box, the crop
from the true box. Early in training (the fast mode) the mask decoder is
unsure and falls back to a `min_size` box on its most likely pixel.
"""

predicted = models["predicted_box"]({"image": batch["image"]}, training=False)
pred_boxes = np.asarray(keras.ops.convert_to_numpy(predicted["dual_input_box"]))
pred_crops = np.asarray(keras.ops.convert_to_numpy(
    kp.layers.PartCrop((IMAGE_SIZE, IMAGE_SIZE))([batch["image"], pred_boxes])))
ious = []
for p, t in zip(pred_boxes, batch["part_box"]):
    inter = (max(0.0, min(p[2], t[2]) - max(p[0], t[0]))) * (max(0.0, min(p[3], t[3]) - max(p[1], t[1])))
    union = (p[2] - p[0]) * (p[3] - p[1]) + (t[2] - t[0]) * (t[3] - t[1]) - inter
    ious.append(inter / max(union, 1e-12))
print(f"predicted vs true head box, IoU on {len(ious)} test images: mean {np.mean(ious):.2f}")
box_path = os.path.join(OUT, "predicted_vs_true_head_crop.png")
matplotlib.image.imsave(box_path, np.clip(np.concatenate(
    [np.concatenate([img, pc, tc], axis=1) for img, pc, tc in zip(batch["image"], pred_crops, crops)], axis=0), 0, 1))
print("Wrote", box_path, "(columns: image | predicted-box crop | true-box crop)")

"""
## Results
"""

print("\n" + kp.experiment.format_table(records, metrics=("accuracy", "worst_group_accuracy")))

changes = kp.experiment.compare(records, metrics=("accuracy", "worst_group_accuracy"))
print(kp.experiment.format_comparison(changes))

"""
Compare the rows printed above. A crop that holds only the head holds no
background, so the part stream cannot learn the shortcut; the whole-image
stream still can, and the fused classifier uses both. The oracle row shows
what a perfect head box gives; the predicted row what you get without one at
test time. In the fast mode (one epoch, a few images) nothing has learned
much and the differences are noise; `zoo/RESULTS.md` has both modes measured
over seeds on the kakapo studies.

## Why it helps, and when it does not

The part stream sees the head at the full input resolution instead of a few
pixels of a large image, and sees nothing else: the evidence that carries the
class is magnified and the shortcut removed. It helps less when the predicted
box misses the part (the margin and the minimum size absorb small misses;
a locator that has learned the background instead of the part brings the
shortcut back into the crop), when the part does not carry the class on its
own, or when the whole-image stream's shortcut dominates the fused logits
(combine it with `kp.priors.CAMSuppression`, which constrains the image
stream's CAM).

By default the predicted box is a constant for the classifier's gradient
(`box_gradient=False`): only the mask loss trains the locator, so the
classification loss cannot pull the crop towards whatever separates the
training data, the background included.
"""
