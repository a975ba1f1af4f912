"""
Title: Receptive fields: theoretical and effective
Author: keras-priors contributors
Date created: 2026/11/23
Last modified: 2026/12/02
Description: The theoretical receptive field of each layer; the effective one before/after training.
Accelerator: None
"""

"""
## Introduction

A CAM cell, a mask-decoder pixel or a unit of any feature map can only use
the input pixels inside its **receptive field**. Two notions matter:

* The **theoretical** receptive field: the input window a unit depends on at
  all, from kernel sizes, strides, padding and dilations.
  `keras_priors.receptive_field.compute_receptive_fields(model)` walks any functional
  Keras model (nested models too) and gives, per layer, size, effective
  stride, effective padding and the centre of unit 0.
* The **effective** receptive field (ERF, Luo et al. 2016): the map of
  `|d unit / d input|` averaged over images. It is usually a Gaussian-like
  blob much smaller than the theoretical field, and it grows with training.

Both tell you whether a prior can work: a CAM cell whose ERF is much smaller
than the bird's head cannot see the whole head; a feature map whose field
covers the whole image can pick up the background anywhere.

Run it with `python tutorials/receptive_fields.py`; set
`KERAS_PRIORS_TUTORIAL_FAST=1` for a seconds-long smoke run.

## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np

import keras_priors as kp
from keras_priors import receptive_field

FAST = os.environ.get("KERAS_PRIORS_TUTORIAL_FAST") == "1"
OUT = os.path.join(os.environ.get("KERAS_PRIORS_TUTORIAL_OUT", "tutorials_out"), "receptive_fields")
os.makedirs(OUT, exist_ok=True)

IMAGE_SIZE = 32 if FAST else 64
NUM_TRAIN, NUM_ERF = (160, 16) if FAST else (2000, 64)
EPOCHS = 1 if FAST else 8
print(f"backend={keras.backend.backend()} fast={FAST} image_size={IMAGE_SIZE} train={NUM_TRAIN} "
      f"ERF samples={NUM_ERF} epochs={EPOCHS}")

"""
## Theoretical receptive fields of a zoo backbone

`resnet_tiny` has a stride-1 stem and three residual stages of stride 2: the
last map (`P3`, the CAM's input) has stride 8. The table lists the
backbone's layers with their fields.
"""

keras.utils.set_random_seed(0)
model = kp.zoo.build("resnet_tiny", num_classes=2, input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3))
backbone = model.backbone
rfs = receptive_field.compute_receptive_fields(backbone)
print(receptive_field.format_table(rfs, spatial_only=True))

LAYER = "stage3_block1_out"
rf = rfs[LAYER]
print(f"\n{LAYER}: theoretical RF {rf.size} px, stride {rf.stride}, output {rf.output_size} "
      f"on a {IMAGE_SIZE}x{IMAGE_SIZE} image")

"""
## Effective receptive field before training

We probe the centre unit of the last stage on test images (the backbone
takes preprocessed images; the tiny nets' preprocessing is the identity on
[0, 1] inputs).
"""

train = kp.data.kakapo("train", image_size=IMAGE_SIZE, num_samples=NUM_TRAIN, batch_size=32, seed=0)
probe = kp.data.kakapo("test", image_size=IMAGE_SIZE, num_samples=NUM_ERF, seed=0, as_numpy=True)["image"]


def erf_report(tag):
    result = receptive_field.effective_receptive_field(backbone, LAYER, inputs=probe, num_samples=NUM_ERF)
    path = receptive_field.plot_erf(result, os.path.join(OUT, f"erf_{tag}.png"),
                                       title=f"ERF of {LAYER} {result.unit}, {tag}")
    print(f"{tag}: 50 % of the gradient mass within {result.radius_50_px:.1f} px of the centre, "
          f"90 % within {result.radius_90_px:.1f} px (theoretical half-size {rf.size[0] / 2:.1f} px); "
          f"std {result.std[0]:.2f} x {result.std[1]:.2f} px; mass inside the theoretical RF "
          f"{result.mass_inside_rf:.3f}")
    ratios = receptive_field.high_contribution_area_ratio(result.map)
    print(f"{tag}: RepLKNet's high-contribution area ratio (smallest centred square holding > t of "
          "log10(ERF + 1) / max):")
    print(receptive_field.format_area_ratios(ratios, result.map.shape))
    print("Wrote", path)
    return result


before = erf_report("before_training")

"""
## Effective receptive field after training
"""

model.compile(optimizer=keras.optimizers.Adam(2e-3))
model.fit(train, epochs=EPOCHS, verbose=2)
after = erf_report("after_training")
growth = after.radius_90_px - before.radius_90_px
print(f"90 % radius changed by {growth:+.1f} px with training "
      f"({'grew' if growth > 0 else 'did not grow'} in this run)")

"""
Compare the two ERF lines printed above with the theoretical half-size.

Each report also prints RepLKNet's **high-contribution area ratio** (Ding et
al. 2022, `erf/analyze_erf.py`): the map is compressed with `log10(x + 1)`
and divided by its maximum, then for t = 20 %, 30 %, 50 % and 99 % the
smallest square centred on the image centre holding more than t of the total
gives its side (px) and its share of the image area. A small ratio at t =
20-30 % means the contribution is concentrated at the centre; the ratio at
99 % tells how far any noticeable contribution reaches. The `log10` step
makes the numbers depend on the map's scale (ours averages `|grad|` over
images, RepLKNet's sums ReLU'd gradients), so compare ratios computed the
same way, e.g. before vs after training here, or two backbones with
`keras-priors rf MODEL --erf`, which prints the theoretical table, then the
ERF of the centre unit of the last spatial layer on random images and these
ratios. Most
of the gradient mass sits well inside the theoretical field: the ERF's
Gaussian-like shape comes from the many more paths through a network that
reach the centre pixels than the border pixels. Luo et al. report that
training widens it; a short run (the fast mode's single epoch) may not show
that.

The PNGs show the ERF map with the theoretical field as a cyan box. During
training, `keras_priors.receptive_field.ERFImages(LAYER, log_dir=...)` logs the same
map and radii to TensorBoard every few epochs; `keras-priors rf MODEL` prints
the theoretical table for a saved model or a keras.applications name.
"""

"""
## Choosing a backbone for an object size

A unit can only use what lies in its receptive field, and in practice only
the part its effective field weights. For a CAM-based prior this matters
twice: a CAM cell on the object whose field covers the whole image can still
carry background information (so suppressing CAM evidence outside the mask
does not stop the network from *looking* at the background), and an object
much smaller than the last map's stride falls into one or two CAM cells.

The table below compares the last pyramid level of a few zoo backbones at
the same input size: theoretical field, stride, and the ERF's 90 % radius of
the untrained backbone on random images (the fast mode skips the larger
models' ERF). Rules of thumb that follow from it:

- the stride sets the CAM's resolution: with stride 32 a 64 px bird covers
  2x2 cells, with stride 8 it covers 8x8;
- a theoretical field much larger than the object is normal (deep networks);
  the ERF radius tells how far context really reaches;
- if the ERF of the last level covers the whole image, an object mask at the
  CAM level constrains *where evidence is reported*, not *what is seen*; a
  mask decoder or a part-crop stream constrains the features themselves.
"""

COMPARE = ["resnet_tiny", "resnet_small"] + ([] if FAST else ["mobilenetv3small", "resnet50"])
rows = []
rng = np.random.default_rng(0)
random_images = rng.uniform(size=(8, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
for name in COMPARE:
    keras.utils.set_random_seed(0)
    bb = kp.zoo.get_spec(name).builder((IMAGE_SIZE, IMAGE_SIZE, 3))
    last_level = sorted(bb.output)[-1]
    last_layer = bb.output[last_level]._keras_history[0].name
    fields = receptive_field.compute_receptive_fields(bb, on_misaligned="flag")
    last_rf = fields[last_layer]
    erf = receptive_field.effective_receptive_field(bb, last_layer, inputs=random_images, num_samples=8)
    rows.append((name, last_level, last_rf.size[0], last_rf.stride[0], last_rf.output_size[0], erf.radius_90_px))
print(f"\nLast pyramid level at {IMAGE_SIZE}x{IMAGE_SIZE} px (untrained backbones, ERF on 8 random images):")
print("| backbone | level | theoretical RF (px) | stride | map size | ERF 90 % radius (px) |")
print("|---|---|---|---|---|---|")
for name, level, size, stride, out, r90 in rows:
    print(f"| {name} | {level} | {size} | {stride} | {out} | {r90:.1f} |")
