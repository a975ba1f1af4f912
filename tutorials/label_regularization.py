"""
Title: Label regularisation: label smoothing, confidence penalty and feature contraction
Author: keras-priors contributors
Date created: 2026/11/23
Last modified: 2026/12/02
Description: Three implicit priors against over-confidence, compared on Fashion-MNIST.
Accelerator: None
"""

"""
## Introduction

Some priors carry no annotation at all, only a belief about the classifier:
"it should not be certain of everything". Three cheap ones, free at
inference:

* **Label smoothing** (`kp.priors.LabelSmoothing(0.1)`, Szegedy et al. 2016):
  the target puts `1 - s + s/K` on the true class and `s/K` on the others.
* **Confidence penalty** (`kp.priors.ConfidencePenalty(beta=0.1)`, Pereyra
  et al. 2017): adds `-beta * H(p)`, rewarding output entropy.
* **Feature contraction** (`kp.priors.FeatureContraction(1e-3)`, Li and Maki
  2018): an L2 penalty on the pooled last feature map.

We measure test accuracy, the **expected calibration error** (ECE, 15 bins:
the gap between confidence and accuracy) and the mean confidence, on
Fashion-MNIST (real images, read offline from the standard IDX files, e.g.
Debian's `dataset-fashion-mnist`). Without those files the tutorial falls
back to the kakapo species task.

Run it with `python tutorials/label_regularization.py`; set
`KERAS_PRIORS_TUTORIAL_FAST=1` for a seconds-long smoke run (too small to
draw conclusions from).

## Setup
"""

import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import keras_priors as kp

FAST = os.environ.get("KERAS_PRIORS_TUTORIAL_FAST") == "1"
OUT = os.path.join(os.environ.get("KERAS_PRIORS_TUTORIAL_OUT", "tutorials_out"), "label_regularization")
os.makedirs(OUT, exist_ok=True)

NUM_TRAIN, NUM_TEST = (192, 128) if FAST else (6000, 2000)
EPOCHS = 1 if FAST else 8
print(f"backend={keras.backend.backend()} fast={FAST} train={NUM_TRAIN} test={NUM_TEST} epochs={EPOCHS}")

"""
## Data
"""

rng = np.random.default_rng(0)
try:
    raw = kp.data.load_fashion_mnist(split=("train", "test"))
    dataset_name, num_classes = "Fashion-MNIST", 10

    def to_dict(split, n):
        idx = np.sort(rng.choice(len(raw[split]["label"]), n, replace=False))
        images = raw[split]["image"][idx].astype("float32")[..., None] / 255.0
        return {"image": np.repeat(images, 3, axis=-1), "label": raw[split]["label"][idx]}

    train_np, test_np = to_dict("train", NUM_TRAIN), to_dict("test", NUM_TEST)
except FileNotFoundError as e:
    print(f"Fashion-MNIST not found ({e}); using the kakapo species task instead.")
    dataset_name, num_classes = "kakapo species", 5
    train_np, test_np = (
        {"image": d["image"], "label": d["aux_label"]}
        for d in (kp.data.make_kakapo(NUM_TRAIN, image_size=32, seed=1, background_bias=0.0),
                  kp.data.make_kakapo(NUM_TEST, image_size=32, seed=2, background_bias=0.0))
    )
train = kp.data.make_pipeline(train_np, batch_size=32)
test = kp.data.make_pipeline(test_np, batch_size=64, shuffle=False)
input_shape = train_np["image"].shape[1:]
print(f"{dataset_name}: {len(train_np['label'])} train / {len(test_np['label'])} test images of shape {input_shape}")

"""
## Train the variants

The fast mode trains the baseline and the three priors together; the full
run also trains each prior on its own.
"""

configs = {"plain": lambda: []}
if not FAST:
    configs.update({
        "label_smoothing": lambda: [kp.priors.LabelSmoothing(0.1)],
        "confidence_penalty": lambda: [kp.priors.ConfidencePenalty(beta=0.1)],
        "feature_contraction": lambda: [kp.priors.FeatureContraction(weight=1e-3)],
    })
configs["all_three"] = lambda: [kp.priors.LabelSmoothing(0.1), kp.priors.ConfidencePenalty(beta=0.1),
                                kp.priors.FeatureContraction(weight=1e-3)]
records = kp.experiment.run(configs, train, test, num_classes=num_classes, input_shape=input_shape,
                            epochs=EPOCHS, learning_rate=2e-3, verbose=2)
results = {r["config"]: r for r in records}
models = {name: records.model(name) for name in configs}
confidences = {}
for name in configs:
    logits = np.concatenate([keras.ops.convert_to_numpy(models[name](b, training=False)["logits"]) for b in test])
    probs = keras.ops.convert_to_numpy(keras.ops.softmax(logits, axis=-1))
    confidences[name] = probs.max(axis=-1)

"""
## Results
"""

for r in records:
    r["mean confidence"] = float(confidences[r["config"]].mean())
print("\n" + kp.experiment.format_table(records, metrics=("accuracy", "ece", "mean confidence")))
# A lower ECE is better calibration: compare() says whether each prior improved it in this run.
print(kp.experiment.format_comparison(kp.experiment.compare(records, metrics=("accuracy", "ece"))))

"""
Compare the rows printed above. The regularisers lower the confidence by
design; whether that lowers the ECE depends on where the baseline stands. A
network that is *over*-confident (typical after many epochs, when the
training loss is near zero) gains calibration; an under-trained one (the fast
mode's single epoch) is often *under*-confident already, and pushing the
confidence further down makes its ECE worse. That is why the printout says,
per prior, whether it helped the ECE (a lower ECE: better calibration) in this
run.

## Confidence histograms
"""

fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
bins = np.linspace(0, 1, 21)
for name, conf in confidences.items():
    ax.hist(conf, bins=bins, histtype="step", linewidth=1.5, label=name)
ax.set_xlabel("max softmax probability on the test set")
ax.set_ylabel("images")
ax.legend(fontsize=7)
fig.tight_layout()
hist_path = os.path.join(OUT, "confidence_histograms.png")
fig.savefig(hist_path)
plt.close(fig)
print("Wrote", hist_path)

"""
## Why they help, and when they do not

Cross-entropy keeps rewarding larger logits after every training image is
classified correctly; the network becomes certain, and on test images it is
certain *and wrong* too often. All three regularisers bound that pressure:
smoothing caps the target, the confidence penalty pays for entropy, and
feature contraction keeps the features (hence the logits) small. They trade a
little fit for calibration; they do not remove a shortcut, and on a model
that is not over-confident yet they can hurt. Tune `smoothing`, `beta` and
`weight` on a validation split, watching the ECE, not the accuracy alone.
"""
