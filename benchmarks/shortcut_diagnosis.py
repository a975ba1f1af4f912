"""Why does a prior close a global background shortcut or not? Gradients versus counterfactual backgrounds.

Trains three kakapo models with the evidence benchmark's ``kakapo`` study settings (``resnet_tiny``, 32 px,
3000 images, 12 epochs, Adam 5e-3 with cosine decay): no prior, ``InputGradient`` (RRR, weight 1) and
``BackgroundSwap``. For each it measures on the test split, where the background says nothing about the label:

* the input-gradient penalty RRR minimises: per image, the sum over background pixels of the squared
  gradient of ``sum_c log p_c``, and the same sum over the bird (a *local* measure of background use);
* the *counterfactual* use of the background: the share of test predictions that change when every test
  bird is composited onto another test image's background (``BackgroundSwap`` applied at test time), and
  the accuracy on those composites.

A model can have a tiny background gradient and still change its answer when the whole background changes:
the gradient measures infinitesimal, pixel-wise sensitivity, the shortcut is a large change of many pixels
at once (ground texture and colour).

Usage: ``python benchmarks/shortcut_diagnosis.py [--seed 0] [--size smoke]``. TensorFlow backend.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import cpu_model, usable_cores  # noqa: E402

import numpy as np  # noqa: E402


def train(study, config, seed, size):
    """Train one evidence configuration and return the model (the benchmark's own recipe)."""
    import evidence
    from keras_priors import experiment

    ssize = {**size, **size["studies"].get(study.name, {})}
    train_data, test_data = evidence.load_study_data(study, ssize, seed, config.shortcut, config.fraction)
    steps = experiment.steps_for_epochs(ssize["epochs"], ssize["train"], ssize["batch_size"])
    records = experiment.run({config.name: lambda: config.priors(study.num_classes)}, train_data, test_data,
                             model=study.model, num_classes=study.num_classes,
                             input_shape=(study.image_size, study.image_size, 3), seeds=(seed,),
                             epochs=ssize["epochs"], steps=steps, batch_size=ssize["batch_size"],
                             learning_rate=study.learning_rate, schedule="cosine",
                             evaluate=lambda model, test: {}, verbose=0)  # diagnose() measures the model
    return records.model(config.name), test_data


def diagnose(model, test, batch_size=250) -> dict:
    """Background and bird input-gradient sums, and predictions under test-time background swaps."""
    import keras
    import tensorflow as tf

    from keras_priors import priors

    swap = priors.BackgroundSwap(mask="object_mask")
    seed = keras.random.SeedGenerator(1234)
    outside, inside, preds, swapped_preds = [], [], [], []
    for start in range(0, len(test["label"]), batch_size):
        x = tf.constant(test["image"][start:start + batch_size])
        mask = test["object_mask"][start:start + batch_size]
        with tf.GradientTape() as tape:
            tape.watch(x)
            logits = model({"image": x}, training=False)["logits"]
            score = tf.reduce_sum(tf.nn.log_softmax(logits, axis=-1))
        g2 = tf.square(tape.gradient(score, x)).numpy()
        outside.append((g2 * (1.0 - mask)).sum(axis=(1, 2, 3)))
        inside.append((g2 * mask).sum(axis=(1, 2, 3)))
        preds.append(np.argmax(logits.numpy(), -1))
        xs = swap.transform_batch({"image": x, "object_mask": tf.constant(mask)}, seed)["image"]
        swapped_preds.append(np.argmax(model({"image": xs}, training=False)["logits"].numpy(), -1))
    outside, inside = np.concatenate(outside), np.concatenate(inside)
    preds, swapped_preds = np.concatenate(preds), np.concatenate(swapped_preds)
    labels = test["label"]
    return {"grad2_background": float(outside.mean()), "grad2_bird": float(inside.mean()),
            "background_share": float(outside.sum() / max(outside.sum() + inside.sum(), 1e-30)),
            "accuracy": float((preds == labels).mean()),
            "flip_rate_under_background_swap": float((preds != swapped_preds).mean()),
            "accuracy_on_swapped_backgrounds": float((swapped_preds == labels).mean())}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=0, help="seed of data and initialisation (default: 0)")
    parser.add_argument("--size", default="default", choices=("smoke", "default"),
                        help="the evidence benchmark's size (default: default)")
    args = parser.parse_args(argv)
    import keras

    if keras.backend.backend() != "tensorflow":
        raise SystemExit("shortcut_diagnosis: Expected the TensorFlow backend (it uses tf.GradientTape). "
                         f"Received: {keras.backend.backend()}")
    import evidence

    study = evidence.STUDIES["kakapo"]
    configs = {c.name: c for c in study.configs}
    rows = {}
    for name in ("plain", "input_gradient", "background_swap"):
        start = time.perf_counter()
        model, test = train(study, configs[name], args.seed, evidence.SIZES[args.size])
        rows[name] = {**diagnose(model, test), "seconds": time.perf_counter() - start}
        print(f"{name}: {rows[name]}", flush=True)
    print(f"\nkakapo, seed {args.seed}, size {args.size}; {cpu_model()}, {usable_cores()} cores; "
          "test split (background independent of the label)\n")
    print("| model | accuracy | background grad² (per image) | bird grad² | background share of grad² | "
          "predictions changed by a background swap | accuracy on swapped backgrounds |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(f"| {name} | {r['accuracy']:.3f} | {r['grad2_background']:.3g} | {r['grad2_bird']:.3g} | "
              f"{r['background_share']:.3f} | {r['flip_rate_under_background_swap']:.3f} | "
              f"{r['accuracy_on_swapped_backgrounds']:.3f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
