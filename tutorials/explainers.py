"""
Title: Explainers and their metrics: CAM, Grad-CAM(++), Score-CAM, L-CAM and the LayerCAM family
Author: keras-priors contributors
Date created: 2026/11/23
Last modified: 2026/12/02
Description: Ten saliency methods, scored by Average Drop, deletion, mask energy and pointing game.
Accelerator: None
"""

"""
## Introduction

Priors are about *where* the evidence should come from, so we need tools to
see where it does come from, and numbers to compare those tools.
`kp.explain` gives one interface for all methods,
`explainer(images, targets=None) -> maps` ((B, H, W) in [0, 1] at image
resolution), and the usual faithfulness and localisation metrics:

* **Average Drop / Increase in Confidence** (AD lower is better, IC higher):
  the class probability on `image * map`, keeping 100 %, 50 % and 15 % of
  the map's area.
* **Deletion / insertion AUC** (Petsiuk et al. 2018): remove (insert) the
  most salient pixels first; a faithful map makes the probability fall fast
  (rise fast): low deletion AUC, high insertion AUC.
* **Energy in mask** and the **pointing game**: how much of the map, and
  whether its peak, lies on the object (needs object masks).

We train one small classifier on the synthetic *kakapo* data, explain it,
and print one table with every method and metric.

Run it with `python tutorials/explainers.py`; set
`KERAS_PRIORS_TUTORIAL_FAST=1` for a seconds-long smoke run.

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
OUT = os.path.join(os.environ.get("KERAS_PRIORS_TUTORIAL_OUT", "tutorials_out"), "explainers")
os.makedirs(OUT, exist_ok=True)

IMAGE_SIZE = 32 if FAST else 64
NUM_TRAIN, NUM_EXPLAIN = (160, 16) if FAST else (2000, 64)
EPOCHS = 1 if FAST else 8
print(f"backend={keras.backend.backend()} fast={FAST} image_size={IMAGE_SIZE} train={NUM_TRAIN} "
      f"explained images={NUM_EXPLAIN} epochs={EPOCHS}")

"""
## A classifier to explain

A zoo model returns a dict (`logits`, `cam`, ...). Explainers need a plain
image-to-logits model: `kp.zoo.logits_classifier` takes the inference model
(training-only heads dropped) and keeps its `logits` output. The explained images come from the
test split, with their object masks.
"""

train = kp.data.kakapo("train", image_size=IMAGE_SIZE, num_samples=NUM_TRAIN, batch_size=32, seed=0)
test_np = kp.data.kakapo("test", image_size=IMAGE_SIZE, num_samples=NUM_EXPLAIN, seed=0, as_numpy=True)
images, masks, labels = test_np["image"], test_np["object_mask"], test_np["label"]

keras.utils.set_random_seed(0)
model = kp.zoo.build("resnet_tiny", num_classes=2, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
model.compile(optimizer=keras.optimizers.Adam(2e-3))
model.fit(train, epochs=EPOCHS, verbose=2)
classifier = kp.zoo.logits_classifier(model)
predicted = keras.ops.convert_to_numpy(classifier(images)).argmax(-1)
print(f"accuracy on the {len(labels)} explained test images: {float((predicted == labels).mean()):.3f}")

"""
## Ten explainers

* **CAM**: the zoo head is a `CAMHead` (logits = mean of the CAM + bias), so
  the model's own `cam` output *is* the class activation map; we read it with
  `kp.callbacks.class_maps`.
* **Grad-CAM / Grad-CAM++**: channel weights from gradients of the class
  score (TensorFlow, JAX or torch gradients).
* **Score-CAM**: channel weights from the class probability on the image
  masked by each channel (no gradients, one forward pass per channel).
* **L-CAM**: a 1x1 attention module trained on the frozen classifier; one
  forward pass at inference. It needs its own (short) training.
* **LayerCAM / HiResCAM**: every cell weighted by its own gradient (LayerCAM
  keeps only positive gradients); **XGradCAM**: channel weights are the
  activation-weighted mean gradient. One backward pass each, like Grad-CAM.
* **EigenCAM**: the feature map projected on its first principal component;
  no gradients and no class (the same map for every target).
* **Ablation-CAM**: channel weights are the relative drop of the class score
  when the channel is zeroed; one pass of the head per channel, batched.
"""

_, cam_pred, _ = kp.callbacks.class_maps(model, {"image": images, "label": predicted})
cam_pred = np.maximum(cam_pred, 0)
low, high = cam_pred.min(axis=(1, 2), keepdims=True), cam_pred.max(axis=(1, 2), keepdims=True)
maps = {"CAM": np.where(high > low, (cam_pred - low) / np.maximum(high - low, 1e-12), 0.0).astype("float32")}
maps["Grad-CAM"] = kp.explain.GradCAM(classifier)(images)
maps["Grad-CAM++"] = kp.explain.GradCAMPlusPlus(classifier)(images)
maps["Score-CAM"] = kp.explain.ScoreCAM(classifier, batch_size=64)(images)
maps["LayerCAM"] = kp.explain.LayerCAM(classifier)(images)
maps["HiResCAM"] = kp.explain.HiResCAM(classifier)(images)
maps["XGradCAM"] = kp.explain.XGradCAM(classifier)(images)
maps["EigenCAM"] = kp.explain.EigenCAM(classifier)(images)
maps["Ablation-CAM"] = kp.explain.AblationCAM(classifier)(images)
lcam = kp.explain.LCAM(classifier, variant="Fm")
lcam.fit(images if FAST else test_np["image"], labels, epochs=1 if FAST else 5, batch_size=16, verbose=2)
maps["L-CAM"] = lcam(images, targets=predicted)

"""
## Scores

Every metric is computed for the predicted class on the same images. Lower
is better for AD and deletion; higher for IC, insertion, energy in mask and
pointing game.
"""

steps = 8 if FAST else 20
header = "| method | AD@100 | AD@50 | AD@15 | IC@15 | deletion AUC | insertion AUC | energy in mask | pointing game |"
print("\n" + header)
print("|---" * (header.count("|") - 1) + "|")
scores = {}
for name, m in maps.items():
    adic = kp.explain.average_drop_increase_confidence(classifier, images, m, targets=predicted)
    di = kp.explain.deletion_insertion(classifier, images, m, targets=predicted, steps=steps)
    energy = float(kp.explain.energy_in_mask(m, masks).mean())
    pointing = float(kp.explain.pointing_game(m, masks).mean())
    scores[name] = {"ad15": adic["average_drop@15"], "insertion": float(di["insertion_auc"].mean()),
                    "energy": energy}
    print(f"| {name} | {adic['average_drop@100']:.1f} | {adic['average_drop@50']:.1f} | "
          f"{adic['average_drop@15']:.1f} | {adic['increase_in_confidence@15']:.1f} | "
          f"{float(di['deletion_auc'].mean()):.3f} | {float(di['insertion_auc'].mean()):.3f} | "
          f"{energy:.3f} | {pointing:.3f} |")

object_share = float(masks.mean())
print(f"\nThe object covers {object_share:.3f} of the image on average: a map spread uniformly would put "
      f"that share of its energy in the mask.")
best = {key: min(scores, key=lambda n: scores[n][key]) if key == "ad15" else max(scores, key=lambda n: scores[n][key])
        for key in ("ad15", "insertion", "energy")}
print(f"best in this run: AD@15 {best['ad15']}, insertion AUC {best['insertion']}, energy in mask {best['energy']}")

"""
Read the table printed above row by row. The faithfulness metrics (AD, IC,
deletion, insertion) ask whether the map points at what the *model* uses;
energy in mask and the pointing game ask whether it points at the *object*.
They disagree by design when the model uses the background: a faithful map
of a shortcut model lies off the bird. Compare the energy-in-mask column to
the object's share of the image printed below the table: a value near that
share means the maps are no more on the bird than a uniform map would be.

## Overlays

Rows: images; columns: the image, then one overlay per method (jet
colormap, red = salient).
"""

rows = []
for i in range(min(8, len(images))):
    tiles = [np.round(np.clip(images[i], 0, 1) * 255).astype("uint8")]
    tiles += [kp.explain.overlay(images[i], maps[name][i], alpha=0.5) for name in maps]
    rows.append(np.concatenate(tiles, axis=1))
overlay_path = os.path.join(OUT, "explainer_overlays.png")
matplotlib.image.imsave(overlay_path, np.concatenate(rows, axis=0))
print("Wrote", overlay_path, "(columns: image, " + ", ".join(maps) + ")")

"""
## Which one to use

CAM is free but needs a CAM head (every zoo model has one). Grad-CAM works
for any convolutional classifier and costs one backward pass; Grad-CAM++
weighs pixels by higher-order gradient terms and often covers several
instances better. Score-CAM needs no gradients but one forward pass per
channel (slow for wide layers). L-CAM costs a short training run, then one
forward pass. LayerCAM, HiResCAM and XGradCAM cost what Grad-CAM costs;
HiResCAM's map sums to the class score on a linear head, LayerCAM keeps finer
detail on early layers. EigenCAM is class-agnostic: it shows what the layer
responds to most, not the evidence for one class. Ablation-CAM runs the head
once per channel (cheap when the layer is the last one). Measure on your own data, as above, before trusting one.
"""
